/**
 * Hand-made zips for attack tests: any name bytes (NUL, invalid UTF-8,
 * absolute, ".."), symlinks, lying size headers and entries that share data —
 * everything a zip library refuses to write.
 */
import { deflateRawSync } from "node:zlib";

export interface RawEntry {
  /** The name as stored (a string is written as UTF-8). */
  name: string | Buffer;
  /** File content, or a symlink's target. */
  data?: string | Buffer;
  /** Unix mode; 0o120777 makes a symlink, 0o040755 a directory. Default a regular file. */
  mode?: number;
  deflate?: boolean;
  /** Override the uncompressed size written in the headers (a lying header). */
  claimedSize?: number;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const b of buf) c = (CRC_TABLE[(c ^ b) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

interface Placed {
  name: Buffer;
  method: number;
  crc: number;
  compressed: number;
  size: number;
  mode: number;
  offset: number;
}

function centralDirectory(placed: Placed[], cdOffset: number): Buffer {
  const parts: Buffer[] = [];
  for (const p of placed) {
    const h = Buffer.alloc(46);
    h.writeUInt32LE(0x02014b50, 0);
    h.writeUInt16LE((3 << 8) | 20, 4); // made by Unix
    h.writeUInt16LE(20, 6);
    h.writeUInt16LE(0x0800, 8); // UTF-8 names
    h.writeUInt16LE(p.method, 10);
    h.writeUInt32LE(p.crc, 16);
    h.writeUInt32LE(p.compressed, 20);
    h.writeUInt32LE(p.size, 24);
    h.writeUInt16LE(p.name.length, 28);
    h.writeUInt32LE((p.mode << 16) >>> 0, 38);
    h.writeUInt32LE(p.offset, 42);
    parts.push(h, p.name);
  }
  const cd = Buffer.concat(parts);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(placed.length, 8);
  end.writeUInt16LE(placed.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(cdOffset, 16);
  return Buffer.concat([cd, end]);
}

function localHeader(p: Placed): Buffer {
  const h = Buffer.alloc(30);
  h.writeUInt32LE(0x04034b50, 0);
  h.writeUInt16LE(20, 4);
  h.writeUInt16LE(0x0800, 6);
  h.writeUInt16LE(p.method, 8);
  h.writeUInt32LE(p.crc, 14);
  h.writeUInt32LE(p.compressed, 18);
  h.writeUInt32LE(p.size, 22);
  h.writeUInt16LE(p.name.length, 26);
  return Buffer.concat([h, p.name]);
}

/** A zip of these entries, in order. */
export function rawZip(entries: RawEntry[]): Buffer {
  const body: Buffer[] = [];
  const placed: Placed[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.isBuffer(e.name) ? e.name : Buffer.from(e.name, "utf8");
    const data = Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data ?? "", "utf8");
    const stored = e.deflate ? deflateRawSync(data) : data;
    const p: Placed = {
      name,
      method: e.deflate ? 8 : 0,
      crc: crc32(data),
      compressed: stored.length,
      size: e.claimedSize ?? data.length,
      mode: e.mode ?? 0o100644,
      offset,
    };
    const local = localHeader(p);
    body.push(local, stored);
    placed.push(p);
    offset += local.length + stored.length;
  }
  return Buffer.concat([...body, centralDirectory(placed, offset)]);
}

/**
 * The "overlapping files" bomb: one deflated block, and `count` central
 * directory entries that all point at it under different names.
 */
export function overlappingZip(count: number, bytesEach: number): Buffer {
  const data = Buffer.alloc(bytesEach, 0x61);
  const stored = deflateRawSync(data);
  const first: Placed = {
    name: Buffer.from("f0"),
    method: 8,
    crc: crc32(data),
    compressed: stored.length,
    size: data.length,
    mode: 0o100644,
    offset: 0,
  };
  const local = localHeader(first);
  const placed = Array.from({ length: count }, (_, i) => ({ ...first, name: Buffer.from(`f${i}`) }));
  // Every entry's name is two bytes, so the one local header serves them all.
  return Buffer.concat([local, stored, centralDirectory(placed, local.length + stored.length)]);
}
