/** JSON store columns are checked when read: a corrupt row is a clear ServiceException naming table and column. */
import { describe, expect, it } from "vitest";
import {
  numberMapColumn,
  objectColumn,
  requireMembers,
  stringListColumn,
  stringMapColumn,
} from "./columns.js";

describe("store JSON columns", () => {
  it("parse rows of the promised shape", () => {
    expect(stringListColumn("layer_versions", "compatible_runtimes", '["nodejs22.x"]')).toEqual([
      "nodejs22.x",
    ]);
    expect(stringMapColumn("functions", "tags", '{"a":"b"}')).toEqual({ a: "b" });
    expect(numberMapColumn("aliases", "weights", '{"2":0.5}')).toEqual({ "2": 0.5 });
  });

  it("refuse corrupt rows with the table and column named", () => {
    const bad: Array<() => unknown> = [
      () => stringMapColumn("functions", "tags", "{not json"),
      () => stringMapColumn("functions", "tags", '{"a":1}'),
      () => stringMapColumn("functions", "tags", "[]"),
      () => stringListColumn("layer_versions", "compatible_runtimes", '["a",2]'),
      () => stringListColumn("layer_versions", "compatible_runtimes", "null"),
      () => numberMapColumn("aliases", "weights", '{"2":"x"}'),
      () => objectColumn("async_events", "meta", '"text"'),
    ];
    for (const f of bad) {
      expect(f).toThrow(/^Corrupt store row: \w+\.\w+ /);
      try {
        f();
      } catch (e) {
        expect((e as { type?: string; statusCode?: number }).statusCode ?? 500).toBe(500);
      }
    }
  });

  it("check required and optional members", () => {
    const v = objectColumn("function_versions", "config", '{"Handler":"index.handler","Timeout":"3"}');
    expect(() =>
      requireMembers<{ Handler: string; Timeout: number }>("function_versions", "config", v, {
        Handler: "string",
        Timeout: "number",
      }),
    ).toThrow("Corrupt store row: function_versions.config has Timeout of type string, expected number");
    const ok = objectColumn("async_events", "meta", '{"statusCode":200}');
    expect(() =>
      requireMembers<{ statusCode: number; payload?: string }>("async_events", "meta", ok, {
        statusCode: "number",
        payload: "string?",
      }),
    ).not.toThrow();
  });
});
