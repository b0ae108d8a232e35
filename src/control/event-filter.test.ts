import { describe, expect, it } from "vitest";
import { matchPattern, RecordFilter, validatePattern } from "./event-filter.js";

const m = (pattern: object, record: object) => matchPattern(JSON.stringify(pattern), record);

describe("event filtering patterns", () => {
  it("exact values, OR within a list, AND across keys, nested fields", () => {
    expect(m({ data: { kind: ["a", "b"] } }, { data: { kind: "b" } })).toBe(true);
    expect(m({ data: { kind: ["a"] } }, { data: { kind: "c" } })).toBe(false);
    expect(m({ data: { kind: ["a"], n: [1] } }, { data: { kind: "a", n: 2 } })).toBe(false);
    expect(m({ data: { x: [null] } }, { data: { x: null } })).toBe(true);
    expect(m({ data: { x: [""] } }, { data: { x: "" } })).toBe(true);
    expect(m({ data: { tags: ["red"] } }, { data: { tags: ["blue", "red"] } })).toBe(true);
  });
  it("prefix, suffix, equals-ignore-case", () => {
    expect(m({ s: [{ prefix: "ord" }] }, { s: "order" })).toBe(true);
    expect(m({ s: [{ suffix: ".png" }] }, { s: "a.jpg" })).toBe(false);
    expect(m({ s: [{ "equals-ignore-case": "HeLLo" }] }, { s: "hello" })).toBe(true);
  });
  it("numeric equality and ranges", () => {
    expect(m({ n: [{ numeric: ["=", 5] }] }, { n: 5 })).toBe(true);
    expect(m({ n: [{ numeric: [">", 0, "<=", 10] }] }, { n: 10 })).toBe(true);
    expect(m({ n: [{ numeric: [">", 0, "<=", 10] }] }, { n: 11 })).toBe(false);
    expect(m({ n: [{ numeric: [">=", 3] }] }, { n: "3" })).toBe(false);
  });
  it("exists and anything-but", () => {
    expect(m({ a: [{ exists: true }] }, { a: 1 })).toBe(true);
    expect(m({ a: [{ exists: false }] }, { b: 1 })).toBe(true);
    expect(m({ a: [{ exists: false }] }, { a: 1 })).toBe(false);
    expect(m({ s: [{ "anything-but": ["x", "y"] }] }, { s: "z" })).toBe(true);
    expect(m({ s: [{ "anything-but": "x" }] }, { s: "x" })).toBe(false);
    expect(m({ s: [{ "anything-but": { prefix: "tmp" } }] }, { s: "tmp1" })).toBe(false);
  });
  it("$or and several filters", () => {
    expect(m({ $or: [{ a: [1] }, { b: [2] }] }, { b: 2 })).toBe(true);
    const f = new RecordFilter([JSON.stringify({ a: [1] }), JSON.stringify({ b: [2] })]);
    expect(f.matches({ b: 2 })).toBe(true);
    expect(f.matches({ c: 3 })).toBe(false);
    expect(new RecordFilter([]).matches({})).toBe(true);
  });
  it("rejects invalid patterns", () => {
    expect(validatePattern("not json")).not.toBeNull();
    expect(validatePattern(JSON.stringify({ a: "x" }))).not.toBeNull();
    expect(validatePattern(JSON.stringify({ a: [{ wildcard: "x*" }] }))).not.toBeNull();
    expect(validatePattern(JSON.stringify({ a: [{ numeric: [">", "x"] }] }))).not.toBeNull();
    expect(validatePattern(JSON.stringify({ a: [{ prefix: "x" }], b: { c: [1] } }))).toBeNull();
  });
});
