/**
 * Progress for a CLI wait that would otherwise show nothing (an invoke that runs for minutes, a
 * server starting). On a terminal: `label… 12 s`, redrawn every second on one stderr line and
 * erased when the work ends. Elsewhere (CI logs, pipes): one `label…` line, written only when the
 * work has taken longer than `quietMs`, so quick commands stay quiet.
 */
export interface ProgressStream {
  isTTY?: boolean;
  write(chunk: string): unknown;
}

export async function withProgress<T>(
  label: string,
  work: Promise<T>,
  stream: ProgressStream = process.stderr,
  quietMs = 2000,
): Promise<T> {
  const started = Date.now();
  const tty = stream.isTTY === true;
  let shown = false;
  const draw = () => {
    shown = true;
    if (tty) stream.write(`\r\x1b[2K${label}… ${Math.round((Date.now() - started) / 1000)} s`);
    else stream.write(`${label}…\n`);
  };
  const first = setTimeout(() => {
    draw();
    if (tty) timer = setInterval(draw, 1000);
  }, quietMs);
  let timer: NodeJS.Timeout | undefined;
  try {
    return await work;
  } finally {
    clearTimeout(first);
    clearInterval(timer);
    if (shown && tty) stream.write("\r\x1b[2K");
  }
}
