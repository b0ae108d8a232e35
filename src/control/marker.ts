/**
 * One pagination marker scheme for every List operation: a marker is the sort key of the last item of
 * the page before (keyset: it never shifts when items are added or removed before it), base64url-encoded
 * so clients treat it as opaque. A marker that does not decode to a key is InvalidParameterValueException
 * "Invalid Marker".
 */
import { InvalidParameterValue } from "../errors.js";

export function encodeMarker(lastKey: string): string {
  return Buffer.from(lastKey, "utf8").toString("base64url");
}

export function decodeMarker(marker: string): string {
  const key = Buffer.from(marker, "base64url").toString("utf8");
  if (!key || encodeMarker(key) !== marker.replace(/=+$/, "")) throw InvalidParameterValue("Invalid Marker");
  return key;
}

/**
 * One page of items held in memory, ordered by `keyOf` (code-point order, whatever the store's
 * collation), starting after the marker's key.
 */
export function pageAfter<T>(
  items: readonly T[],
  keyOf: (item: T) => string,
  marker: string | undefined,
  maxItems: number,
): { page: T[]; nextMarker?: string } {
  const after = marker === undefined ? undefined : decodeMarker(marker);
  const sorted = [...items].sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0));
  const rest = after === undefined ? sorted : sorted.filter((item) => keyOf(item) > after);
  const page = rest.slice(0, maxItems);
  const last = page[page.length - 1];
  return rest.length > maxItems && last ? { page, nextMarker: encodeMarker(keyOf(last)) } : { page };
}
