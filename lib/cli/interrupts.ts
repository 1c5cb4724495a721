/**
 * Ctrl-C / SIGTERM while the CLI holds something on the server (a lease, a running command).
 *
 *   1st signal  `signal` aborts: the flow cleans up (cancels the command, releases the lease)
 *               and exits 128+n.
 *   2nd signal  during a cleanup wait that may take a while (a command being cancelled, run
 *               through `cutShort`): `again` aborts, the flow stops that wait and goes on with
 *               the rest of its cleanup (releasing the lease). Anywhere else: exit at once,
 *               saying what may be left behind.
 *   3rd signal  exit at once.
 */

export interface InterruptsOptions {
  /** How to leave at once (tests record the status instead). @default process.exit */
  exit?: (code: number) => void;
  /** Where the "exiting now" message goes. @default process.stderr */
  warn?: (text: string) => void;
}

export class Interrupts {
  readonly #first = new AbortController();
  readonly #again = new AbortController();
  readonly #exit: (code: number) => void;
  readonly #warn: (text: string) => void;
  #received: NodeJS.Signals | undefined;
  #installed = false;
  /** A cleanup wait is running that a second signal cuts short instead of exiting. */
  #patient = false;
  /** What is still held, for the message if the user insists. */
  pending: string | undefined;

  constructor(options: InterruptsOptions = {}) {
    this.#exit = options.exit ?? ((code) => process.exit(code));
    this.#warn = options.warn ?? ((text) => void process.stderr.write(text));
  }

  #handler = (signal: NodeJS.Signals) => {
    if (!this.#received) {
      this.#received = signal;
      this.#first.abort();
      return;
    }
    if (this.#patient && !this.#again.signal.aborted) {
      this.#again.abort();
      return;
    }
    this.#warn(
      `\ndrydock: ${signal} again: exiting now${this.pending ? `; ${this.pending}` : ''}\n`,
    );
    this.#exit(exitCodeOf(signal));
  };

  /** Aborted by the first signal. */
  get signal(): AbortSignal {
    return this.#first.signal;
  }

  get received(): NodeJS.Signals | undefined {
    return this.#received;
  }

  /**
   * Runs a cleanup wait (e.g. for a cancelled command to end) that a second signal cuts short
   * through the AbortSignal it is given, rather than exiting the process at once: what comes
   * after the wait (releasing a lease) still runs.
   */
  async cutShort<T>(wait: (again: AbortSignal) => Promise<T>): Promise<T> {
    this.#patient = true;
    try {
      return await wait(this.#again.signal);
    } finally {
      this.#patient = false;
    }
  }

  install(): this {
    if (!this.#installed) {
      process.on('SIGINT', this.#handler);
      process.on('SIGTERM', this.#handler);
      this.#installed = true;
    }
    return this;
  }

  uninstall(): void {
    process.off('SIGINT', this.#handler);
    process.off('SIGTERM', this.#handler);
    this.#installed = false;
  }

  /** For tests and callers that are not driven by process signals. */
  trigger(signal: NodeJS.Signals = 'SIGINT'): void {
    this.#handler(signal);
  }
}

/** The shell's status for a process ended by `signal`: 128 + its number. */
export function exitCodeOf(signal: NodeJS.Signals): number {
  return signal === 'SIGTERM' ? 143 : signal === 'SIGHUP' ? 129 : 130;
}

/** Resolves after `ms`, or as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((done) => {
    if (signal?.aborted) return done();
    const timer = setTimeout(finish, ms);
    function finish() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', finish);
      done();
    }
    signal?.addEventListener('abort', finish, { once: true });
  });
}
