/** scripts/check-cycles.mjs, the import-cycle check `npm test` runs: what counts as a cycle and what does not. */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function check(files: Record<string, string>) {
  const dir = mkdtempSync(join(tmpdir(), "cycles-"));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, ".."), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  const r = spawnSync(process.execPath, ["scripts/check-cycles.mjs", dir], { encoding: "utf8" });
  return { status: r.status, output: r.stdout + r.stderr };
}

describe("check-cycles", () => {
  it("passes on this repository's src/", () => {
    const r = spawnSync(process.execPath, ["scripts/check-cycles.mjs"], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it("fails on a run-time cycle and names its modules", () => {
    const r = check({
      "a.ts": 'import { b } from "./sub/b.js";\nexport const a = () => b;\n',
      "sub/b.ts": 'export { c as b } from "../c.js";\n',
      "c.ts": 'import * as a from "./a.js";\nexport const c = a;\n',
    });
    expect(r.status).toBe(1);
    expect(r.output).toMatch(/a\.ts → .*sub\/b\.ts → .*c\.ts → .*a\.ts/);
  });

  it("fails on a module importing itself, and through an index.ts", () => {
    expect(check({ "a.ts": 'import "./a.js";\n' }).status).toBe(1);
    expect(
      check({ "a.ts": 'import { x } from "./d/index.js";\n', "d/index.ts": 'import "../a.js";\n' }).status,
    ).toBe(1);
  });

  it("ignores type-only imports, dynamic imports, packages and imports inside comments", () => {
    const r = check({
      "a.ts": [
        'import type { B } from "./b.js";',
        'import { type C, type D } from "./c.js";',
        'export type { B } from "./b.js";',
        'import { readFile } from "node:fs";',
        "// import { b } from './b.js';",
        '/* import { c } from "./c.js"; */',
        "export const later = () => import('./b.js');",
      ].join("\n"),
      "b.ts": 'import { later } from "./a.js";\nexport type B = number;\n',
      "c.ts": 'import { later } from "./a.js";\nexport type C = 1; export type D = 2;\n',
    });
    expect(r.output).toContain("no import cycles");
    expect(r.status).toBe(0);
  });

  it("counts a mixed import (some names are values) as a run-time edge", () => {
    const r = check({
      "a.ts": 'import { type B, b } from "./b.js";\n',
      "b.ts": 'import { a } from "./a.js";\nexport type B = 1; export const b = 1;\n',
    });
    expect(r.status).toBe(1);
  });
});
