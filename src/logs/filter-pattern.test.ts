/**
 * CloudWatch Logs filter patterns: the documented forms (terms, phrases, exclusions, alternatives,
 * regular expressions, JSON and space-delimited patterns) over plain and JSON messages.
 */
import { describe, expect, it } from "vitest";
import { compileFilterPattern, FilterPatternError } from "./filter-pattern.js";

const LINES = [
  "[ERROR] Caught IllegalArgumentException",
  "[ERROR] Exiting with code 1",
  "[WARN] disk almost full",
  "[INFO] all good",
  '{"level":"ERROR","latency":250,"user":{"id":"u-17","admin":true},"tags":["a","b"],"note":null}',
  '{"level":"INFO","latency":12,"user":{"id":"u-2","admin":false},"eventType":"UpdateTrail"}',
  '127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 404 2326',
  '127.0.0.1 - alice [10/Oct/2000:13:26:15 -0700] "GET /index.html HTTP/1.0" 200 1000',
];

function matching(pattern: string): number[] {
  const m = compileFilterPattern(pattern);
  return LINES.flatMap((l, i) => (m(l) ? [i] : []));
}

describe("filter patterns", () => {
  it("empty matches everything", () => {
    expect(matching("")).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(matching('""')).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it("terms: all must appear, case-sensitive; quoted phrases; exclusions; ? alternatives", () => {
    expect(matching("ERROR")).toEqual([0, 1, 4]);
    expect(matching("error")).toEqual([]);
    expect(matching("ERROR Exiting")).toEqual([1]);
    expect(matching('"[ERROR] Caught"')).toEqual([0]);
    expect(matching("ERROR -Exiting")).toEqual([0, 4]);
    expect(matching("?WARN ?Exiting")).toEqual([1, 2]);
    expect(matching("?WARN ?INFO -good")).toEqual([2, 5]);
  });

  it("regular expressions", () => {
    expect(matching("%\\[(WARN|INFO)\\]%")).toEqual([2, 3]);
  });

  it("JSON patterns: =, !=, <, >, wildcards, nesting, arrays, booleans, null, exists, && and ||", () => {
    expect(matching('{ $.level = "ERROR" }')).toEqual([4]);
    expect(matching("{ $.level = ERROR }")).toEqual([4]);
    expect(matching('{ $.level != "ERROR" }')).toEqual([5]);
    expect(matching("{ $.latency > 100 }")).toEqual([4]);
    expect(matching("{ $.latency < 100 }")).toEqual([5]);
    expect(matching("{ $.latency >= 250 }")).toEqual([4]);
    expect(matching("{ $.latency <= 12 }")).toEqual([5]);
    expect(matching('{ $.user.id = "u-1*" }')).toEqual([4]);
    expect(matching('{ $.eventType = "Update*" }')).toEqual([5]);
    expect(matching("{ $.tags[1] = b }")).toEqual([4]);
    expect(matching("{ $.user.admin IS TRUE }")).toEqual([4]);
    expect(matching("{ $.user.admin IS FALSE }")).toEqual([5]);
    expect(matching("{ $.note IS NULL }")).toEqual([4]);
    expect(matching("{ $.eventType EXISTS }")).toEqual([5]);
    expect(matching("{ $.eventType NOT EXISTS }")).toEqual([4]);
    expect(matching('{ ($.level = "ERROR") && ($.latency > 100) }')).toEqual([4]);
    expect(matching('{ ($.level = "INFO") || ($.latency > 200) }')).toEqual([4, 5]);
    expect(matching('{ $.level = "INFO" && $.latency > 200 || $.user.admin IS TRUE }')).toEqual([4]);
    expect(matching("{ $.user.id = %u-[0-9]$% }")).toEqual([5]);
  });

  it("space-delimited patterns: named fields, comparisons, wildcards, ...", () => {
    expect(matching("[ip, id, user, timestamp, request, status_code = 404, bytes]")).toEqual([6]);
    expect(matching("[ip, id, user, timestamp, request, status_code = 4*, bytes]")).toEqual([6]);
    expect(matching("[..., status_code, bytes > 2000]")).toEqual([6]);
    expect(matching('[ip, id, user = "alice", ...]')).toEqual([7]);
    expect(matching("[ip, id, user, ..., status_code = 200 || status_code = 404, bytes]")).toEqual([6, 7]);
  });

  it("patterns that would backtrack without end are refused or matched in linear time", () => {
    for (const bad of ["%(a+)+$%", "%(a|aa)*b%", "%(x)\\1%", "%a(?=b)%", "{ $.user.id = %(\\w+)*!% }"]) {
      expect(() => compileFilterPattern(bad), bad).toThrow(/Unsupported regular expression/);
    }
    const long = "a".repeat(100_000);
    // 100 stars, 100 ellipses: no exponential search (each finishes at once).
    expect(compileFilterPattern(`{ $.v = "${"*a".repeat(100)}*b" }`)(JSON.stringify({ v: long }))).toBe(
      false,
    );
    const fields = `[${Array.from({ length: 100 }, () => "...").join(", ")}, last = "z"]`;
    expect(compileFilterPattern(fields)(Array.from({ length: 2000 }, () => "x").join(" "))).toBe(false);
    expect(compileFilterPattern(fields)("x x z")).toBe(true);
  });

  it("malformed patterns are errors", () => {
    for (const bad of ['{ $.level = "ERROR" ', "{ level = 1 }", '"unterminated', "{ $.a > abc }", "[a, b"]) {
      expect(() => compileFilterPattern(bad), bad).toThrow(FilterPatternError);
    }
  });
});
