/**
 * The web console in a real browser: Debian's chromium, headless, driven by playwright-core, against
 * a real server and real functions. Logging in (with the keyboard), a saved test event, an invoke
 * with its answer and REPORT line, live logs followed and filtered, charts drawn from
 * CloudWatch GetMetricData of real invokes, the queue page; a read-only key sees a read-only console (the console has no
 * private door: its calls are the signed public APIs); and a function whose description,
 * environment, logs and answer are HTML/script gets them shown as text, nothing executed, no
 * Content-Security-Policy violation.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { promisify } from "node:util";
import { InvokeCommand } from "@aws-sdk/client-lambda";
import { type Browser, chromium, type Locator, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONSOLE_CSP } from "../src/api/console.js";
import { ROOT } from "./helpers/child-server.js";
import { startServer, type TestServer } from "./helpers/server.js";
import { createAccessKey } from "./helpers/signed.js";
import { zipEntries } from "./helpers/zip.js";

const run = promisify(execFile);
const CHROMIUM = "/usr/bin/chromium";

const ECHO_SOURCE = `
exports.handler = async (event) => {
  console.log("echo got " + JSON.stringify(event));
  if (event && event.fail) throw new Error("asked to fail");
  return { echoed: event };
};`;

const XSS = {
  img: "<img src=x onerror=\"window.__xss='img'\">",
  script: "<script>window.__xss='script'</script>",
  svg: "<svg onload=\"window.__xss='svg'\"></svg>",
};

const EVIL_SOURCE = `
exports.handler = async () => {
  console.log(${JSON.stringify(XSS.img)});
  console.log(${JSON.stringify(XSS.script)});
  return { html: ${JSON.stringify(XSS.svg)}, more: ${JSON.stringify(XSS.img)} };
};`;

let server: TestServer;
let browser: Browser;

async function deployInline(name: string, source: string, extra: Record<string, unknown> = {}) {
  const { CreateFunctionCommand, waitUntilFunctionActiveV2 } = await import("@aws-sdk/client-lambda");
  await server.lambda.send(
    new CreateFunctionCommand({
      FunctionName: name,
      Runtime: "nodejs20.x",
      Handler: "index.handler",
      Role: "arn:aws:iam::000000000000:role/lambda-role",
      Code: { ZipFile: await zipEntries([{ name: "index.js", content: source }]) },
      ...extra,
    }),
  );
  await waitUntilFunctionActiveV2(
    { client: server.lambda, maxWaitTime: 30, minDelay: 0.1, maxDelay: 0.5 },
    { FunctionName: name },
  );
}

/** A new page that records CSP violations, dialogs and page errors (listeners set before any script runs). */
async function newPage(): Promise<{ page: Page; problems: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1366, height: 800 } });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on("dialog", (d) => {
    problems.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !/Failed to load resource/.test(m.text()))
      problems.push(`console: ${m.text()}`);
  });
  await context.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      console.error(
        `CSP violation: ${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber} ${e.sample}`,
      );
    });
  });
  return { page, problems };
}

/** A locator's text (textContent: the DOM's text, whatever the layout). */
async function text(locator: Locator): Promise<string> {
  return (await locator.textContent()) ?? "";
}

/** Log in the way a keyboard user does: type, Tab, type, Enter. */
async function login(page: Page, accessKeyId = "test", secret = "test") {
  await page.goto(`${server.url}/console`);
  await page.getByLabel("Access key ID").focus();
  await page.keyboard.type(accessKeyId);
  await page.keyboard.press("Tab");
  await page.keyboard.type(secret);
  await page.keyboard.press("Enter");
}

beforeAll(async () => {
  if (process.env.LAMBENT_DIST_BUILT !== "1" || !existsSync(`${ROOT}/dist/console/app.js`)) {
    await run(process.execPath, ["scripts/build-console.mjs"], { cwd: ROOT });
  }
  server = await startServer();
  await deployInline("echo", ECHO_SOURCE, { MemorySize: 256 });
  await deployInline("evil", EVIL_SOURCE, {
    Description: XSS.img,
    Environment: { Variables: { HTML: XSS.script, SVG: XSS.svg } },
  });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

describe("console files", () => {
  it("are served unsigned with a strict Content-Security-Policy; the APIs still need a signature", async () => {
    const res = await fetch(`${server.url}/console`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-security-policy")).toBe(CONSOLE_CSP);
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    const html = await res.text();
    expect(html).toContain('<script type="module" src="/console/app.js">');
    expect(html).not.toMatch(/<script>(?!<)/); // no inline script
    const js = await fetch(`${server.url}/console/app.js`, { headers: { "accept-encoding": "gzip" } });
    expect(js.headers.get("content-type")).toMatch(/^text\/javascript/);
    const etag = js.headers.get("etag") as string;
    expect((await fetch(`${server.url}/console/app.js`, { headers: { "if-none-match": etag } })).status).toBe(
      304,
    );
    // Nothing else is served from there: not the source, not a path out of the folder.
    for (const p of [
      "/console/main.tsx",
      "/console/..%2F..%2Fpackage.json",
      "/console/__proto__",
      "/console/index.html%00",
    ]) {
      const r = await fetch(`${server.url}${p}`);
      expect(r.status, p).toBe(404);
      expect(r.headers.get("x-amzn-errortype")).toBe("UnknownOperationException");
    }
    // Only GET and HEAD are open; the API behind it is not.
    expect((await fetch(`${server.url}/console/app.js`, { method: "POST" })).status).toBe(403);
    expect((await fetch(`${server.url}/2015-03-31/functions/`)).status).toBe(403);
  });
});

describe("console in chromium", () => {
  it("refuses a wrong secret on the login page", async () => {
    const { page } = await newPage();
    await login(page, "test", "not-the-secret");
    await expect.poll(() => page.getByRole("alert").textContent()).toMatch(/Signature/);
    expect(await page.getByLabel("Access key ID").isVisible()).toBe(true);
    await page.context().close();
  });

  it("logs in, lists functions, saves a test event, invokes and shows the answer and the REPORT line", async () => {
    const { page, problems } = await newPage();
    await login(page);
    const row = page.getByRole("row", { name: /echo/ });
    await row.waitFor();
    expect(await row.textContent()).toContain("256 MB");
    await row.getByRole("link", { name: "echo" }).click();
    await page.getByRole("heading", { name: "Configuration" }).waitFor();
    expect(await page.getByText("index.handler").count()).toBeGreaterThan(0);
    await page.getByRole("link", { name: "Test" }).click();

    await page.getByLabel("Event name").fill("greeting");
    await page.getByLabel("Event JSON").fill('{"name": "from the console"}');
    await page.getByRole("button", { name: "Save event" }).click();
    await page.getByText('Saved "greeting".').waitFor();
    // Saved events live in this browser's localStorage: still there after a reload.
    await page.reload();
    await expect.poll(() => page.getByLabel("Saved events").inputValue()).toBe("greeting");
    expect(await page.getByLabel("Event JSON").inputValue()).toBe('{"name": "from the console"}');

    await page.getByRole("button", { name: "Invoke" }).click();
    const response = page.getByTestId("invoke-response");
    await response.waitFor();
    expect(JSON.parse(await text(response))).toEqual({ echoed: { name: "from the console" } });
    expect(await text(page.getByTestId("report-line"))).toMatch(
      /^REPORT RequestId: [0-9a-f-]{36}\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\tMemory Size: 256 MB/,
    );
    expect(await text(page.getByTestId("invoke-log"))).toContain('echo got {"name":"from the console"}');
    expect(await page.getByRole("heading", { name: "Succeeded" }).count()).toBe(1);

    // A failing invoke shows the function error.
    await page.getByLabel("Event JSON").fill('{"fail": true}');
    await page.getByRole("button", { name: "Invoke" }).click();
    await page.getByRole("heading", { name: "Failed: Unhandled" }).waitFor();
    expect(await text(page.getByTestId("invoke-response"))).toContain("asked to fail");
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it("follows live logs and filters them with a CloudWatch filter pattern", async () => {
    const { page, problems } = await newPage();
    await login(page);
    await page.goto(`${server.url}/console#/functions/echo/logs`);
    const log = page.getByRole("log", { name: "Log events" });
    await log.waitFor();
    const marker = `live-${Date.now()}`;
    await server.lambda.send(
      new InvokeCommand({ FunctionName: "echo", Payload: Buffer.from(JSON.stringify({ marker })) }),
    );
    await expect.poll(() => text(log), { timeout: 20_000 }).toContain(`"marker":"${marker}"`);
    await expect.poll(() => text(log), { timeout: 20_000 }).toMatch(/REPORT RequestId/);

    await page.getByLabel("Filter pattern").fill('"REPORT RequestId"');
    await page.getByRole("button", { name: "Apply" }).click();
    await expect.poll(() => text(log), { timeout: 20_000 }).toMatch(/REPORT RequestId/);
    expect(await text(log)).not.toContain(marker);
    // A pattern the server cannot parse: its AWS error is shown, nothing breaks.
    await page.getByLabel("Filter pattern").fill("{ $.x = ");
    await page.getByRole("button", { name: "Apply" }).click();
    await expect.poll(() => page.getByRole("alert").textContent()).toMatch(/InvalidParameterException/);
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it("draws the function's metrics (GetMetricData) as charts with points, over a chosen window", async () => {
    for (let i = 0; i < 3; i++) {
      await server.lambda.send(new InvokeCommand({ FunctionName: "echo", Payload: Buffer.from("{}") }));
    }
    const { page, problems } = await newPage();
    await login(page);
    await page.goto(`${server.url}/console#/functions/echo/monitor`);
    const invocations = page.getByRole("figure", { name: "Invocations chart" });
    await invocations.waitFor();
    // The metrics reach the store every few seconds: refresh until the chart has its points.
    await expect
      .poll(
        async () => {
          await page.getByRole("button", { name: "Refresh" }).first().click();
          return Number(await invocations.getAttribute("data-points"));
        },
        { timeout: 30_000, interval: 1000 },
      )
      .toBeGreaterThan(0);
    expect(await invocations.locator("canvas").count()).toBe(1);
    const duration = page.getByRole("figure", { name: "Duration chart" });
    expect(Number(await duration.getAttribute("data-points"))).toBeGreaterThan(0);
    await page.getByLabel("1 day").check();
    await expect.poll(async () => Number(await invocations.getAttribute("data-points"))).toBeGreaterThan(0);
    await page
      .getByRole("row", { name: /REPORT|ms/ })
      .first()
      .waitFor();
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it("shows the async queue and event source mappings", async () => {
    const { page, problems } = await newPage();
    await server.lambda.send(
      new InvokeCommand({ FunctionName: "echo", InvocationType: "Event", Payload: Buffer.from("{}") }),
    );
    await login(page);
    await page.getByRole("link", { name: "Queue and sources" }).click();
    await page.getByRole("heading", { name: "Async queue" }).waitFor();
    await page.getByRole("row", { name: /echo/ }).waitFor();
    await page.getByText("No event source mappings.").waitFor();
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it("a read-only key gets a read-only console: the invoke is denied by its policy", async () => {
    const key = await createAccessKey(server.url, "viewer", [
      { Effect: "Allow", Action: ["lambda:Get*", "lambda:List*", "logs:*"], Resource: "*" },
    ]);
    const { page, problems } = await newPage();
    await login(page, key.accessKeyId, key.secretAccessKey);
    await page.getByRole("row", { name: /echo/ }).waitFor();
    await page.goto(`${server.url}/console#/functions/echo/test`);
    await page.getByRole("button", { name: "Invoke" }).click();
    await expect
      .poll(() => page.getByRole("alert").textContent())
      .toMatch(/^AccessDeniedException: .*lambda:InvokeFunction/);
    // The queue endpoint is not in its policy either.
    await page.goto(`${server.url}/console#/queue`);
    await expect.poll(() => page.getByRole("alert").first().textContent()).toMatch(/AccessDeniedException/);
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it("renders hostile descriptions, environment values, log lines and answers as text: nothing runs", async () => {
    const { page, problems } = await newPage();
    await login(page);
    await page.goto(`${server.url}/console#/functions/evil`);
    await page.getByRole("heading", { name: "Environment variables" }).waitFor();
    await page.getByRole("cell", { name: XSS.script, exact: true }).waitFor();
    await page.getByRole("cell", { name: XSS.svg, exact: true }).waitFor();
    await page.getByRole("definition").filter({ hasText: XSS.img }).waitFor();

    await page.getByRole("link", { name: "Test" }).click();
    await page.getByLabel("Event name").fill(XSS.img);
    await page.getByLabel("Event JSON").fill(JSON.stringify({ x: XSS.script }));
    await page.getByRole("button", { name: "Save event" }).click();
    await page.getByRole("button", { name: "Invoke" }).click();
    await page.getByTestId("invoke-response").waitFor();
    expect(JSON.parse(await text(page.getByTestId("invoke-response")))).toEqual({
      html: XSS.svg,
      more: XSS.img,
    });
    expect(await text(page.getByTestId("invoke-log"))).toContain(XSS.script);

    await page.getByRole("link", { name: "Logs" }).click();
    const log = page.getByRole("log", { name: "Log events" });
    await expect.poll(() => text(log), { timeout: 20_000 }).toContain(XSS.img);
    expect(await text(log)).toContain(XSS.script);

    // Nothing the function supplied became an element, and nothing ran.
    expect(await page.evaluate(() => (window as { __xss?: string }).__xss)).toBeUndefined();
    expect(await page.locator("main img, main svg, main script, main iframe").count()).toBe(0);
    expect(await page.evaluate(() => document.scripts.length)).toBe(1);
    expect(problems).toEqual([]);
    await page.context().close();
  });
});
