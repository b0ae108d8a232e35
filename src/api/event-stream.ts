/**
 * AWS's binary event-stream framing (`application/vnd.amazon.eventstream`), as InvokeWithResponseStream
 * answers and the SDKs decode: each message is a prelude (total length, headers length, CRC32 of those
 * 8 bytes), headers (`:event-type`, `:content-type`, `:message-type`, string-typed), the payload, and a
 * CRC32 of everything before it.
 */

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = (CRC_TABLE[(c ^ (bytes[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Header value type 7: a UTF-8 string of up to 2^15 - 1 bytes. */
const STRING_TYPE = 7;

function encodeHeaders(headers: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(headers)) {
    const n = Buffer.from(name, "utf8");
    const v = Buffer.from(value, "utf8");
    const head = Buffer.alloc(1 + n.length + 1 + 2);
    head.writeUInt8(n.length, 0);
    n.copy(head, 1);
    head.writeUInt8(STRING_TYPE, 1 + n.length);
    head.writeUInt16BE(v.length, 2 + n.length);
    parts.push(head, v);
  }
  return Buffer.concat(parts);
}

/** One event-stream message. */
export function encodeMessage(headers: Record<string, string>, payload: Uint8Array): Buffer {
  const h = encodeHeaders(headers);
  const total = 12 + h.length + payload.length + 4;
  const out = Buffer.alloc(total);
  out.writeUInt32BE(total, 0);
  out.writeUInt32BE(h.length, 4);
  out.writeUInt32BE(crc32(out, 0, 8), 8);
  h.copy(out, 12);
  out.set(payload, 12 + h.length);
  out.writeUInt32BE(crc32(out, 0, total - 4), total - 4);
  return out;
}

/** An `event` message of the given type. */
export function eventMessage(eventType: string, contentType: string, payload: Uint8Array): Buffer {
  return encodeMessage(
    { ":event-type": eventType, ":content-type": contentType, ":message-type": "event" },
    payload,
  );
}

/** A decoded message (tests and clients of our own). */
export interface DecodedMessage {
  headers: Record<string, string>;
  payload: Buffer;
}

/** Decode whole messages from the front of `buf`; returns them and the bytes left over. */
export function decodeMessages(buf: Buffer): { messages: DecodedMessage[]; rest: Buffer } {
  const messages: DecodedMessage[] = [];
  let at = 0;
  while (buf.length - at >= 16) {
    const total = buf.readUInt32BE(at);
    if (buf.length - at < total) break;
    const headersLength = buf.readUInt32BE(at + 4);
    if (crc32(buf, at, at + 8) !== buf.readUInt32BE(at + 8)) throw new Error("event stream: bad prelude CRC");
    if (crc32(buf, at, at + total - 4) !== buf.readUInt32BE(at + total - 4)) {
      throw new Error("event stream: bad message CRC");
    }
    const headers: Record<string, string> = {};
    let p = at + 12;
    const headersEnd = p + headersLength;
    while (p < headersEnd) {
      const nameLength = buf.readUInt8(p);
      const name = buf.toString("utf8", p + 1, p + 1 + nameLength);
      p += 1 + nameLength;
      const type = buf.readUInt8(p);
      if (type !== STRING_TYPE) throw new Error(`event stream: header type ${type} not supported`);
      const valueLength = buf.readUInt16BE(p + 1);
      headers[name] = buf.toString("utf8", p + 3, p + 3 + valueLength);
      p += 3 + valueLength;
    }
    messages.push({ headers, payload: Buffer.from(buf.subarray(headersEnd, at + total - 4)) });
    at += total;
  }
  return { messages, rest: buf.subarray(at) };
}
