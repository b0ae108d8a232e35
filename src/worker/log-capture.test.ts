import { describe, expect, it } from "vitest";
import { LogCapture } from "./log-capture.js";

function capture(lineBytes: number, windowBytes: number, gate?: (n: number) => number) {
  const lines: string[] = [];
  const notes: string[] = [];
  const c = new LogCapture(
    { lineBytes, windowBytes },
    (l) => lines.push(l),
    gate,
    (n) => notes.push(n),
  );
  return { c, lines, notes };
}

describe("log capture", () => {
  it("cuts lines at newlines across chunks, and a line without one at lineBytes", () => {
    const { c, lines } = capture(10, 1000);
    c.push(Buffer.from("ab"));
    c.push(Buffer.from("c\nde"));
    c.push(Buffer.from("fghijklmnopqrstuvwxyz\n"));
    expect(lines).toEqual(["abc", "defghijklm", "nopqrstuvw", "xyz"]);
  });

  it("never splits a UTF-8 character", () => {
    const { c, lines } = capture(9, 1000);
    c.push(Buffer.from("ééééééé\n"));
    for (const l of lines) expect(l).not.toContain("\uFFFD");
    expect(lines.join("")).toBe("ééééééé");
  });

  it("stores at most the window's budget, then one marker line says what was dropped", () => {
    const { c, lines, notes } = capture(100, 10);
    c.startWindow();
    c.push(Buffer.from("1234\n5678\nabcdefgh\nxyz\n"));
    c.endWindow();
    expect(lines).toEqual(["1234", "5678"]);
    expect(notes).toHaveLength(1);
    expect(notes[0]).toMatch(/2 log line\(s\), 13 bytes, dropped/);
    // A new window has its own budget.
    c.startWindow();
    c.push(Buffer.from("next\n"));
    expect(lines.at(-1)).toBe("next");
  });

  it("asks the reader to pause while the rate gate says so, and not otherwise", async () => {
    const { c } = capture(100, 1000, (n) => (n > 4 ? 5 : 0));
    expect(c.push(Buffer.from("ab\n"))).toBeUndefined();
    const wait = c.push(Buffer.from("abcdef\n"));
    expect(wait).toBeInstanceOf(Promise);
    await wait;
  });

  it("a 64 MB flood without newlines becomes 256 KB lines within the budget, the rest counted", () => {
    const { c, lines, notes } = capture(256 * 1024, 1024 * 1024);
    const chunk = Buffer.alloc(64 * 1024, 120);
    for (let i = 0; i < 1024; i++) c.push(chunk);
    c.finish();
    // 1 MB of budget holds three 256 KB lines (each counts its newline); the rest is dropped.
    expect(lines).toHaveLength(3);
    for (const l of lines) expect(l.length).toBe(256 * 1024);
    expect(notes).toEqual([expect.stringMatching(/253 log line\(s\), 66322685 bytes, dropped/)]);
  });
});
