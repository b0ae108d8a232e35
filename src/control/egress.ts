/**
 * Where the server itself may connect on a caller's say-so: destination URLs,
 * dead-letter targets and event source mapping brokers (issue 13, item 6).
 *
 * Every such target is checked twice: when it is configured (an AWS-shaped
 * InvalidParameterValueException) and each time a connection is opened, where
 * the name is resolved, EVERY address it resolves to is checked, and the client
 * then connects to the checked address (`pin`), so a name cannot resolve to a
 * public address at the check and to an internal one at the connect (DNS
 * rebinding). The rules, in order:
 *
 * 1. This server's own API port on any of this machine's addresses: never.
 * 2. The store's address and port (`--database`): refused unless an address or
 *    network entry of `--allow-destination-hosts` covers it.
 * 3. An address or network entry covering the address: allowed.
 * 4. Link-local (169.254/16, fe80::/10: cloud metadata endpoints), 0.0.0.0/8
 *    and `::`, multicast, 240/4 and broadcast: refused (rule 3 is the only way in).
 * 5. Loopback and private ranges (127/8, ::1, 10/8, 172.16/12, 192.168/16,
 *    100.64/10, 198.18/15, 192.0.0/24, fc00::/7, fec0::/10): allowed on a server
 *    listening on loopback only (a developer's machine) or when the target's
 *    host name matches a name or `*.suffix` entry; refused otherwise.
 * 6. Anything else (public addresses): allowed.
 *
 * Addresses are compared in one canonical form: IPv4 written any way
 * (`2130706433`, `0x7f.1`, `0177.0.0.1`, percent-encoded) is parsed as the
 * WHATWG URL parser does, and IPv6 forms that carry an IPv4 address
 * (`::ffff:a.b.c.d`, `::a.b.c.d`, `::ffff:0:a.b.c.d`, NAT64 `64:ff9b::/96`,
 * 6to4 `2002::/16`) are judged as that IPv4 address.
 */
import { lookup as dnsLookup } from "node:dns/promises";
import { isIP } from "node:net";
import { networkInterfaces } from "node:os";
import { InvalidParameterValue } from "../errors.js";
import { parseBrokerUri, redact } from "./broker-uri.js";

/** A connection the policy refused. */
export class EgressRefused extends Error {
  override name = "EgressRefused";
}

/** Resolves a host name to its addresses (`dns.lookup` with `all`, by default; injectable for tests). */
export type Resolver = (hostname: string) => Promise<string[]>;

/** A checked address to connect to, and the name to present (TLS SNI, Host) when there was one. */
export interface PinnedAddress {
  address: string;
  family: 4 | 6;
  /** The host name as given (null for an address literal). */
  name: string | null;
}

/** The host and port a target URL or broker URI connects to, or null for targets that are not network addresses. */
export interface EgressTarget {
  /** Canonical: a lower-case name without trailing dot, or an address without brackets. */
  host: string;
  port: number;
  tls: boolean;
}

const DEFAULT_PORTS: Record<string, number> = {
  "http:": 80,
  "https:": 443,
  "amqp:": 5672,
  "amqps:": 5671,
  "nats:": 4222,
  "tls:": 4222,
  "redis:": 6379,
  "rediss:": 6379,
};
const TLS_SCHEMES = new Set(["https:", "amqps:", "tls:", "rediss:"]);

/**
 * A host as a URL gives it, made canonical the way an http:// URL would parse it: decimal, octal and
 * hex IPv4 forms become dotted quads, percent-encoding is decoded, brackets go, names are lower-cased
 * and lose a trailing dot. Null when it is not a usable host.
 */
export function canonicalHost(raw: string): string | null {
  if (raw === "") return null;
  let host: string;
  try {
    host = new URL(`http://${raw}/`).hostname;
  } catch {
    return null;
  }
  if (host.startsWith("[")) return host.slice(1, -1).toLowerCase();
  host = host.toLowerCase().replace(/\.+$/, "");
  return host === "" ? null : host;
}

/** Where a destination, dead-letter target or broker URI connects, or null (a function ARN, anything not a URL). */
export function egressTarget(raw: string): EgressTarget | null {
  let url: URL;
  if (/^https?:\/\//i.test(raw)) {
    try {
      url = new URL(raw);
    } catch {
      return null;
    }
  } else {
    const broker = parseBrokerUri(raw);
    if (!broker) return null;
    url = broker.url;
  }
  const host = canonicalHost(url.hostname);
  if (host === null) throw new EgressRefused(`${JSON.stringify(url.hostname)} is not a valid host`);
  return {
    host,
    port: url.port ? Number(url.port) : (DEFAULT_PORTS[url.protocol] ?? 0),
    tls: TLS_SCHEMES.has(url.protocol),
  };
}

// ---- addresses ---------------------------------------------------------------------------------

type Bytes = number[];

function ipv4Bytes(ip: string): Bytes | null {
  const parts = ip.split(".");
  if (parts.length !== 4) return null;
  const out = parts.map((p) => (/^\d{1,3}$/.test(p) ? Number(p) : -1));
  return out.every((n) => n >= 0 && n <= 255) ? out : null;
}

function ipv6Bytes(raw: string): Bytes | null {
  const ip = raw.replace(/%.*$/, "");
  if (isIP(ip) !== 6) return null;
  let text = ip;
  let tail: Bytes = [];
  const lastColon = text.lastIndexOf(":");
  if (text.slice(lastColon + 1).includes(".")) {
    const v4 = ipv4Bytes(text.slice(lastColon + 1));
    if (!v4) return null;
    tail = v4;
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [head = "", rest] = text.split("::");
  const groups = (s: string) => (s === "" ? [] : s.split(":").map((g) => Number.parseInt(g, 16)));
  const h = groups(head);
  const r = rest === undefined ? [] : groups(rest);
  const words = rest === undefined ? h : [...h, ...new Array<number>(8 - h.length - r.length).fill(0), ...r];
  if (words.length !== 8) return null;
  const bytes = words.flatMap((w) => [w >> 8, w & 0xff]);
  if (tail.length === 4) bytes.splice(12, 4, ...tail);
  return bytes;
}

/** 4 bytes for IPv4 (including IPv4 carried in IPv6), 16 for other IPv6; null for non-addresses. */
function addressBytes(ip: string): Bytes | null {
  const family = isIP(ip.replace(/%.*$/, ""));
  if (family === 4) return ipv4Bytes(ip);
  if (family !== 6) return null;
  const b = ipv6Bytes(ip);
  if (!b) return null;
  const zeros = (from: number, to: number) => b.slice(from, to).every((x) => x === 0);
  // ::ffff:a.b.c.d (mapped), ::ffff:0:a.b.c.d (SIIT), ::a.b.c.d (compatible; not :: or ::1)
  if (zeros(0, 10) && b[10] === 0xff && b[11] === 0xff) return b.slice(12);
  if (zeros(0, 8) && b[8] === 0xff && b[9] === 0xff && zeros(10, 12)) return b.slice(12);
  if (zeros(0, 12) && !(zeros(12, 15) && (b[15] === 0 || b[15] === 1))) return b.slice(12);
  // NAT64 64:ff9b::/96 and 6to4 2002::/16 reach the IPv4 address they carry.
  if (b[0] === 0 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zeros(4, 12)) return b.slice(12);
  if (b[0] === 0x20 && b[1] === 0x02) return b.slice(2, 6);
  return b;
}

interface Network {
  bytes: Bytes;
  prefix: number;
}

function inNetwork(addr: Bytes, net: Network): boolean {
  if (addr.length !== net.bytes.length) return false;
  let bits = net.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((addr[i] as number) & mask) !== ((net.bytes[i] as number) & mask)) return false;
  }
  return true;
}

function net(cidr: string): Network {
  const [ip = "", prefix = ""] = cidr.split("/");
  const bytes = addressBytes(ip) as Bytes;
  return { bytes, prefix: Number(prefix) };
}

type AddressClass = "public" | "internal" | "special";

const CLASSES: Array<[Network, AddressClass, string]> = [
  [net("0.0.0.0/8"), "special", "an unspecified (0.0.0.0/8) address"],
  [net("169.254.0.0/16"), "special", "a link-local address (cloud metadata endpoints live there)"],
  [net("224.0.0.0/4"), "special", "a multicast address"],
  [net("240.0.0.0/4"), "special", "a reserved or broadcast address"],
  [net("::/128"), "special", "the unspecified address"],
  [net("fe80::/10"), "special", "a link-local address"],
  [net("ff00::/8"), "special", "a multicast address"],
  [net("127.0.0.0/8"), "internal", "a loopback address"],
  [net("::1/128"), "internal", "a loopback address"],
  [net("10.0.0.0/8"), "internal", "a private address"],
  [net("172.16.0.0/12"), "internal", "a private address"],
  [net("192.168.0.0/16"), "internal", "a private address"],
  [net("100.64.0.0/10"), "internal", "a shared (carrier-grade NAT) address"],
  [net("198.18.0.0/15"), "internal", "a private (benchmarking) address"],
  [net("192.0.0.0/24"), "internal", "a private (IETF protocol) address"],
  [net("fc00::/7"), "internal", "a private (unique local) address"],
  [net("fec0::/10"), "internal", "a private (site-local) address"],
];

const LOOPBACK_OR_UNSPECIFIED = [net("127.0.0.0/8"), net("::1/128"), net("0.0.0.0/8"), net("::/128")];

function classify(addr: Bytes): { cls: AddressClass; what: string } {
  for (const [n, cls, what] of CLASSES) if (inNetwork(addr, n)) return { cls, what };
  return { cls: "public", what: "a public address" };
}

function sameAddress(a: Bytes, b: Bytes): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function show(addr: Bytes): string {
  if (addr.length === 4) return addr.join(".");
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2)
    words.push((((addr[i] as number) << 8) | (addr[i + 1] as number)).toString(16));
  return new URL(`http://[${words.join(":")}]/`).hostname.slice(1, -1);
}

// ---- the allow-list ----------------------------------------------------------------------------

type AllowEntry =
  | { kind: "network"; network: Network }
  | { kind: "name"; name: string }
  | { kind: "suffix"; suffix: string };

const NAME_RE = /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/;

/** One `--allow-destination-hosts` entry: a host name, `*.suffix`, an address, or a network (CIDR). */
export function parseAllowEntry(raw: string): AllowEntry {
  const entry = raw.trim();
  const bad = (why: string) =>
    new Error(
      `--allow-destination-hosts: ${JSON.stringify(raw)} ${why} (use a host name, *.suffix, an address or a CIDR network)`,
    );
  if (entry.startsWith("*.") || (entry.startsWith(".") && entry.length > 1)) {
    const suffix = entry
      .replace(/^\*?\./, "")
      .toLowerCase()
      .replace(/\.+$/, "");
    if (!NAME_RE.test(suffix)) throw bad("is not a valid *.suffix");
    return { kind: "suffix", suffix };
  }
  const slash = entry.indexOf("/");
  if (slash >= 0) {
    const ip = entry.slice(0, slash).replace(/^\[|\]$/g, "");
    const prefixText = entry.slice(slash + 1);
    const bytes = addressBytes(ip);
    if (!bytes || !/^\d{1,3}$/.test(prefixText)) throw bad("is not a valid network");
    // A network written in IPv6 that carries IPv4 (::ffff:10.0.0.0/104) counts its prefix in IPv4 bits.
    const prefix = Number(prefixText) - (isIP(ip) === 6 && bytes.length === 4 ? 96 : 0);
    if (prefix < 0 || prefix > bytes.length * 8) throw bad("has a prefix length out of range");
    return { kind: "network", network: { bytes, prefix } };
  }
  const host = canonicalHost(entry.includes(":") && !entry.startsWith("[") ? `[${entry}]` : entry);
  if (host === null) throw bad("is not a valid host");
  const bytes = addressBytes(host);
  if (bytes) return { kind: "network", network: { bytes, prefix: bytes.length * 8 } };
  if (!NAME_RE.test(host)) throw bad("is not a valid host name");
  return { kind: "name", name: host };
}

/** A comma-separated `--allow-destination-hosts` value, entries checked. */
export function parseAllowList(raw: string): string[] {
  const entries = raw
    .split(",")
    .map((e) => e.trim())
    .filter((e) => e !== "");
  for (const e of entries) parseAllowEntry(e);
  return entries;
}

// ---- the policy --------------------------------------------------------------------------------

export interface EgressOptions {
  /** `--allow-destination-hosts` entries (host names, `*.suffix`, addresses, CIDR networks). */
  allow: readonly string[];
  /** Loopback and private addresses allowed without an entry (default: the server listens on loopback only). */
  internalAllowed: boolean;
  /** Name resolution (default: the system's, as clients would resolve). */
  resolve?: Resolver;
  /** This machine's own addresses (default: its network interfaces'). */
  localAddresses?: () => string[];
}

const systemResolve: Resolver = async (hostname) =>
  (await dnsLookup(hostname, { all: true, verbatim: true })).map((a) => a.address);

function machineAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
}

export class EgressPolicy {
  private readonly entries: AllowEntry[];
  private readonly resolver: Resolver;
  private readonly localAddresses: () => string[];
  /** This server's API port (set once it listens). */
  private apiPort = 0;
  private store: { port: number; addresses: Bytes[]; local: boolean } | null = null;

  constructor(private readonly options: EgressOptions) {
    this.entries = options.allow.map(parseAllowEntry);
    this.resolver = options.resolve ?? systemResolve;
    this.localAddresses = options.localAddresses ?? machineAddresses;
  }

  /** The port the API listens on: never a destination on this machine. */
  setApiPort(port: number): void {
    this.apiPort = port;
  }

  /** The store's server (`--database`): refused unless an address or network entry covers it. */
  async setStore(databaseUrl: string): Promise<void> {
    let url: URL;
    try {
      url = new URL(databaseUrl);
    } catch {
      return;
    }
    // A Unix socket (`?host=/run/postgresql`) is not reachable over TCP.
    const host = canonicalHost(url.hostname || "localhost");
    if (host === null) return;
    const port = url.port ? Number(url.port) : 5432;
    const literal = addressBytes(host);
    let addresses: Bytes[] = literal ? [literal] : [];
    if (!literal) {
      try {
        addresses = (await this.resolver(host)).map(addressBytes).filter((b): b is Bytes => b !== null);
      } catch {
        addresses = [];
      }
    }
    this.store = { port, addresses, local: addresses.some((a) => this.isLocal(a)) };
  }

  private isLocal(addr: Bytes): boolean {
    if (LOOPBACK_OR_UNSPECIFIED.some((n) => inNetwork(addr, n))) return true;
    return this.localAddresses().some((a) => {
      const b = addressBytes(a);
      return b !== null && sameAddress(b, addr);
    });
  }

  private listedAddress(addr: Bytes): boolean {
    return this.entries.some((e) => e.kind === "network" && inNetwork(addr, e.network));
  }

  private listedName(name: string | null): boolean {
    if (name === null) return false;
    return this.entries.some(
      (e) => (e.kind === "name" && e.name === name) || (e.kind === "suffix" && name.endsWith(`.${e.suffix}`)),
    );
  }

  /** Why connecting to `address:port` (reached through `name`, if any) is refused, or null. */
  refusal(address: string, port: number, name: string | null): string | null {
    const addr = addressBytes(address);
    if (!addr) return `${address} is not an address`;
    const shown = show(addr);
    if (port === this.apiPort && this.isLocal(addr))
      return `${shown}:${port} is this server's own API; it is never a destination`;
    const listed = this.listedAddress(addr);
    if (
      this.store &&
      port === this.store.port &&
      (this.store.addresses.some((s) => sameAddress(s, addr)) || (this.store.local && this.isLocal(addr))) &&
      !listed
    ) {
      return `${shown}:${port} is this server's store (--database); list the address in --allow-destination-hosts to allow it`;
    }
    if (listed) return null;
    const { cls, what } = classify(addr);
    if (cls === "special")
      return `${shown} is ${what}; only an address or network entry in --allow-destination-hosts allows it`;
    if (cls === "internal" && !this.options.internalAllowed && !this.listedName(name))
      return `${shown} is ${what} and this server listens beyond loopback; list it in --allow-destination-hosts to allow it`;
    return null;
  }

  /**
   * Resolve `host`, check every address it resolves to, and return the one to connect to.
   * Throws EgressRefused when any address is refused; resolution errors pass through.
   */
  async pin(host: string, port: number): Promise<PinnedAddress> {
    const canonical = canonicalHost(host.includes(":") && !host.startsWith("[") ? `[${host}]` : host);
    if (canonical === null) throw new EgressRefused(`${JSON.stringify(host)} is not a valid host`);
    const literal = isIP(canonical) !== 0;
    const name = literal ? null : canonical;
    const addresses = literal ? [canonical] : await this.resolver(canonical);
    if (addresses.length === 0) throw new EgressRefused(`${canonical} resolves to no address`);
    for (const a of addresses) {
      const why = this.refusal(a, port, name);
      if (why) throw new EgressRefused(name ? `${name} resolves to ${why}` : why);
    }
    const address = (addresses[0] as string).replace(/%.*$/, "");
    return { address, family: isIP(address) === 6 ? 6 : 4, name };
  }

  /**
   * Configuration time: refuse a target (destination URL, broker URI) the policy would refuse to
   * connect to, with Lambda's InvalidParameterValueException. A name that does not resolve (yet)
   * is accepted: every connection is checked again.
   */
  async checkConfigured(raw: string, what: string): Promise<void> {
    let target: EgressTarget | null;
    try {
      target = egressTarget(raw);
      if (!target) return;
      await this.pin(target.host, target.port);
    } catch (err) {
      if (err instanceof EgressRefused)
        throw InvalidParameterValue(`${what} ${redact(raw)} is not allowed: ${err.message}.`);
      // Resolution failures: checked again at every connection.
    }
  }
}

/** The pinned address as a URL host (IPv6 in brackets). */
export function urlHost(pinned: PinnedAddress): string {
  return pinned.family === 6 ? `[${pinned.address}]` : pinned.address;
}

/**
 * A broker URI made ready to dial: its host replaced by the checked address (so the client library
 * never resolves or re-parses the name itself), with the name kept for TLS (SNI, certificate check).
 */
export async function pinBrokerUri(
  egress: EgressPolicy,
  raw: string,
): Promise<{ url: URL; pinned: PinnedAddress; tlsName: string | null }> {
  const target = egressTarget(raw);
  const broker = parseBrokerUri(raw);
  if (!target || !broker) throw new EgressRefused(`${redact(raw)} is not a broker URI`);
  const pinned = await egress.pin(target.host, target.port);
  const url = new URL(broker.url.toString());
  url.hostname = urlHost(pinned);
  url.port = String(target.port);
  return { url, pinned, tlsName: target.tls ? pinned.name : null };
}

/**
 * NATS connection options for a broker URI, dialling the checked address: no name resolution of the
 * client's own (`resolve: false`), no servers learnt from the cluster, no reconnects elsewhere.
 */
export async function natsOptions(egress: EgressPolicy, raw: string) {
  const { url, tlsName } = await pinBrokerUri(egress, raw);
  // nats.js hands its tls options to tls.connect (servername included) but does not declare servername.
  const tls: { rejectUnauthorized?: boolean } = tlsName ? ({ servername: tlsName } as object) : {};
  return {
    servers: `${url.hostname}:${url.port}`,
    reconnect: false,
    resolve: false,
    ignoreClusterUpdates: true,
    ...(url.username ? { user: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { pass: decodeURIComponent(url.password) } : {}),
    ...(url.protocol === "tls:" ? { tls } : {}),
  };
}

/**
 * ioredis options for a broker URI, dialling the checked address. Built member by member, never by
 * handing ioredis the URI: ioredis turns every query parameter into an option (`?path=` would dial a
 * Unix socket of this machine, `?host=` another host).
 */
export async function redisOptions(egress: EgressPolicy, raw: string) {
  const { url, pinned, tlsName } = await pinBrokerUri(egress, raw);
  const db = url.pathname.replace(/^\//, "");
  return {
    host: pinned.address,
    port: Number(url.port),
    family: pinned.family,
    // As ioredis reads a URI's credentials: both members once either is there.
    ...(url.username || url.password
      ? { username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) }
      : {}),
    ...(/^\d+$/.test(db) ? { db: Number(db) } : {}),
    ...(url.protocol === "rediss:" ? { tls: tlsName ? { servername: tlsName } : {} } : {}),
  };
}
