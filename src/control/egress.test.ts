import { describe, expect, it } from "vitest";
import {
  canonicalHost,
  type EgressOptions,
  EgressPolicy,
  EgressRefused,
  egressTarget,
  natsOptions,
  parseAllowEntry,
  pinBrokerUri,
  redisOptions,
} from "./egress.js";

/** A resolver from a table; a name can be re-pointed between calls (DNS rebinding). */
function table(entries: Record<string, string[]>) {
  const t = { ...entries };
  const resolve = async (name: string) => {
    const a = t[name];
    if (!a) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: "ENOTFOUND" });
    return a;
  };
  return { t, resolve };
}

function policy(over: Partial<EgressOptions> = {}, names: Record<string, string[]> = {}) {
  const { t, resolve } = table({
    "public.example": ["93.184.216.34"],
    localhost: ["127.0.0.1", "::1"],
    ...names,
  });
  const p = new EgressPolicy({
    allow: [],
    internalAllowed: false,
    resolve,
    localAddresses: () => ["127.0.0.1", "::1", "192.0.2.10"],
    ...over,
  });
  p.setApiPort(9000);
  return { p, t };
}

const refusedFor = async (p: EgressPolicy, host: string, port = 80) => {
  try {
    await p.pin(host, port);
    return null;
  } catch (err) {
    if (err instanceof EgressRefused) return err.message;
    throw err;
  }
};

describe("egress targets are read the way a client would connect", () => {
  it("normalises IPv4 written in decimal, octal, hex, short or percent-encoded form, in every scheme", () => {
    for (const raw of [
      "http://2130706433/",
      "http://0x7f.1/",
      "http://0177.0.0.1/",
      "http://127.1/",
      "http://%31%32%37.0.0.1/",
      "http://allowed.example@127.0.0.1/",
      "http://127.0.0.1\\@allowed.example/",
      "amqp://u:p@0x7f.1:5672/?queue=q",
      "redis://%31%32%37.0.0.1:6379?stream=s",
      "nats://2130706433:4222?subject=a",
    ]) {
      expect(egressTarget(raw)?.host, raw).toBe("127.0.0.1");
    }
  });

  it("lower-cases names and drops a trailing dot; strips IPv6 brackets", () => {
    expect(canonicalHost("LOCALHOST.")).toBe("localhost");
    expect(egressTarget("http://[::ffff:127.0.0.1]:81/")).toEqual({
      host: "::ffff:7f00:1",
      port: 81,
      tls: false,
    });
    expect(egressTarget("rediss://h.example?stream=s")).toEqual({ host: "h.example", port: 6379, tls: true });
    expect(egressTarget("arn:aws:lambda:us-east-1:000000000000:function:f")).toBeNull();
  });
});

describe("the default rules", () => {
  it("refuse loopback and private addresses beyond loopback, in every spelling", async () => {
    const { p } = policy();
    for (const host of [
      "127.0.0.1",
      "127.9.9.9",
      "::1",
      "::ffff:127.0.0.1",
      "::ffff:7f00:1",
      "::ffff:0:127.0.0.1",
      "::127.0.0.1",
      "64:ff9b::127.0.0.1",
      "2002:7f00:1::",
      "10.1.2.3",
      "172.20.0.1",
      "192.168.1.1",
      "100.64.0.1",
      "fd00::1",
      "localhost",
      "localhost.",
    ]) {
      expect(await refusedFor(p, host), host).toMatch(/loopback|private|shared/);
    }
    expect(await refusedFor(p, "public.example")).toBeNull();
    expect(await refusedFor(p, "93.184.216.34")).toBeNull();
  });

  it("allow loopback and private addresses on a loopback-only server", async () => {
    const { p } = policy({ internalAllowed: true });
    for (const host of ["127.0.0.1", "::1", "10.0.0.1", "localhost", "::ffff:192.168.0.1"]) {
      expect(await refusedFor(p, host, 8080), host).toBeNull();
    }
  });

  it("always refuse link-local (metadata), unspecified, multicast and reserved addresses", async () => {
    const { p } = policy({ internalAllowed: true });
    for (const host of [
      "169.254.169.254",
      "::ffff:169.254.169.254",
      "fe80::1",
      "0.0.0.0",
      "0.1.2.3",
      "::",
      "224.0.0.1",
      "ff02::1",
      "255.255.255.255",
      "240.0.0.1",
    ]) {
      expect(await refusedFor(p, host), host).toMatch(/link-local|unspecified|multicast|reserved/);
    }
  });

  it("never allow this server's own API port on any of this machine's addresses, even when listed", async () => {
    const { p } = policy({
      internalAllowed: true,
      allow: ["127.0.0.0/8", "localhost", "192.0.2.0/24", "::1"],
    });
    for (const host of ["127.0.0.1", "127.0.0.2", "localhost", "::ffff:127.0.0.1", "0.0.0.0", "192.0.2.10"]) {
      expect(await refusedFor(p, host, 9000), host).toMatch(/own API/);
    }
    // The same port on another machine is someone else's.
    expect(await refusedFor(p, "public.example", 9000)).toBeNull();
    expect(await refusedFor(p, "127.0.0.1", 9001)).toBeNull();
  });

  it("refuse the store's address and port unless an address entry lists it", async () => {
    const { p } = policy({ internalAllowed: true }, { "db.internal": ["10.0.0.5"] });
    await p.setStore("postgres://u:p@db.internal:5433/lambent");
    expect(await refusedFor(p, "10.0.0.5", 5433)).toMatch(/store/);
    expect(await refusedFor(p, "db.internal", 5433)).toMatch(/store/);
    expect(await refusedFor(p, "10.0.0.5", 5672)).toBeNull();
    const { p: listed } = policy(
      { internalAllowed: true, allow: ["10.0.0.5"] },
      { "db.internal": ["10.0.0.5"] },
    );
    await listed.setStore("postgres://u:p@db.internal:5433/lambent");
    expect(await refusedFor(listed, "10.0.0.5", 5433)).toBeNull();
  });

  it("treat a local store as every local address on its port", async () => {
    const { p } = policy({ internalAllowed: true });
    await p.setStore("postgres://localhost/lambent");
    expect(await refusedFor(p, "127.0.0.1", 5432)).toMatch(/store/);
    expect(await refusedFor(p, "192.0.2.10", 5432)).toMatch(/store/);
  });
});

describe("--allow-destination-hosts", () => {
  it("parses names, suffixes, addresses and networks, and refuses anything else", () => {
    expect(parseAllowEntry("Broker.Internal.")).toEqual({ kind: "name", name: "broker.internal" });
    expect(parseAllowEntry("*.svc.cluster.local")).toEqual({ kind: "suffix", suffix: "svc.cluster.local" });
    expect(parseAllowEntry("10.0.0.0/8")).toMatchObject({ kind: "network", network: { prefix: 8 } });
    expect(parseAllowEntry("[fd00::]/8")).toMatchObject({ kind: "network", network: { prefix: 8 } });
    expect(parseAllowEntry("::1")).toMatchObject({ kind: "network", network: { prefix: 128 } });
    expect(parseAllowEntry("0x7f.1")).toMatchObject({ kind: "network", network: { bytes: [127, 0, 0, 1] } });
    for (const bad of ["", "10.0.0.0/33", "a b", "http://x/", "*.", "10.0.0.0/x"]) {
      expect(() => parseAllowEntry(bad), bad).toThrow(/--allow-destination-hosts/);
    }
  });

  it("an address or network entry allows what it covers, special ranges included", async () => {
    const { p } = policy({ allow: ["10.0.0.0/8", "169.254.169.254", "::ffff:192.168.0.0/112"] });
    expect(await refusedFor(p, "10.9.8.7")).toBeNull();
    expect(await refusedFor(p, "::ffff:10.9.8.7")).toBeNull();
    expect(await refusedFor(p, "169.254.169.254")).toBeNull();
    expect(await refusedFor(p, "192.168.3.4")).toBeNull();
    expect(await refusedFor(p, "172.16.0.1")).toMatch(/private/);
    expect(await refusedFor(p, "169.254.169.253")).toMatch(/link-local/);
  });

  it("a name entry allows the internal addresses that name resolves to, not special ones, not other names", async () => {
    const { p } = policy(
      { allow: ["broker.internal", "*.svc.local"] },
      {
        "broker.internal": ["10.0.0.7"],
        "q.svc.local": ["10.0.0.8"],
        "meta.svc.local": ["169.254.169.254"],
        "other.internal": ["10.0.0.7"],
        "svc.local": ["10.0.0.9"],
      },
    );
    expect(await refusedFor(p, "broker.internal")).toBeNull();
    expect(await refusedFor(p, "BROKER.INTERNAL.")).toBeNull();
    expect(await refusedFor(p, "q.svc.local")).toBeNull();
    expect(await refusedFor(p, "meta.svc.local")).toMatch(/link-local/);
    expect(await refusedFor(p, "other.internal")).toMatch(/private/);
    expect(await refusedFor(p, "svc.local")).toMatch(/private/);
  });
});

describe("pinning (anti DNS rebinding)", () => {
  it("checks every address a name resolves to", async () => {
    const { p } = policy({}, { "mixed.example": ["93.184.216.34", "127.0.0.1"] });
    expect(await refusedFor(p, "mixed.example")).toMatch(/mixed\.example resolves to 127\.0\.0\.1/);
  });

  it("a name that was fine at configuration time is refused when it resolves elsewhere at connection time", async () => {
    const { p, t } = policy({}, { "rebind.example": ["93.184.216.34"] });
    await expect(p.checkConfigured("http://rebind.example/hook", "The destination")).resolves.toBeUndefined();
    t["rebind.example"] = ["169.254.169.254"];
    await expect(p.pin("rebind.example", 80)).rejects.toThrow(/link-local/);
    t["rebind.example"] = ["10.0.0.1"];
    await expect(p.pin("rebind.example", 80)).rejects.toThrow(/private/);
  });

  it("returns the checked address to dial and keeps the name for TLS", async () => {
    const { p } = policy({}, { "mq.example": ["93.184.216.35"] });
    expect(await p.pin("mq.example", 5671)).toEqual({
      address: "93.184.216.35",
      family: 4,
      name: "mq.example",
    });
    const amqps = await pinBrokerUri(p, "amqps://u:p@mq.example/vh?queue=q");
    expect(amqps.url.toString()).toBe("amqps://u:p@93.184.216.35:5671/vh?queue=q");
    expect(amqps.tlsName).toBe("mq.example");
    expect((await natsOptions(p, "tls://mq.example?subject=s")).servers).toBe("93.184.216.35:4222");
  });

  it("builds ioredis options member by member, so URI query parameters cannot redirect the client", async () => {
    const { p } = policy({}, { "r.example": ["93.184.216.36"] });
    const o = await redisOptions(
      p,
      "redis://user:pw@r.example:6380/2?stream=s&path=/run/docker.sock&host=127.0.0.1",
    );
    expect(o).toEqual({
      host: "93.184.216.36",
      port: 6380,
      family: 4,
      username: "user",
      password: "pw",
      db: 2,
    });
  });

  it("answers a refused configuration with InvalidParameterValueException, credentials redacted", async () => {
    const { p } = policy();
    await expect(
      p.checkConfigured("amqp://u:secret@10.0.0.1/?queue=q", "The event source"),
    ).rejects.toMatchObject({
      type: "InvalidParameterValueException",
      statusCode: 400,
      message: expect.stringMatching(
        /^The event source amqp:\/\/u:\*\*\*\*@10\.0\.0\.1\/\?queue=q is not allowed: 10\.0\.0\.1 is a private address/,
      ),
    });
    // A name that does not resolve (yet) is accepted: every connection is checked again.
    await expect(p.checkConfigured("http://nowhere.example/", "The destination")).resolves.toBeUndefined();
  });
});
