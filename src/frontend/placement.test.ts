import { describe, expect, it } from "vitest";
import { type Candidate, place } from "./placement.js";

const w = (id: string, zone: string, freeMemoryMb: number, environments = 0): Candidate => ({
  id,
  zone,
  freeMemoryMb,
  environments,
});

describe("placement", () => {
  it("spreads a version's environments across zones before packing", () => {
    const workers = [w("a1", "a", 1000, 2), w("a2", "a", 4000, 0), w("b1", "b", 8000, 1)];
    expect(place(workers, 128)?.id).toBe("b1");
  });

  it("packs by free memory inside the zone it picked", () => {
    const workers = [w("a1", "a", 4000), w("a2", "a", 512), w("b1", "b", 300, 0)];
    // Zone b has none of this version but its worker cannot fit 512 MB: zone a, the fullest worker that fits.
    expect(place(workers, 512)?.id).toBe("a2");
  });

  it("answers undefined when no worker has the memory", () => {
    expect(place([w("a1", "a", 100)], 128)).toBeUndefined();
  });
});
