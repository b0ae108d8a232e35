/**
 * A gate for handlers: a local HTTP server whose `/wait` requests are held
 * until the test opens the gate, so "N invokes running at once" is a fact the
 * test controls rather than a race.
 */
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface Gate {
  url: string;
  /** Resolves once `n` requests are waiting. */
  waiting(n: number): Promise<void>;
  /** Let every request held so far through (later ones are held again). */
  open(): void;
  close(): Promise<void>;
}

export async function startGate(): Promise<Gate> {
  const held: ServerResponse[] = [];
  let isOpen = false;
  let watchers: Array<{ n: number; resolve: () => void }> = [];
  const server = createServer((req, res) => {
    req.resume();
    if (isOpen) return res.end("open");
    held.push(res);
    watchers = watchers.filter((w) => {
      if (held.length < w.n) return true;
      w.resolve();
      return false;
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/wait`;
  return {
    url,
    waiting: (n) =>
      held.length >= n ? Promise.resolve() : new Promise((resolve) => watchers.push({ n, resolve })),
    open() {
      for (const res of held.splice(0)) res.end("open");
    },
    close: () => {
      isOpen = true;
      for (const res of held.splice(0)) res.end("open");
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

/** A Node handler that waits at the gate (event.gate) before answering with its environment facts. */
export const GATED_HANDLER = `
const http = require("node:http");
exports.handler = async (event, context) => {
  if (event.gate) await new Promise((resolve, reject) => http.get(event.gate, (res) => { res.resume(); res.on("end", resolve); }).on("error", reject));
  return { stream: context.logStreamName, version: context.functionVersion, init: process.env.AWS_LAMBDA_INITIALIZATION_TYPE, tag: event.tag ?? null };
};
`;
