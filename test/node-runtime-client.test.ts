/**
 * The Node.js runtime's own Runtime API client (runtimes/nodejs/bootstrap.cjs) against a raw HTTP
 * server that answers the way any HTTP/1.1 server may: chunked bodies with trailers, every answer
 * dribbled in slices of random sizes (size lines, CRLFs and headers split anywhere), pipelined
 * requests (the answer and the next `next` in one write) answered in order.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const BOOTSTRAP = resolve(import.meta.dirname, "../runtimes/nodejs/bootstrap.cjs");

/** An answer as raw bytes: chunked, in chunks of random sizes, with a trailer. */
function chunked(status: number, headers: string, body: string): Buffer {
  const bytes = Buffer.from(body);
  const parts = [Buffer.from(`HTTP/1.1 ${status} X\r\n${headers}Transfer-Encoding: chunked\r\n\r\n`)];
  for (let i = 0; i < bytes.length; ) {
    const n = Math.min(bytes.length - i, 1 + Math.floor(Math.random() * 5000));
    parts.push(Buffer.from(`${n.toString(16)}\r\n`), bytes.subarray(i, i + n), Buffer.from("\r\n"));
    i += n;
  }
  parts.push(Buffer.from("0\r\nX-Trailer: y\r\n\r\n"));
  return Buffer.concat(parts);
}

/** Writes `bytes` in slices of 1-700 bytes, a timer turn apart now and then. */
function dribble(socket: Socket, bytes: Buffer): Promise<void> {
  return new Promise((done) => {
    let i = 0;
    const step = () => {
      if (i >= bytes.length) return done();
      const n = 1 + Math.floor(Math.random() * 700);
      socket.write(bytes.subarray(i, i + n));
      i += n;
      setTimeout(step, Math.random() < 0.3 ? 1 : 0);
    };
    step();
  });
}

const dir = mkdtempSync(join(tmpdir(), "lambent-client-"));
let server: Server | undefined;
let child: ChildProcess | undefined;

afterAll(() => {
  child?.kill("SIGKILL");
  server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("the Node.js runtime's Runtime API client", () => {
  it("reads chunked, dribbled answers to pipelined requests and echoes each event exactly", async () => {
    writeFileSync(join(dir, "index.js"), "exports.handler = async (event) => event;\n");
    const events = [
      JSON.stringify({ a: "x".repeat(100_000), n: 1 }),
      JSON.stringify({ b: "é☃".repeat(3000), n: 2 }),
      "{}",
    ];
    const answers: string[] = [];
    const sock = join(dir, "api.sock");
    const finished = new Promise<void>((done, fail) => {
      server = createServer((socket) => {
        let buffered = Buffer.alloc(0);
        let chain = Promise.resolve();
        const answer = (bytes: Buffer) => {
          chain = chain.then(() => dribble(socket, bytes));
        };
        socket.on("error", () => {});
        socket.on("data", (data) => {
          buffered = Buffer.concat([buffered, data]);
          for (;;) {
            const end = buffered.indexOf("\r\n\r\n");
            if (end === -1) return;
            const head = buffered.subarray(0, end).toString("latin1");
            const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
            if (buffered.length < end + 4 + length) return;
            const body = buffered.subarray(end + 4, end + 4 + length).toString();
            buffered = buffered.subarray(end + 4 + length);
            if (head.startsWith("POST")) {
              answers.push(body);
              answer(chunked(202, "", '{"status":"OK"}'));
              continue;
            }
            const n = answers.length;
            if (n === events.length) return done();
            const ids = `Lambda-Runtime-Aws-Request-Id: r${n}\r\nLambda-Runtime-Deadline-Ms: ${Date.now() + 30_000}\r\n`;
            answer(chunked(200, ids, events[n] as string));
          }
        });
      });
      server.listen(sock, () => {
        child = spawn(process.execPath, [BOOTSTRAP, `--runtime-api-socket=${sock}`], {
          cwd: dir,
          env: { PATH: process.env.PATH, _HANDLER: "index.handler", LAMBDA_TASK_ROOT: dir },
          stdio: ["ignore", "ignore", "pipe"],
        });
        let stderr = "";
        child.stderr?.on("data", (c) => {
          stderr += c;
        });
        child.on("exit", (code) => fail(new Error(`runtime exited ${code}: ${stderr}`)));
      });
    });
    await finished;
    expect(answers).toEqual(events);
  }, 30_000);
});
