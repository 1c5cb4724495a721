/**
 * What the CLI shows while it waits, on stderr: `drydock [3.2s] ...` lines, plus one status line
 * redrawn in place on a terminal. It also writes a command's streamed output, because both
 * share the terminal: once output has started, the status line is never drawn again (a redraw
 * between two chunks would overwrite a partial line of output), and a progress line that
 * follows output without a final newline starts on a line of its own.
 */
import { formatDuration, formatLogLine, type Io } from './output.ts';

export type OutputStream = 'stdout' | 'stderr';

export class Progress {
  readonly #io: Io;
  readonly #started: number;
  #statusShown = false;
  /** Command output has been written: no more status lines. */
  #outputStarted = false;
  /** The last output written did not end with a newline. */
  #midLine = false;

  constructor(io: Io, started = performance.now()) {
    this.#io = io;
    this.#started = started;
  }

  elapsedSeconds(): number {
    return (performance.now() - this.#started) / 1000;
  }

  #prefix(): string {
    return `drydock [${formatDuration(this.elapsedSeconds())}]`;
  }

  line(message: string): void {
    this.#startLine();
    this.#io.err(formatLogLine(this.#prefix(), message));
  }

  status(message: string): void {
    if (!this.#io.tty || this.#outputStarted) return;
    const width = process.stderr.columns || 100;
    const text = `${this.#prefix()} ${message}`.replace(/\s*\n\s*/g, ' ');
    this.#io.err(`\r\x1b[K${text.length > width - 1 ? `${text.slice(0, width - 2)}…` : text}`);
    this.#statusShown = true;
  }

  clear(): void {
    if (this.#statusShown) {
      this.#io.err('\r\x1b[K');
      this.#statusShown = false;
    }
  }

  /** A chunk of the command's own output, to the same stream it came from. */
  output(stream: OutputStream, text: string): void {
    if (text === '') return;
    this.clear();
    this.#outputStarted = true;
    if (stream === 'stdout') this.#io.out(text);
    else this.#io.err(text);
    this.#midLine = !text.endsWith('\n');
  }

  /** A remark inside the output (e.g. that some of it was cut), on stderr, on its own line. */
  notice(text: string): void {
    this.#startLine();
    this.#io.err(`${text}\n`);
  }

  #startLine(): void {
    this.clear();
    // Only a terminal shows both streams on one screen; a file or pipe keeps the bytes exact.
    if (this.#midLine && this.#io.tty) this.#io.err('\n');
    this.#midLine = false;
  }
}
