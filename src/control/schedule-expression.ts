/**
 * EventBridge Scheduler's schedule expressions: `rate(N unit)`, `cron(…)` with
 * EventBridge's six fields (minutes hours day-of-month month day-of-week year;
 * `* , - /`, `?`, `L`, `W`, `LW`, `#`, month and weekday names; day-of-week 1 =
 * Sunday) evaluated in an IANA time zone, and one-time `at(yyyy-mm-ddThh:mm:ss)`.
 *
 * Daylight saving time as AWS documents it for Scheduler: a cron time that does
 * not exist when the clocks go forward is skipped; a time that happens twice
 * when they go back fires once (its first occurrence). `rate()` counts real
 * elapsed time and ignores zones.
 */
export type ScheduleExpression =
  | { kind: "rate"; periodMs: number }
  | { kind: "cron"; cron: CronFields }
  | { kind: "at"; wall: Wall };

/** A wall-clock time in the schedule's zone. */
export interface Wall {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

export interface CronFields {
  minutes: Set<number>;
  hours: Set<number>;
  /** null: `?` (day-of-week decides). */
  dayOfMonth: DayOfMonth | null;
  months: Set<number>;
  /** null: `?` (day-of-month decides). */
  dayOfWeek: DayOfWeek | null;
  years: Set<number>;
}

type DayOfMonth = { days: Set<number>; last: boolean; lastWeekday: boolean; nearestWeekday: number | null };
/** Days 1..7 (1 = Sunday); `lastOf`: "5L" (last Thursday); `nth`: "3#2" (second Tuesday). */
type DayOfWeek = { days: Set<number>; lastOf: number | null; nth: [number, number] | null };

export class ExpressionError extends Error {}

const RATE_UNITS: Record<string, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };
const MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const MIN_YEAR = 1970;
const MAX_YEAR = 2199;

/** Parse an expression; throws ExpressionError for anything EventBridge would refuse. */
export function parseScheduleExpression(text: string): ScheduleExpression {
  const m = /^(rate|cron|at)\((.*)\)$/.exec(text.trim());
  if (!m) throw new ExpressionError(text);
  const [, kind, body = ""] = m;
  if (kind === "rate") {
    const r = /^(\d+) (minute|minutes|hour|hours|day|days)$/.exec(body.trim());
    if (!r) throw new ExpressionError(text);
    const n = Number(r[1]);
    const unit = (r[2] as string).replace(/s$/, "");
    // EventBridge: the unit is singular for 1 and plural otherwise.
    if (n < 1 || (n === 1) !== !(r[2] as string).endsWith("s")) throw new ExpressionError(text);
    return { kind: "rate", periodMs: n * (RATE_UNITS[unit] as number) };
  }
  if (kind === "at") {
    const a = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})$/.exec(body);
    if (!a) throw new ExpressionError(text);
    const [year, month, day, hour, minute, second] = a.slice(1).map(Number) as number[];
    const wall = { year, month, day, hour, minute, second } as Wall;
    const probe = new Date(
      Date.UTC(wall.year, wall.month - 1, wall.day, wall.hour, wall.minute, wall.second),
    );
    if (
      probe.getUTCMonth() !== wall.month - 1 ||
      probe.getUTCDate() !== wall.day ||
      wall.hour > 23 ||
      wall.minute > 59 ||
      wall.second > 59
    )
      throw new ExpressionError(text);
    return { kind: "at", wall };
  }
  return { kind: "cron", cron: parseCron(body, text) };
}

function parseCron(body: string, text: string): CronFields {
  const f = body.trim().split(/\s+/);
  if (f.length !== 6) throw new ExpressionError(text);
  const [mi, h, dom, mon, dow, y] = f as [string, string, string, string, string, string];
  const fail = () => new ExpressionError(text);
  if ((dom === "?") === (dow === "?")) throw fail(); // exactly one of them is `?`
  return {
    minutes: parseList(mi, 0, 59, null, fail),
    hours: parseList(h, 0, 23, null, fail),
    dayOfMonth: dom === "?" ? null : parseDayOfMonth(dom, fail),
    months: parseList(mon, 1, 12, MONTHS, fail),
    dayOfWeek: dow === "?" ? null : parseDayOfWeek(dow, fail),
    years: parseList(y, MIN_YEAR, MAX_YEAR, null, fail),
  };
}

function value(raw: string, min: number, max: number, names: string[] | null, fail: () => Error): number {
  const named = names?.indexOf(raw.toUpperCase()) ?? -1;
  const n = named >= 0 ? named + min : /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw fail();
  return n;
}

/** `*`, `a`, `a-b`, `a/n`, `*\/n`, `a-b/n`, comma lists of them. */
function parseList(
  field: string,
  min: number,
  max: number,
  names: string[] | null,
  fail: () => Error,
): Set<number> {
  const out = new Set<number>();
  for (const part of field.split(",")) {
    const [range = "", stepText] = part.split("/");
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!Number.isInteger(step) || step < 1 || (stepText !== undefined && !/^\d+$/.test(stepText)))
      throw fail();
    let lo: number;
    let hi: number;
    if (range === "*") {
      lo = min;
      hi = max;
    } else if (range.includes("-")) {
      const [a = "", b = ""] = range.split("-");
      lo = value(a, min, max, names, fail);
      hi = value(b, min, max, names, fail);
    } else {
      lo = value(range, min, max, names, fail);
      hi = stepText === undefined ? lo : max;
    }
    if (lo <= hi) for (let v = lo; v <= hi; v += step) out.add(v);
    else {
      // A wrapping range (e.g. FRI-MON, NOV-FEB).
      const span = max - min + 1;
      for (let i = 0; i <= hi - lo + span; i += step) out.add(((lo - min + i) % span) + min);
    }
  }
  return out;
}

function parseDayOfMonth(field: string, fail: () => Error): DayOfMonth {
  if (field === "L") return { days: new Set(), last: true, lastWeekday: false, nearestWeekday: null };
  if (field === "LW") return { days: new Set(), last: false, lastWeekday: true, nearestWeekday: null };
  const w = /^(\d+)W$/.exec(field);
  if (w) {
    return {
      days: new Set(),
      last: false,
      lastWeekday: false,
      nearestWeekday: value(w[1] as string, 1, 31, null, fail),
    };
  }
  return { days: parseList(field, 1, 31, null, fail), last: false, lastWeekday: false, nearestWeekday: null };
}

function parseDayOfWeek(field: string, fail: () => Error): DayOfWeek {
  if (field === "L") return { days: new Set([7]), lastOf: null, nth: null };
  const l = /^(\w+)L$/.exec(field);
  if (l) return { days: new Set(), lastOf: value(l[1] as string, 1, 7, DAYS, fail), nth: null };
  const n = /^(\w+)#([1-5])$/.exec(field);
  if (n)
    return { days: new Set(), lastOf: null, nth: [value(n[1] as string, 1, 7, DAYS, fail), Number(n[2])] };
  return { days: parseList(field, 1, 7, DAYS, fail), lastOf: null, nth: null };
}

const daysIn = (year: number, month: number) => new Date(Date.UTC(year, month, 0)).getUTCDate();
/** 1 = Sunday … 7 = Saturday. */
const weekday = (year: number, month: number, day: number) =>
  new Date(Date.UTC(year, month - 1, day)).getUTCDay() + 1;

function dayMatches(c: CronFields, year: number, month: number, day: number): boolean {
  const last = daysIn(year, month);
  const dom = c.dayOfMonth;
  if (dom) {
    if (dom.last) return day === last;
    if (dom.lastWeekday) {
      let d = last;
      while (weekday(year, month, d) === 1 || weekday(year, month, d) === 7) d--;
      return day === d;
    }
    if (dom.nearestWeekday !== null) {
      const target = Math.min(dom.nearestWeekday, last);
      const wd = weekday(year, month, target);
      let d = target;
      if (wd === 7)
        d = target === 1 ? 3 : target - 1; // Saturday → Friday (or Monday the 3rd)
      else if (wd === 1) d = target === last ? target - 2 : target + 1; // Sunday → Monday (or Friday)
      return day === d;
    }
    return dom.days.has(day);
  }
  const dow = c.dayOfWeek as DayOfWeek;
  const wd = weekday(year, month, day);
  if (dow.lastOf !== null) return wd === dow.lastOf && day + 7 > last;
  if (dow.nth) return wd === dow.nth[0] && Math.ceil(day / 7) === dow.nth[1];
  return dow.days.has(wd);
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Is `zone` an IANA time zone this runtime knows? */
export function isTimeZone(zone: string): boolean {
  try {
    formatter(zone);
    return true;
  } catch {
    return false;
  }
}

function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    formatters.set(zone, f);
  }
  return f;
}

/** The wall-clock time in `zone` at instant `t`. */
export function wallAt(t: number, zone: string): Wall {
  const parts: Record<string, number> = {};
  for (const p of formatter(zone).formatToParts(new Date(t)))
    if (p.type !== "literal") parts[p.type] = Number(p.value);
  return {
    year: parts.year as number,
    month: parts.month as number,
    day: parts.day as number,
    hour: parts.hour as number,
    minute: parts.minute as number,
    second: parts.second as number,
  };
}

const wallMs = (w: Wall) => Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);

/**
 * The first instant whose wall-clock time in `zone` is `w`, or undefined when
 * that time does not exist there (skipped by a daylight-saving change).
 */
export function instantOf(w: Wall, zone: string): number | undefined {
  const local = wallMs(w);
  const candidates = new Set<number>();
  // Offsets a day either side cover every zone's transitions.
  for (const probe of [local - 86_400_000, local, local + 86_400_000]) {
    const offset = wallMs(wallAt(probe, zone)) - Math.floor(probe / 1000) * 1000;
    candidates.add(local - offset);
  }
  const hits = [...candidates].filter((t) => wallMs(wallAt(t, zone)) === local).sort((a, b) => a - b);
  return hits[0];
}

/** The first tick of a cron expression strictly after `after`, in `zone`; undefined when none is left. */
export function nextCron(c: CronFields, after: number, zone: string): number | undefined {
  const start = wallAt(after, zone);
  const minutes = [...c.minutes].sort((a, b) => a - b);
  const hours = [...c.hours].sort((a, b) => a - b);
  const months = [...c.months].sort((a, b) => a - b);
  const years = [...c.years].filter((y) => y >= start.year).sort((a, b) => a - b);
  for (const year of years) {
    for (const month of months) {
      if (year === start.year && month < start.month - 1) continue;
      const n = daysIn(year, month);
      for (let day = 1; day <= n; day++) {
        // Start a day before `after`'s local date: a zone change may map it either way.
        if (Date.UTC(year, month - 1, day) < Date.UTC(start.year, start.month - 1, start.day - 1)) continue;
        if (!dayMatches(c, year, month, day)) continue;
        for (const hour of hours) {
          for (const minute of minutes) {
            const t = instantOf({ year, month, day, hour, minute, second: 0 }, zone);
            if (t !== undefined && t > after) return t;
          }
        }
      }
    }
  }
  return undefined;
}

/**
 * The first tick of `expr` strictly after `after`. `anchor`: where a rate's
 * ticks are counted from (the schedule's start date, else its creation time).
 */
export function nextTick(
  expr: ScheduleExpression,
  after: number,
  zone: string,
  anchor: number,
): number | undefined {
  switch (expr.kind) {
    case "rate": {
      if (after < anchor) return anchor;
      const k = Math.floor((after - anchor) / expr.periodMs) + 1;
      return anchor + k * expr.periodMs;
    }
    case "at": {
      const t = instantOf(expr.wall, zone);
      return t !== undefined && t > after ? t : undefined;
    }
    case "cron":
      return nextCron(expr.cron, after, zone);
  }
}
