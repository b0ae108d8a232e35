import { describe, expect, it } from "vitest";
import { ExpressionError, nextTick, parseScheduleExpression } from "./schedule-expression.js";

/** The next `n` ticks after `from` (ISO), as ISO strings. */
function ticks(expr: string, from: string, n: number, zone = "UTC", anchor = Date.parse(from)): string[] {
  const e = parseScheduleExpression(expr);
  const out: string[] = [];
  let t = Date.parse(from);
  for (let i = 0; i < n; i++) {
    const next = nextTick(e, t, zone, anchor);
    if (next === undefined) break;
    out.push(new Date(next).toISOString());
    t = next;
  }
  return out;
}

describe("schedule expressions", () => {
  it("rate(): singular for 1, plural otherwise; ticks count from the anchor", () => {
    expect(ticks("rate(5 minutes)", "2026-01-01T00:00:00Z", 2)).toEqual([
      "2026-01-01T00:05:00.000Z",
      "2026-01-01T00:10:00.000Z",
    ]);
    expect(ticks("rate(1 day)", "2026-01-01T10:00:00Z", 1)).toEqual(["2026-01-02T10:00:00.000Z"]);
    for (const bad of ["rate(1 minutes)", "rate(2 hour)", "rate(0 minutes)", "rate(5 weeks)", "rate(x)"]) {
      expect(() => parseScheduleExpression(bad), bad).toThrow(ExpressionError);
    }
  });

  it("cron(): lists, ranges, increments, names; one of day-of-month / day-of-week is ?", () => {
    expect(ticks("cron(0/15 9-10 ? * MON-FRI *)", "2026-12-04T10:40:00Z", 3)).toEqual([
      "2026-12-04T10:45:00.000Z", // Friday
      "2026-12-07T09:00:00.000Z", // Monday
      "2026-12-07T09:15:00.000Z",
    ]);
    expect(ticks("cron(30 8 1,15 JAN,JUL ? 2027)", "2026-06-01T00:00:00Z", 3)).toEqual([
      "2027-01-01T08:30:00.000Z",
      "2027-01-15T08:30:00.000Z",
      "2027-07-01T08:30:00.000Z",
    ]);
    for (const bad of [
      "cron(0 8 * * * *)",
      "cron(0 8 ? * ? *)",
      "cron(0 8 * *)",
      "cron(60 8 * * ? *)",
      "cron(0 8 32 * ? *)",
    ]) {
      expect(() => parseScheduleExpression(bad), bad).toThrow(ExpressionError);
    }
  });

  it("cron(): L, W, LW and # in day-of-month / day-of-week", () => {
    // Last day of the month.
    expect(ticks("cron(0 12 L * ? *)", "2027-01-31T13:00:00Z", 2)).toEqual([
      "2027-02-28T12:00:00.000Z",
      "2027-03-31T12:00:00.000Z",
    ]);
    // Nearest weekday to the 15th: 2027-05-15 is a Saturday → Friday the 14th; 2027-08-15 a Sunday → Monday 16th.
    expect(ticks("cron(0 0 15W * ? *)", "2027-05-01T00:00:00Z", 4)).toEqual([
      "2027-05-14T00:00:00.000Z",
      "2027-06-15T00:00:00.000Z",
      "2027-07-15T00:00:00.000Z",
      "2027-08-16T00:00:00.000Z",
    ]);
    // Last weekday of the month: 2027-07-31 is a Saturday → Friday the 30th.
    expect(ticks("cron(0 0 LW * ? *)", "2027-07-01T00:00:00Z", 1)).toEqual(["2027-07-30T00:00:00.000Z"]);
    // Second Tuesday (3#2) and last Friday (6L).
    expect(ticks("cron(0 9 ? * 3#2 *)", "2027-01-01T00:00:00Z", 2)).toEqual([
      "2027-01-12T09:00:00.000Z",
      "2027-02-09T09:00:00.000Z",
    ]);
    expect(ticks("cron(0 9 ? * 6L *)", "2027-01-01T00:00:00Z", 2)).toEqual([
      "2027-01-29T09:00:00.000Z",
      "2027-02-26T09:00:00.000Z",
    ]);
  });

  it("cron() in a time zone follows its daylight-saving changes: a skipped time is skipped, a repeated one fires once", () => {
    // New York: 09:00 local is 14:00Z in winter, 13:00Z in summer (DST starts 2027-03-14).
    expect(ticks("cron(0 9 * * ? *)", "2027-03-12T15:00:00Z", 3, "America/New_York")).toEqual([
      "2027-03-13T14:00:00.000Z",
      "2027-03-14T13:00:00.000Z",
      "2027-03-15T13:00:00.000Z",
    ]);
    // 02:30 does not exist on 2027-03-14 in New York: that day is skipped.
    expect(ticks("cron(30 2 * * ? *)", "2027-03-13T00:00:00Z", 2, "America/New_York")).toEqual([
      "2027-03-13T07:30:00.000Z",
      "2027-03-15T06:30:00.000Z",
    ]);
    // 01:30 happens twice on 2027-11-07 (clocks go back at 02:00): it fires once, at the first one (EDT).
    expect(ticks("cron(30 1 * * ? *)", "2027-11-06T12:00:00Z", 2, "America/New_York")).toEqual([
      "2027-11-07T05:30:00.000Z",
      "2027-11-08T06:30:00.000Z",
    ]);
  });

  it("at(): one tick at a wall-clock time of the zone, none after it", () => {
    expect(ticks("at(2027-06-01T12:00:00)", "2027-01-01T00:00:00Z", 2, "Europe/Berlin")).toEqual([
      "2027-06-01T10:00:00.000Z",
    ]);
    expect(ticks("at(2027-06-01T12:00:00)", "2027-07-01T00:00:00Z", 1)).toEqual([]);
    for (const bad of ["at(2027-02-30T12:00:00)", "at(2027-06-01 12:00:00)", "at(2027-06-01T24:00:00)"]) {
      expect(() => parseScheduleExpression(bad), bad).toThrow(ExpressionError);
    }
  });
});
