import { describe, expect, it } from "vitest";
import { decodeMarker, encodeMarker, pageAfter } from "./marker.js";

describe("pagination markers", () => {
  it("round-trip a key, opaquely", () => {
    expect(decodeMarker(encodeMarker("fn:$LATEST"))).toBe("fn:$LATEST");
    expect(encodeMarker("fn")).not.toContain("fn");
  });

  it("refuse markers that are not ours with InvalidParameterValueException", () => {
    for (const bad of ["", "%%%", "////", `${encodeMarker("x").slice(0, -1)}!`, "__8"]) {
      expect(() => decodeMarker(bad), bad).toThrow(expect.objectContaining({ message: "Invalid Marker" }));
    }
  });

  it("page by key, so a page does not shift when an item before the marker goes away", () => {
    const items = ["d", "a", "c", "b", "e"];
    const first = pageAfter(items, (s) => s, undefined, 2);
    expect(first.page).toEqual(["a", "b"]);
    const remaining = items.filter((s) => s !== "a");
    const second = pageAfter(remaining, (s) => s, first.nextMarker, 2);
    expect(second.page).toEqual(["c", "d"]);
    const last = pageAfter(remaining, (s) => s, second.nextMarker, 2);
    expect(last).toEqual({ page: ["e"] });
  });
});
