/**
 * Attacks on package extraction (issue 12, findings 1–3): each hostile zip is
 * refused at upload with a 400 InvalidParameterValueException, writes nothing
 * outside the data dir, never crashes the server; a bad package already in a
 * data dir marks its function Failed and the server starts; interrupted
 * extractions are swept at start.
 */
import { spawn } from "node:child_process";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CreateFunctionCommand,
  GetFunctionCommand,
  InvalidParameterValueException,
  type LambdaServiceException,
  PublishLayerVersionCommand,
  UpdateFunctionCodeCommand,
  waitUntilFunctionUpdatedV2,
} from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_LIMITS } from "../../src/config.js";
import { rejection } from "../helpers/control-plane.js";
import { invoke } from "../helpers/invoke.js";
import { overlappingZip, type RawEntry, rawZip } from "../helpers/raw-zip.js";
import { ROLE, startServer, type TestServer } from "../helpers/server.js";
import { zipEntries } from "../helpers/zip.js";

const LINK = 0o120777;
const HANDLER = { name: "index.js", data: "exports.handler = async () => 'ok';\n" };
const AGAIN = "Please check your file, then try to upload again.";

/** The chained relative links of finding 1: each passes a textual check, together they escape. */
const CHAINED_LINKS: RawEntry[] = [
  HANDLER,
  { name: "d1/l", data: "..", mode: LINK },
  { name: "d1/l/up", data: "..", mode: LINK },
  { name: "a/b/c", data: "../../up", mode: LINK },
  { name: "a/b/c/X.lnk", data: "../..", mode: LINK },
  { name: "a/b/c/X.lnk/PWNED", data: "pwned\n" },
];

/** Every path under `dir` named `name`, never following a link. */
function findNamed(dir: string, name: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.name === name) out.push(p);
    if (e.isDirectory()) findNamed(p, name, out);
  }
  return out;
}

function expectInvalid(err: LambdaServiceException, message: string | RegExp): void {
  expect(err).toBeInstanceOf(InvalidParameterValueException);
  expect(err.$metadata.httpStatusCode).toBe(400);
  if (typeof message === "string") expect(err.message).toContain(message);
  else expect(err.message).toMatch(message);
}

describe("hostile packages at upload (CreateFunction, UpdateFunctionCode, PublishLayerVersion)", () => {
  let server: TestServer;
  let base: string;
  let n = 0;

  beforeAll(async () => {
    // The data dir sits deep inside a folder of our own, so anything written "above" it is found.
    base = mkdtempSync(join(tmpdir(), "lambent-attack-"));
    const dataDir = join(base, "one", "two", "data");
    mkdirSync(dataDir, { recursive: true });
    server = await startServer({ dataDir });
    await server.deploy("victim", "node-cjs");
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(base, { recursive: true, force: true });
  });

  /** Send a package through all three upload operations; each must refuse it with `message`. */
  async function refusedEverywhere(zip: Buffer, message: string | RegExp): Promise<void> {
    const { lambda } = server;
    const name = `atk-${n++}`;
    const sends = [
      () =>
        lambda.send(
          new CreateFunctionCommand({
            FunctionName: name,
            Runtime: "nodejs20.x",
            Handler: "index.handler",
            Role: ROLE,
            Code: { ZipFile: zip },
          }),
        ),
      () => lambda.send(new UpdateFunctionCodeCommand({ FunctionName: "victim", ZipFile: zip })),
      () => lambda.send(new PublishLayerVersionCommand({ LayerName: name, Content: { ZipFile: zip } })),
    ];
    for (const send of sends) expectInvalid(await rejection(send), message);
    // Nothing was created and the victim still runs its own code.
    expect((await rejection(() => lambda.send(new GetFunctionCommand({ FunctionName: name })))).name).toBe(
      "ResourceNotFoundException",
    );
    const health = await fetch(`${server.url}/health`);
    expect(health.status).toBe(200);
  }

  it("the chained relative symlinks of finding 1 are refused and write nothing anywhere", async () => {
    await refusedEverywhere(
      rawZip(CHAINED_LINKS),
      `Could not unzip uploaded file. Entry 'd1/l/up' is inside the symlink 'd1/l'. ${AGAIN}`,
    );
    // The same links without the first pair, and in another order, fail the same way.
    await refusedEverywhere(rawZip([HANDLER, ...CHAINED_LINKS.slice(3).reverse()]), /inside the symlink/);
    // One invoke of a function with a layer: the layer route extracts at invoke time.
    const layer = await zipEntries([{ name: "lib/x.js", content: "module.exports = 1;" }]);
    const published = await server.lambda.send(
      new PublishLayerVersionCommand({ LayerName: "good", Content: { ZipFile: layer } }),
    );
    await server.deploy("layered", "node-cjs", { Layers: [published.LayerVersionArn as string] });
    expect((await invoke(server.lambda, "layered")).functionError).toBeUndefined();
    expect(findNamed(base, "PWNED")).toEqual([]);
    expect(findNamed(base, "X.lnk")).toEqual([]);
    for (const p of [join(tmpdir(), "PWNED"), "/PWNED"]) expect(existsSync(p)).toBe(false);
  });

  it("a symlink used as a directory, one that escapes through another link, and a loop are refused", async () => {
    await refusedEverywhere(
      rawZip([HANDLER, { name: "lib", data: ".", mode: LINK }, { name: "lib/x.js", data: "1" }]),
      `Entry 'lib/x.js' is inside the symlink 'lib'.`,
    );
    // Each target looks inside on its own; through `d/up` it leaves the package.
    await refusedEverywhere(
      rawZip([
        HANDLER,
        { name: "d/up", data: "..", mode: LINK },
        { name: "d/e/out", data: "../up/..", mode: LINK },
      ]),
      `Symlink 'd/e/out' points outside the package.`,
    );
    await refusedEverywhere(
      rawZip([HANDLER, { name: "a", data: "b", mode: LINK }, { name: "b", data: "a/x", mode: LINK }]),
      /is part of a loop/,
    );
    await refusedEverywhere(rawZip([HANDLER, { name: "e", data: "", mode: LINK }]), /empty target/);
  });

  it("every name problem is a 400 at upload, never a 201 then Failed, and never a crash", async () => {
    const cases: [RawEntry[], string][] = [
      [
        [HANDLER, { name: Buffer.from("a\0b.js"), data: "x" }],
        "Entry 'a\\x00b.js' has a NUL byte in its name.",
      ],
      [
        [HANDLER, { name: `${"n".repeat(256)}.js`, data: "x" }],
        "has a name component longer than 255 bytes.",
      ],
      [
        [HANDLER, { name: `${`${"d".repeat(200)}/`.repeat(21)}f.js`, data: "x" }],
        "has a path longer than 4,095 bytes.",
      ],
      [
        [HANDLER, { name: "a", data: "x" }, { name: "a/b", data: "y" }],
        "Entry 'a' is both a file and a directory.",
      ],
      [
        [HANDLER, { name: "a/b", data: "y" }, { name: "a", data: "x" }],
        "Entry 'a' is both a file and a directory.",
      ],
      [
        [HANDLER, { name: "a/", mode: 0o040755 }, { name: "a", data: "x" }],
        "is both a file and a directory.",
      ],
      [[HANDLER, { name: "index.js", data: "again" }], "Entry 'index.js' appears more than once."],
      [
        [HANDLER, { name: "lib", data: "x", mode: LINK }, { name: "lib", data: "y" }],
        "appears more than once.",
      ],
      [
        [HANDLER, { name: Buffer.from([0x66, 0xff, 0xfe, 0x2e, 0x6a, 0x73]), data: "x" }],
        "is not valid UTF-8.",
      ],
      [[HANDLER, { name: "/etc/cron.d/x", data: "x" }], "Entry '/etc/cron.d/x' has an absolute path."],
      [[HANDLER, { name: "C:\\x.js", data: "x" }], "has an absolute path."],
      [[HANDLER, { name: "../evil.js", data: "x" }], "Entry '../evil.js' points outside the package"],
      [[HANDLER, { name: "a\\..\\..\\evil.js", data: "x" }], "points outside the package"],
      [[HANDLER, { name: "ok/../../evil.js", data: "x" }], "points outside the package"],
      [[HANDLER, { name: "s", data: "/etc/passwd", mode: LINK }], "Symlink 's' points outside the package."],
    ];
    for (const [entries, message] of cases) await refusedEverywhere(rawZip(entries), message);
  });

  it("the writer itself never follows a link, whatever it is told", async () => {
    const dir = mkdtempSync(join(base, "writer-"));
    const outside = mkdtempSync(join(base, "outside-"));
    symlinkSync(outside, join(dir, "x"));
    const frame = (type: string, body?: object) => {
      const payload = Buffer.from(body ? JSON.stringify(body) : "");
      const head = Buffer.alloc(5);
      head.write(type, 0, "latin1");
      head.writeUInt32BE(payload.length, 1);
      return Buffer.concat([head, payload]);
    };
    // The writer is started from the repository in tests; point it at its own file.
    const writer = join(process.cwd(), "libexec/extract-writer.mjs");
    expect(existsSync(writer)).toBe(true);
    const attempts: Buffer[][] = [
      [frame("F", { path: "x/PWNED", mode: 0o644 }), frame("W"), frame("C")],
      [frame("F", { path: "x", mode: 0o644 }), frame("C")],
      [frame("D", { path: "x/sub", mode: 0o755 })],
      [frame("F", { path: "../PWNED", mode: 0o644 }), frame("C")],
      [frame("F", { path: "/tmp/PWNED", mode: 0o644 }), frame("C")],
      [frame("L", { path: "y", target: "/etc" })],
      [frame("F", { path: "ok", mode: 0o4755 }), frame("C")],
    ];
    for (const frames of attempts) {
      const out = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [writer], { cwd: dir, stdio: ["pipe", "ignore", "pipe"] });
        let stderr = "";
        child.stderr.on("data", (d: Buffer) => {
          stderr += d;
        });
        child.stdin.on("error", () => {});
        child.on("exit", (code) => resolve({ code, stderr }));
        child.stdin.end(Buffer.concat([...frames, frame("E")]));
      });
      expect(out.code).toBe(1);
      expect(out.stderr).not.toBe("");
    }
    expect(readdirSync(outside)).toEqual([]);
    expect(readdirSync(dir)).toEqual(["x"]);
    expect(lstatSync(join(dir, "x")).isSymbolicLink()).toBe(true);
  });
});

describe("bombs are bounded by the bytes really inflated, and by an entry count", () => {
  let server: TestServer;
  const limits = { ...DEFAULT_LIMITS, unzippedBytes: 1024 * 1024, unzippedFiles: 20 };
  beforeAll(async () => {
    server = await startServer({ limits });
  });
  afterAll(async () => {
    await server?.stop();
  });

  const create =
    (zip: Buffer, name = "bomb") =>
    () =>
      server.lambda.send(
        new CreateFunctionCommand({
          FunctionName: name,
          Runtime: "nodejs20.x",
          Handler: "index.handler",
          Role: ROLE,
          Code: { ZipFile: zip },
        }),
      );

  it("entries that share one compressed block (overlapping-files bomb) are refused", async () => {
    const zip = overlappingZip(10, 64 * 1024);
    expectInvalid(
      await rejection(create(zip)),
      `Could not unzip uploaded file. Its entries overlap each other.`,
    );
  });

  it("a header that understates the size is caught while inflating", async () => {
    const lying = rawZip([
      { ...HANDLER, data: Buffer.alloc(8 * 1024 * 1024), deflate: true, claimedSize: 100 },
    ]);
    expect(lying.length).toBeLessThan(64 * 1024);
    expectInvalid(await rejection(create(lying)), `Could not unzip uploaded file. ${AGAIN}`);
  });

  it("honest high-ratio packages over the unzipped limit are refused from the headers, before inflating", async () => {
    const ratio = rawZip([{ ...HANDLER, data: Buffer.alloc(limits.unzippedBytes + 1), deflate: true }]);
    expectInvalid(
      await rejection(create(ratio)),
      `Unzipped size must be smaller than ${limits.unzippedBytes} bytes`,
    );
    // Many entries, each small, together over the limit.
    const many = rawZip(
      Array.from({ length: 5 }, (_, i) => ({ name: `f${i}`, data: Buffer.alloc(300 * 1024), deflate: true })),
    );
    expectInvalid(
      await rejection(create(many)),
      `Unzipped size must be smaller than ${limits.unzippedBytes} bytes`,
    );
  });

  it("more entries than the limit are refused", async () => {
    const zip = rawZip(Array.from({ length: 21 }, (_, i) => ({ name: `f${i}.js`, data: "x" })));
    expectInvalid(
      await rejection(create(zip)),
      `Could not unzip uploaded file. The package has 21 entries; at most 20 are allowed. ${AGAIN}`,
    );
    // At the limit is fine.
    const twenty = rawZip([
      HANDLER,
      ...Array.from({ length: 19 }, (_, i) => ({ name: `f${i}.js`, data: "x" })),
    ]);
    expect((await create(twenty, "at-limit")()).FunctionName).toBe("at-limit");
  });
});

describe("a bad package already in a data dir", () => {
  it("marks its function Failed with InvalidZipFileException; the server starts and sweeps interrupted extractions", async () => {
    const base = mkdtempSync(join(tmpdir(), "lambent-recover-"));
    const dataDir = join(base, "x", "data");
    mkdirSync(dataDir, { recursive: true });
    let server = await startServer({ dataDir });
    try {
      await server.deploy("nul-fn", "node-cjs");
      await server.deploy("links-fn", "node-errors");
      // Make the store look as if these packages had been accepted before today's checks, and the
      // server killed before extracting them (state Pending, no extracted copy).
      const db = server.platform.store.db;
      const planted: Record<string, Buffer> = {
        "nul-fn": rawZip([HANDLER, { name: Buffer.from("a\0b"), data: "x" }]),
        "links-fn": rawZip(CHAINED_LINKS),
      };
      const shas: string[] = [];
      for (const [name, zip] of Object.entries(planted)) {
        const row = await db
          .selectFrom("function_versions")
          .select("code_sha256")
          .where("function_name", "=", name)
          .executeTakeFirstOrThrow();
        shas.push(row.code_sha256);
        await db.updateTable("code_blobs").set({ data: zip }).where("sha256", "=", row.code_sha256).execute();
        await db
          .updateTable("function_versions")
          .set({ state: "Pending", last_update_status: "InProgress" })
          .where("function_name", "=", name)
          .execute();
      }
      await server.stop();
      for (const sha of shas) rmSync(join(dataDir, "code", sha), { recursive: true, force: true });
      // What a kill -9 during UpdateFunctionCode or a layer merge leaves behind.
      const leftovers = [
        join(dataDir, "code", `.tmp-${"0".repeat(64)}-1`),
        join(dataDir, "layers", "content", `.tmp-${"1".repeat(64)}-2`),
        join(dataDir, "layers", "merged", `.tmp-${"2".repeat(64)}-3`),
      ];
      for (const dir of leftovers) {
        mkdirSync(join(dir, "deep", "er"), { recursive: true });
        for (let i = 0; i < 50; i++) writeFileSync(join(dir, "deep", "er", `f${i}`), "x");
      }

      server = await startServer({ dataDir });
      for (const dir of leftovers) expect(existsSync(dir)).toBe(false);
      for (const name of Object.keys(planted)) {
        const { Configuration: c } = await server.lambda.send(new GetFunctionCommand({ FunctionName: name }));
        expect(c).toMatchObject({
          State: "Failed",
          StateReasonCode: "InvalidZipFileException",
          LastUpdateStatus: "Failed",
          LastUpdateStatusReasonCode: "InvalidZipFileException",
        });
        expect(c?.StateReason).toContain("Could not unzip uploaded file.");
        // Invoking a Failed function is a 409, not a 500.
        const err = await rejection(() => invoke(server.lambda, name));
        expect(err.name).toBe("ResourceConflictException");
      }
      expect(findNamed(base, "PWNED")).toEqual([]);

      // New code heals it.
      await server.lambda.send(
        new UpdateFunctionCodeCommand({
          FunctionName: "nul-fn",
          ZipFile: await zipEntries([{ name: "index.js", content: HANDLER.data }]),
        }),
      );
      await waitUntilFunctionUpdatedV2(
        { client: server.lambda, maxWaitTime: 30, minDelay: 0.1, maxDelay: 0.5 },
        { FunctionName: "nul-fn" },
      );
      const healed = await server.lambda.send(new GetFunctionCommand({ FunctionName: "nul-fn" }));
      expect(healed.Configuration?.State).toBe("Active");
      expect((await invoke(server.lambda, "nul-fn")).json).toBe("ok");
    } finally {
      await server.stop();
      rmSync(base, { recursive: true, force: true });
    }
  });
});
