/**
 * The artifact store: code packages and layers, named by sha256, extracted
 * once into a cache on this machine's disk. A worker gets everything it
 * mounts into a sandbox from here; where the bytes come from (the store's
 * tables, read by any node of a cluster) is the composition root's choice.
 */

/** A function's layers merged in order (later layers win), seen as /opt. */
export interface MergedLayers {
  /** The read-only directory seen as /opt. */
  dir: string;
  /** Executable names in `/opt/extensions/`, sorted (Lambda starts them in name order). */
  extensions: string[];
}

export interface ArtifactStore {
  /** The extracted code package with this sha256 (a directory, read-only to sandboxes). */
  code(sha256: string): Promise<string>;
  /** The merged /opt of these layer contents (by sha256, in the function's order). */
  layers(sha256s: string[]): Promise<MergedLayers>;
}
