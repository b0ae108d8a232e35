/**
 * What an execution environment writes to stdout and stderr, cut into log lines without ever
 * rescanning or re-copying what was already read: each chunk is searched for newlines once, a
 * line without a newline is kept as a list of chunks and cut at `lineBytes` (Lambda's 256 KB event
 * limit: a longer line becomes several events). A window (Init, then each invoke) stores at most
 * `windowBytes`; beyond it lines are dropped and one marker line says how much. Every byte read
 * is admitted by the function's rate gate: past it, the capture asks its reader to pause (the
 * pipe fills and the writer blocks) instead of buffering.
 */

export interface OutputLimits {
  /** Longest log event (bytes); a longer line is split. */
  lineBytes: number;
  /** Most output bytes stored per window (Init or one invoke); the rest is dropped and counted. */
  windowBytes: number;
}

/** Lambda's limits: 256 KB per log event; Lambent's per-invoke budget. */
export const DEFAULT_OUTPUT_LIMITS: OutputLimits = { lineBytes: 256 * 1024, windowBytes: 10 * 1024 * 1024 };

/** Decides how long the reader must pause after `bytes` were read (0: go on). */
export type RateGate = (bytes: number) => number;

export class LogCapture {
  /** The unfinished line: chunks read since the last newline (never concatenated until cut). */
  private parts: Buffer[] = [];
  private partBytes = 0;
  private storedBytes = 0;
  private droppedBytes = 0;
  private droppedLines = 0;

  constructor(
    private readonly limits: OutputLimits,
    /** Receives each line that fits the window's budget. */
    private readonly line: (text: string) => void,
    private readonly gate: RateGate = () => 0,
    /** Receives the platform's own notes (what was dropped); defaults to `line`. */
    private readonly notice: (text: string, lines: number, bytes: number) => void = line,
  ) {}

  /**
   * Takes one chunk read from the pipes. Returns a promise when the reader must pause until it
   * resolves (the function's rate is spent), else undefined.
   */
  push(chunk: Buffer): Promise<void> | undefined {
    let start = 0;
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
      this.append(chunk.subarray(start, nl));
      this.endLine();
      start = nl + 1;
    }
    if (start < chunk.length) this.append(chunk.subarray(start));
    const wait = this.gate(chunk.length);
    return wait > 0 ? new Promise((resolve) => setTimeout(resolve, wait).unref()) : undefined;
  }

  /** A new window (an invoke starts): its own budget; a note about what the last one dropped. */
  startWindow(): void {
    this.reportDropped();
    this.storedBytes = 0;
  }

  /** The window is over (before END): what it dropped is said in one line. */
  endWindow(): void {
    this.reportDropped();
  }

  /** The pipes closed: the last unfinished line is a line too. */
  finish(): void {
    if (this.partBytes > 0) this.endLine();
    this.reportDropped();
  }

  private append(piece: Buffer): void {
    if (piece.length === 0) return;
    this.parts.push(piece);
    this.partBytes += piece.length;
    while (this.partBytes >= this.limits.lineBytes) this.cut();
  }

  /** Emits the first `lineBytes` of the unfinished line (at a character boundary), keeps the rest. */
  private cut(): void {
    const all =
      this.parts.length === 1 ? (this.parts[0] as Buffer) : Buffer.concat(this.parts, this.partBytes);
    let at = this.limits.lineBytes;
    // Never split a UTF-8 sequence: back up over continuation bytes (at most 3).
    for (let i = 0; i < 3 && at > 0 && ((all[at] as number) & 0xc0) === 0x80; i++) at--;
    this.emit(all.subarray(0, at));
    const rest = all.subarray(at);
    this.parts = rest.length > 0 ? [rest] : [];
    this.partBytes = rest.length;
  }

  private endLine(): void {
    const parts = this.parts;
    const bytes = this.partBytes;
    this.parts = [];
    this.partBytes = 0;
    this.emit(parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, bytes));
  }

  private emit(bytes: Buffer): void {
    const size = bytes.length + 1;
    if (this.storedBytes + size > this.limits.windowBytes) {
      this.droppedBytes += size;
      this.droppedLines++;
      return;
    }
    this.storedBytes += size;
    this.line(bytes.toString("utf8"));
  }

  private reportDropped(): void {
    if (this.droppedLines === 0) return;
    const text = `[lambent] ${this.droppedLines} log line(s), ${this.droppedBytes} bytes, dropped: over the ${this.limits.windowBytes}-byte output budget of one invoke`;
    const [lines, bytes] = [this.droppedLines, this.droppedBytes];
    this.droppedBytes = 0;
    this.droppedLines = 0;
    this.notice(text, lines, bytes);
  }
}
