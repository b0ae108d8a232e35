/**
 * Where a worker node's artifact cache gets its bytes: the store's own tables
 * (code packages by sha256 in `code_blobs`, layer contents in
 * `layer_versions`), which every node of a cluster reaches through the same
 * PostgreSQL.
 */
import type { Store } from "../store/store.js";

export function loadCodeZip(store: Store): (sha256: string) => Promise<Buffer> {
  return async (sha256) => {
    const row = await store.db
      .selectFrom("code_blobs")
      .select("data")
      .where("sha256", "=", sha256)
      .executeTakeFirst();
    if (!row) throw new Error(`code package ${sha256} is not in the store`);
    return Buffer.from(row.data);
  };
}

export function loadLayerZip(store: Store): (sha256: string) => Promise<Buffer> {
  return async (sha256) => {
    const row = await store.db
      .selectFrom("layer_versions")
      .select("data")
      .where("code_sha256", "=", sha256)
      .limit(1)
      .executeTakeFirst();
    if (!row) throw new Error(`layer content ${sha256} is not in the store`);
    return Buffer.from(row.data);
  };
}
