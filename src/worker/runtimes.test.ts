/** Node's heap limits from a function's memory, as Lambda's /var/runtime/bootstrap computes them. */
import { describe, expect, it } from "vitest";
import { NODE_FLAGS, nodeHeapFlags } from "./runtimes.js";

describe("node flags", () => {
  it("are Lambda's: --expose-gc and the header size, the heap from memory with integer division", () => {
    expect(NODE_FLAGS).toEqual(["--expose-gc", "--max-http-header-size", "81920"]);
    expect(nodeHeapFlags(128)).toEqual(["--max-semi-space-size=6", "--max-old-space-size=116"]);
    expect(nodeHeapFlags(129)).toEqual(["--max-semi-space-size=6", "--max-old-space-size=117"]);
    expect(nodeHeapFlags(1024)).toEqual(["--max-semi-space-size=51", "--max-old-space-size=922"]);
    expect(nodeHeapFlags(10240)).toEqual(["--max-semi-space-size=512", "--max-old-space-size=9216"]);
  });

  it("never produce an unparsable or zero old space, whatever the value", () => {
    for (const mb of [0, -5, 1, 9.7, Number.NaN, Number.POSITIVE_INFINITY]) {
      const flags = nodeHeapFlags(mb);
      expect(flags).toHaveLength(2);
      for (const f of flags) expect(f).toMatch(/^--max-(semi|old)-space-size=\d+$/);
      expect(Number(flags[1]?.split("=")[1])).toBeGreaterThan(0);
    }
  });
});
