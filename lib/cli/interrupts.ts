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
 *
 * SIGINT, SIGTERM and SIGHUP all count, and so does the parent process going away (polled).
 */

export interface InterruptsOptions {
  /**
   * How often to look whether the parent process went away (`npx drydock ...` killed alone
   * leaves this process re-parented, detached from any terminal): that counts as SIGHUP.
   * @default 1000 ms; 0 = do not watch
   */
  parentPollMs?: number;
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
  readonly #parentPollMs: number;
  #parentWatch: ReturnType<typeof setInterval> | undefined;

  constructor(options: InterruptsOptions = {}) {
    this.#exit = options.exit ?? ((code) => process.exit(code));
    this.#warn = options.warn ?? ((text) => void process.stderr.write(text));
    this.#parentPollMs = options.parentPollMs ?? 1000;
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
      process.on('SIGHUP', this.#handler);
      this.#watchParent();
      this.#installed = true;
    }
    return this;
  }

  uninstall(): void {
    process.off('SIGINT', this.#handler);
    process.off('SIGTERM', this.#handler);
    process.off('SIGHUP', this.#handler);
    if (this.#parentWatch) clearInterval(this.#parentWatch);
    this.#parentWatch = undefined;
    this.#installed = false;
  }

  /**
   * A parent that goes away without signalling us (npx, a CI runner's shell killed with
   * SIGKILL) re-parents this process; nobody would ever stop it. Polling `process.ppid` is the
   * portable way to notice: there is no event for it.
   */
  #watchParent(): void {
    if (this.#parentPollMs <= 0 || this.#parentWatch) return;
    const parent = process.ppid;
    this.#parentWatch = setInterval(() => {
      if (process.ppid === parent) return;
      if (this.#parentWatch) clearInterval(this.#parentWatch);
      this.#parentWatch = undefined;
      this.#handler('SIGHUP');
    }, this.#parentPollMs);
    this.#parentWatch.unref();
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
