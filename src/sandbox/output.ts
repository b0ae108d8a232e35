import type { SandboxSpec } from "./driver.js";

/**
 * Feeds a sandbox's output stream to `onOutput`, pausing the stream while a returned promise is
 * pending: the pipe fills and the writer blocks, instead of the server buffering what it cannot keep.
 */
export function readOutput(
  stream: NodeJS.ReadableStream | null | undefined,
  onOutput: SandboxSpec["onOutput"],
): void {
  stream?.on("data", (chunk: Buffer) => {
    const wait = onOutput(chunk);
    if (!wait) return;
    stream.pause();
    void wait.then(() => stream.resume());
  });
}
