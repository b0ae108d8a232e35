import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { nodePathFolders, PackagesViews, writePackagesView } from "./packages-view.js";

let base: string;
beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), "lambent-pkgview-"));
});
afterEach(() => {
  rmSync(base, { recursive: true, force: true });
});

const pkg = (dir: string) => {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "package.json"), "{}");
};

/** Every path under `dir` (links not followed). */
function tree(dir: string, prefix = ""): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    out.push(`${prefix}${e.name}`);
    if (e.isDirectory()) out.push(...tree(join(dir, e.name), `${prefix}${e.name}/`));
  }
  return out.sort();
}

describe("NODE_PATH packages view", () => {
  it("links each package from the first folder that has it, merging scopes across folders", async () => {
    const opt = join(base, "opt");
    const sdk = join(base, "sdk");
    pkg(join(opt, "nodejs/node20/node_modules/versioned"));
    pkg(join(opt, "nodejs/node_modules/versioned"));
    pkg(join(opt, "nodejs/node_modules/@aws-sdk/client-lambda"));
    pkg(join(opt, "node_modules/top"));
    pkg(join(sdk, "@aws-sdk/client-lambda"));
    pkg(join(sdk, "@aws-sdk/client-s3"));
    pkg(join(sdk, "tslib"));
    mkdirSync(join(sdk, ".bin"));
    writeFileSync(join(sdk, "not-a-package"), "");
    const view = join(base, "view");
    await writePackagesView(
      view,
      nodePathFolders("20", opt, "/opt", { dir: sdk, at: "/var/runtime/node_modules" }, base, "/var/runtime"),
    );
    expect(tree(view)).toEqual([
      "@aws-sdk",
      "@aws-sdk/client-lambda",
      "@aws-sdk/client-s3",
      "top",
      "tslib",
      "versioned",
    ]);
    expect(readlinkSync(join(view, "versioned"))).toBe("/opt/nodejs/node20/node_modules/versioned");
    expect(readlinkSync(join(view, "top"))).toBe("/opt/node_modules/top");
    expect(readlinkSync(join(view, "@aws-sdk/client-lambda"))).toBe(
      "/opt/nodejs/node_modules/@aws-sdk/client-lambda",
    );
    expect(readlinkSync(join(view, "@aws-sdk/client-s3"))).toBe(
      "/var/runtime/node_modules/@aws-sdk/client-s3",
    );
    expect(readlinkSync(join(view, "tslib"))).toBe("/var/runtime/node_modules/tslib");
  });

  it("hostile layers: links out of the layer are not listed, odd names and a file named node_modules change nothing outside the view", async () => {
    const opt = join(base, "opt");
    const outside = join(base, "outside");
    pkg(join(outside, "secret-pkg"));
    pkg(join(outside, "@evil/inner"));
    mkdirSync(join(opt, "nodejs/node20"), { recursive: true });
    // A file where a folder of packages is expected.
    writeFileSync(join(opt, "nodejs/node20/node_modules"), "not a folder");
    mkdirSync(join(opt, "nodejs/node_modules"), { recursive: true });
    const nm = join(opt, "nodejs/node_modules");
    // A scope that is a link out of the layer: linked whole (the sandbox follows it), never listed here.
    symlinkSync(join(outside, "@evil"), join(nm, "@evil"));
    // Names that look like paths once joined.
    symlinkSync("../../../../x", join(nm, "@scope..x"));
    mkdirSync(join(nm, "@scope"));
    symlinkSync("../../../../../etc", join(nm, "@scope/pkg"));
    symlinkSync("/", join(nm, "root-link"));
    writeFileSync(join(nm, "..."), "");
    mkdirSync(join(nm, "...dots"));
    // A folder of packages that is a link out of the layer is not listed at all.
    symlinkSync(outside, join(opt, "node_modules"));
    const view = join(base, "view");
    const before = tree(base).filter((p) => !p.startsWith("view"));
    await writePackagesView(
      view,
      nodePathFolders("20", opt, "/opt", undefined, join(base, "runtime"), "/var/runtime"),
    );
    expect(tree(base).filter((p) => !p.startsWith("view"))).toEqual(before);
    expect(tree(view)).toEqual(["@evil", "@scope", "@scope..x", "@scope/pkg", "root-link"]);
    expect(readlinkSync(join(view, "@evil"))).toBe("/opt/nodejs/node_modules/@evil");
    expect(readlinkSync(join(view, "@scope/pkg"))).toBe("/opt/nodejs/node_modules/@scope/pkg");
    expect(readlinkSync(join(view, "root-link"))).toBe("/opt/nodejs/node_modules/root-link");
  });

  it("thousands of packages; one view per set of folders, made once", async () => {
    const sdk = join(base, "sdk");
    for (let i = 0; i < 3000; i++) mkdirSync(join(sdk, `p${i}`), { recursive: true });
    for (let i = 0; i < 500; i++) mkdirSync(join(sdk, `@s/q${i}`), { recursive: true });
    const views = new PackagesViews(join(base, "views"));
    await views.reset();
    const folders = nodePathFolders("20", undefined, "/opt", { dir: sdk, at: "/sdk" }, base, "/var/runtime");
    const [a, b] = await Promise.all([views.view(folders), views.view(folders)]);
    expect(a).toBe(b);
    expect(readdirSync(a)).toHaveLength(3001);
    expect(readdirSync(join(a, "@s"))).toHaveLength(500);
    expect(readdirSync(join(base, "views"))).toHaveLength(1);
  });
});
