/**
 * The namespace pool's range (`--sandbox-pool-cidr`): what is accepted, the addresses it hands out,
 * and the host routes and addresses that make it refuse a range (a VPN's, a container network's).
 */
import { describe, expect, it } from "vitest";
import { DEFAULT_POOL_CIDR, hostOverlaps, parsePoolCidr, poolAddresses, poolSize } from "./netns-pool.js";

describe("parsePoolCidr", () => {
  it("takes network addresses from /8 to /24", () => {
    expect(parsePoolCidr(DEFAULT_POOL_CIDR)).toMatchObject({ prefix: 16 });
    expect(parsePoolCidr("172.31.200.0/24").prefix).toBe(24);
    expect(parsePoolCidr("11.0.0.0/8").prefix).toBe(8);
    expect(() => parsePoolCidr("10.0.0.0/8")).toThrow(/overlaps 10.0.2.0\/24/);
  });

  it("refuses what is not a range, has host bits, or is loopback, link-local, multicast or slirp's", () => {
    for (const bad of [
      "",
      "100.72.0.0",
      "100.72.0.0/25",
      "100.72.0.0/7",
      "100.72.0/16",
      "100.72.0.0.0/16",
      "256.1.0.0/16",
      "01.2.0.0/16",
      "100.72.0.0/16 ",
      "100.72.0.0/016x",
      "-1.0.0.0/8",
      "::1/64",
    ]) {
      expect(() => parsePoolCidr(bad), bad).toThrow(/not an IPv4 range/);
    }
    expect(() => parsePoolCidr("100.72.1.0/16")).toThrow(/host bits set: the range starts at 100.72.0.0/);
    expect(() => parsePoolCidr("127.10.0.0/16")).toThrow(/loopback/);
    expect(() => parsePoolCidr("169.254.0.0/16")).toThrow(/link-local/);
    expect(() => parsePoolCidr("10.0.0.0/16")).toThrow(/slirp4netns/);
    expect(() => parsePoolCidr("10.0.2.0/24")).toThrow(/slirp4netns/);
    expect(() => parsePoolCidr("239.1.0.0/16")).toThrow(/multicast/);
    expect(() => parsePoolCidr("0.0.0.0/8")).toThrow(/this network/);
  });
});

describe("poolAddresses and poolSize", () => {
  it("hand out /31 pairs from the range's start, never past its end", () => {
    expect(poolAddresses(0)).toEqual({ gateway: "100.72.0.0", address: "100.72.0.1" });
    expect(poolAddresses(200)).toEqual({ gateway: "100.72.1.144", address: "100.72.1.145" });
    const small = parsePoolCidr("192.168.77.0/24");
    expect(poolSize(small)).toBe(128);
    expect(poolAddresses(127, small)).toEqual({ gateway: "192.168.77.254", address: "192.168.77.255" });
    expect(poolSize(parsePoolCidr("10.64.0.0/10"))).toBe(32_768);
  });
});

describe("hostOverlaps", () => {
  const range = parsePoolCidr("100.72.0.0/16");
  const ROUTES = [
    "default via 192.0.2.1 dev eth0 ",
    "192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.2 ",
    "100.72.0.0/31 dev lmb0 proto kernel scope link src 100.72.0.0 ",
    "local 100.72.0.0 dev lmb0 table local proto kernel scope host src 100.72.0.0 ",
    "local 127.0.0.0/8 dev lo table local proto kernel scope host src 127.0.0.1 ",
  ].join("\n");
  const ADDRS = [
    "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever",
    "4: eth0    inet 192.0.2.2/24 brd 192.0.2.255 scope global eth0\\       valid_lft forever",
    "9: lmb0    inet 100.72.0.0/31 scope global lmb0\\       valid_lft forever",
  ].join("\n");

  it("ignores default routes and the pool's own veths", () => {
    expect(hostOverlaps(range, ROUTES, ADDRS)).toEqual([]);
  });

  it("names a VPN's wider route (Tailscale's CGNAT range, in its own table), a peer's /32, and an address inside", () => {
    const routes = `${ROUTES}\n100.64.0.0/10 dev tailscale0 table 52 \nblackhole 100.72.9.0/24 proto static \n`;
    expect(hostOverlaps(range, routes, ADDRS)).toEqual([
      "route 100.64.0.0/10 dev tailscale0 table 52",
      "route blackhole 100.72.9.0/24 proto static",
    ]);
    const addrs = `${ADDRS}\n12: tailscale0    inet 100.72.3.4/32 scope global tailscale0\\       valid_lft forever`;
    expect(hostOverlaps(range, ROUTES, addrs)).toEqual(["address 100.72.3.4/32 on tailscale0"]);
    expect(hostOverlaps(range, "100.72.3.4 dev wg0 scope link \n", "")).toEqual([
      "route 100.72.3.4 dev wg0 scope link",
    ]);
    // Beside the range, not in it.
    expect(hostOverlaps(range, "100.73.0.0/16 dev wg0 \n100.71.255.0/24 dev wg0 \n", "")).toEqual([]);
  });
});
