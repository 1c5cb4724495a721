/**
 * `drydock lease`, `drydock exec`, `drydock release`: acquire a lease and wait for it while
 * showing its log as it happens, run commands on it, and give it back.
 *
 * Whatever happens after the lease was requested — the command fails, the wait times out,
 * Ctrl-C, an API error — a lease this process asked for is released before it exits (unless
 * the holder asked to keep it: `drydock lease` without a command). When a lease ends without
 * becoming active, the exit message is the lease's own recorded reason, never a generic one.
 */
import { randomUUID } from 'node:crypto';
import type { Lease, LogEvent } from '../../lambdas/core/model.ts';
import type { ApiClient } from './api.ts';
import { CliError, formatDuration, formatLogLine, type Io, printJson } from './output.ts';

/** Lease JSON as the API returns it (docs/api-contract.md). */
export type ApiLease = Omit<Lease, 'waitSeq' | 'slotLocks' | 'sweepAt' | 'checkedAt'>;

export interface ApiCommand {
  id: string;
  leaseId: string;
  status: 'queued' | 'running' | 'finished' | 'failed';
  argv?: string[];
  script?: string;
  timeoutSeconds: number;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  result?: {
    exitCode: number | null;
    stdout: string;
    stderr: string;
    timedOut: boolean;
    durationMs: number;
    truncated?: boolean;
  };
  error?: string | { code?: string; message?: string };
}

const ENDED = new Set(['released', 'broken', 'destroyed']);

/** Exit statuses besides the command's own. */
export const EXIT = {
  failure: 1,
  /** The command (or the wait for the lease) timed out, as timeout(1). */
  timeout: 124,
  /** Drydock could not run the command at all (as timeout(1) and env(1) use 125). */
  cannotRun: 125,
} as const;

// ---- interrupts ---------------------------------------------------------------------------

/**
 * Ctrl-C / SIGTERM while a lease is held: the first one aborts `signal` so the flow can clean
 * up (release) and exit 128+n; a second one exits at once, saying what may be left behind.
 */
export class Interrupts {
  readonly #controller = new AbortController();
  #received: NodeJS.Signals | undefined;
  #installed = false;
  /** What is still held, for the message if the user insists. */
  pending: string | undefined;
  #handler = (signal: NodeJS.Signals) => {
    if (this.#received) {
      process.stderr.write(
        `\ndrydock: ${signal} again: exiting now${this.pending ? `; ${this.pending}` : ''}\n`,
      );
      process.exit(exitCodeOf(signal));
    }
    this.#received = signal;
    this.#controller.abort();
  };

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get received(): NodeJS.Signals | undefined {
    return this.#received;
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

export function exitCodeOf(signal: NodeJS.Signals): number {
  return signal === 'SIGTERM' ? 143 : signal === 'SIGHUP' ? 129 : 130;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
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

// ---- progress -----------------------------------------------------------------------------

/** Progress on stderr: `drydock [3.2s] ...` lines, plus a redrawn status line on a terminal. */
export class Progress {
  readonly #io: Io;
  readonly #started: number;
  #statusShown = false;

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
    this.clear();
    this.#io.err(formatLogLine(this.#prefix(), message));
  }

  status(message: string): void {
    if (!this.#io.tty) return;
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
}

// ---- logs ---------------------------------------------------------------------------------

export function logsPath(id: string): string {
  const kind = id.startsWith('lease-')
    ? 'leases'
    : id.startsWith('res-')
      ? 'resources'
      : 'blueprints';
  return `/v1/${kind}/${encodeURIComponent(id)}/logs`;
}

/** Every log event after `after`, oldest first (follows the API's pages). */
export async function fetchLogs(
  client: ApiClient,
  id: string,
  after: string | undefined,
): Promise<LogEvent[]> {
  const events: LogEvent[] = [];
  let cursor = after;
  for (let page = 0; page < 100; page++) {
    const { items, cursor: next } = await client.get<{ items: LogEvent[]; cursor?: string }>(
      logsPath(id),
      { query: { after: cursor, limit: 100 } },
    );
    events.push(...items);
    const last = items.at(-1)?.seq ?? next;
    if (!next || items.length === 0 || last === cursor) break;
    cursor = last;
  }
  return events;
}

const REASON_LOGS = new Set([
  'lease.broken',
  'lease.activation-failed',
  'lease.expired',
  'lease.released',
  'lease.requeued',
]);

const ENDING_VERBS: Record<string, string> = {
  'lease.broken': 'broke',
  'lease.activation-failed': 'failed to activate',
  'lease.expired': 'expired',
  'lease.released': 'was released',
};

/**
 * How and why a lease ended, from its endReason and its log (the status alone may already be
 * `destroyed`, which says nothing): e.g. `broke: no blueprint can ever serve this lease ...`.
 */
export function endCause(lease: ApiLease, logs: LogEvent[]): string {
  const ending = [...logs].reverse().find((e) => e.type in ENDING_VERBS);
  const verb = ending ? ENDING_VERBS[ending.type] : `is ${lease.status}`;
  if (lease.endReason) return `${verb}: ${lease.endReason}`;
  const why = ending ?? [...logs].reverse().find((e) => REASON_LOGS.has(e.type));
  if (why) return `${verb}: ${why.message}`;
  const last = logs.at(-1);
  return last
    ? `${verb}; no end reason recorded, its last log says: ${last.message}`
    : `${verb}; no end reason recorded (see \`drydock logs ${lease.id}\`)`;
}

// ---- waiting for a lease ------------------------------------------------------------------

type WaitOutcome =
  | { kind: 'active'; lease: ApiLease }
  | { kind: 'ended'; lease: ApiLease }
  | { kind: 'timeout'; lease: ApiLease }
  | { kind: 'interrupted'; lease: ApiLease | undefined };

interface Session {
  client: ApiClient;
  io: Io;
  progress: Progress;
  interrupts: Interrupts;
  /** Every log event of the lease seen so far. */
  logs: LogEvent[];
}

async function showNewLogs(session: Session, leaseId: string): Promise<void> {
  const after = session.logs.at(-1)?.seq;
  for (const event of await fetchLogs(session.client, leaseId, after)) {
    session.logs.push(event);
    session.progress.line(event.message);
  }
}

async function getLease(client: ApiClient, id: string): Promise<ApiLease> {
  return (await client.get<{ lease: ApiLease }>(`/v1/leases/${encodeURIComponent(id)}`)).lease;
}

async function waitUntilActive(
  session: Session,
  leaseId: string,
  deadline: number,
): Promise<WaitOutcome> {
  const { client, progress, interrupts } = session;
  let interval = 250;
  let lease: ApiLease | undefined;
  for (;;) {
    if (interrupts.signal.aborted) return { kind: 'interrupted', lease };
    await showNewLogs(session, leaseId);
    lease = await getLease(client, leaseId);
    if (lease.status === 'active') return { kind: 'active', lease };
    if (ENDED.has(lease.status)) {
      await showNewLogs(session, leaseId);
      return { kind: 'ended', lease };
    }
    if (interrupts.signal.aborted) return { kind: 'interrupted', lease };
    if (Date.now() >= deadline) return { kind: 'timeout', lease };
    progress.status(`${leaseId} ${lease.status}${lease.waitReason ? `: ${lease.waitReason}` : ''}`);
    await sleep(Math.max(0, Math.min(interval, deadline - Date.now())), interrupts.signal);
    interval = Math.min(1_000, Math.round(interval * 1.25));
  }
}

// ---- running a command --------------------------------------------------------------------

function shellQuote(argv: string[]): string {
  return argv
    .map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`))
    .join(' ');
}

function commandError(command: ApiCommand): string {
  if (!command.error) return 'no reason given';
  return typeof command.error === 'string'
    ? command.error
    : (command.error.message ?? JSON.stringify(command.error));
}

type CommandOutcome =
  | { kind: 'done'; command: ApiCommand }
  | { kind: 'interrupted'; command: ApiCommand };

async function runCommand(
  session: Session,
  leaseId: string,
  argv: string[],
  timeoutSeconds: number | undefined,
): Promise<CommandOutcome> {
  const { client, progress, interrupts } = session;
  const path = `/v1/leases/${encodeURIComponent(leaseId)}/commands`;
  // Not retried: a command is not idempotent.
  let { command } = await client.post<{ command: ApiCommand }>(path, {
    argv,
    ...(timeoutSeconds ? { timeoutSeconds } : {}),
  });
  progress.line(
    `running \`${shellQuote(argv)}\` on ${leaseId} (${command.id}, timeout ${formatDuration(command.timeoutSeconds)})`,
  );
  const started = Date.now();
  // The server kills the command at its timeout; allow for the kill and the report to land.
  const giveUpAt = started + (command.timeoutSeconds + 60) * 1000;
  let interval = 200;
  while (command.status === 'queued' || command.status === 'running') {
    if (interrupts.signal.aborted) return { kind: 'interrupted', command };
    if (Date.now() > giveUpAt) {
      throw new CliError(
        `command ${command.id} was still ${command.status} ${formatDuration((Date.now() - started) / 1000)} after it was started (timeout ${command.timeoutSeconds}s); giving up`,
        EXIT.timeout,
      );
    }
    progress.status(`${command.status} \`${shellQuote(argv)}\` on ${leaseId}`);
    await sleep(interval, interrupts.signal);
    if (interrupts.signal.aborted) return { kind: 'interrupted', command };
    interval = Math.min(1_000, Math.round(interval * 1.25));
    command = (
      await client.get<{ command: ApiCommand }>(`${path}/${encodeURIComponent(command.id)}`)
    ).command;
  }
  return { kind: 'done', command };
}

/** Writes the command's output and says how it ended; returns the exit status to use. */
function reportCommand(session: Session, command: ApiCommand): number {
  const { io, progress } = session;
  progress.clear();
  const result = command.result;
  if (command.status === 'failed' || !result) {
    progress.line(`command ${command.id} could not run: ${commandError(command)}`);
    return EXIT.cannotRun;
  }
  if (!io.json) {
    io.out(result.stdout);
    io.err(result.stderr);
  }
  if (result.truncated) progress.line('output was truncated to the size limit');
  if (result.timedOut) {
    progress.line(
      `command timed out after ${formatDuration(command.timeoutSeconds)} and was killed`,
    );
    return EXIT.timeout;
  }
  if (result.exitCode === null) {
    progress.line('command was killed by a signal');
    return EXIT.cannotRun;
  }
  progress.line(
    `command exited ${result.exitCode} after ${formatDuration(result.durationMs / 1000)}`,
  );
  return result.exitCode;
}

// ---- releasing ----------------------------------------------------------------------------

async function release(session: Session, leaseId: string): Promise<boolean> {
  try {
    const { lease } = await session.client.post<{ lease: ApiLease }>(
      `/v1/leases/${encodeURIComponent(leaseId)}/release`,
      {},
      { retry: true },
    );
    session.progress.line(`released ${leaseId} (${lease.status})`);
    return true;
  } catch (err) {
    session.progress.line(
      `could not release ${leaseId}: ${(err as Error).message}\nrelease it with \`drydock release ${leaseId}\` (it expires by itself at the end of its TTL)`,
    );
    return false;
  }
}

// ---- the commands -------------------------------------------------------------------------

export interface LeaseOptions {
  type: string;
  attributes: Record<string, string>;
  blueprintIds?: string[];
  ttlSeconds?: number;
  /** Give up waiting for the lease to activate after this long. */
  timeoutSeconds: number;
  commandTimeoutSeconds?: number;
  /** Run this on the lease, then release it. */
  command: string[];
}

/** `drydock lease`: returns the exit status. */
export async function leaseFlow(
  client: ApiClient,
  options: LeaseOptions,
  io: Io,
  interrupts: Interrupts,
): Promise<number> {
  const progress = new Progress(io);
  const session: Session = { client, io, progress, interrupts, logs: [] };
  // A retried POST with the same key returns the same lease instead of making a second one.
  const idempotencyKey = randomUUID();
  const { lease: requested } = await client.post<{ lease: ApiLease }>(
    '/v1/leases',
    {
      type: options.type,
      ...(Object.keys(options.attributes).length ? { attributes: options.attributes } : {}),
      ...(options.blueprintIds?.length ? { blueprintIds: options.blueprintIds } : {}),
      ...(options.ttlSeconds ? { ttlSeconds: options.ttlSeconds } : {}),
    },
    { headers: { 'Idempotency-Key': idempotencyKey }, retry: true },
  );
  const leaseId = requested.id;
  interrupts.pending = `lease ${leaseId} may still be held: release it with \`drydock release ${leaseId}\``;
  progress.line(
    `requested ${leaseId}; waiting up to ${formatDuration(options.timeoutSeconds)} for it to activate (Ctrl-C releases it)`,
  );

  let keep = false;
  let ended = false;
  try {
    const waited = await waitUntilActive(
      session,
      leaseId,
      Date.now() + options.timeoutSeconds * 1000,
    );
    switch (waited.kind) {
      case 'interrupted':
        progress.line(`${interrupts.received ?? 'interrupted'}: releasing ${leaseId}`);
        return exitCodeOf(interrupts.received ?? 'SIGINT');
      case 'ended': {
        ended = true;
        const cause = endCause(waited.lease, session.logs);
        if (io.json) printJson(io, { lease: waited.lease });
        throw new CliError(`lease ${leaseId} ${cause}`);
      }
      case 'timeout':
        throw new CliError(
          `gave up after ${formatDuration(options.timeoutSeconds)}: lease ${leaseId} was still ${waited.lease.status}${
            waited.lease.waitReason ? ` (${waited.lease.waitReason})` : ''
          }, so it was released; raise --timeout to wait longer`,
          EXIT.timeout,
        );
      case 'active':
        break;
    }
    const lease = waited.lease;
    progress.line(
      `${leaseId} active after ${formatDuration(progress.elapsedSeconds())} on ${lease.resourceId ?? '?'} (activated ${lease.activatedAt ?? '?'}${
        lease.expiresAt ? `, expires ${lease.expiresAt}` : ''
      })`,
    );

    if (options.command.length === 0) {
      keep = true;
      if (io.json) printJson(io, { lease });
      else {
        io.out(`${leaseId}\n`);
        progress.line(`release it with \`drydock release ${leaseId}\``);
      }
      return 0;
    }

    const ran = await runCommand(session, leaseId, options.command, options.commandTimeoutSeconds);
    if (ran.kind === 'interrupted') {
      progress.line(
        `${interrupts.received ?? 'interrupted'}: releasing ${leaseId} (command ${ran.command.id} was ${ran.command.status})`,
      );
      return exitCodeOf(interrupts.received ?? 'SIGINT');
    }
    const code = reportCommand(session, ran.command);
    if (io.json) printJson(io, { lease, command: ran.command });
    return code;
  } catch (err) {
    if (options.command.length > 0 && err instanceof CliError && err.exitCode === EXIT.failure) {
      // With a command, "drydock failed" must not look like the command's own exit 1.
      throw new CliError(err.message, EXIT.cannotRun);
    }
    throw err;
  } finally {
    if (!keep && !ended) await release(session, leaseId);
    interrupts.pending = undefined;
    progress.clear();
  }
}

/** `drydock exec <lease> -- <command...>`: the command's exit status. */
export async function execFlow(
  client: ApiClient,
  leaseId: string,
  argv: string[],
  timeoutSeconds: number | undefined,
  io: Io,
  interrupts: Interrupts,
): Promise<number> {
  const progress = new Progress(io);
  const session: Session = { client, io, progress, interrupts, logs: [] };
  const ran = await runCommand(session, leaseId, argv, timeoutSeconds);
  if (ran.kind === 'interrupted') {
    progress.line(
      `${interrupts.received ?? 'interrupted'}: stopped waiting; command ${ran.command.id} may still be running on ${leaseId}`,
    );
    return exitCodeOf(interrupts.received ?? 'SIGINT');
  }
  const code = reportCommand(session, ran.command);
  if (io.json) printJson(io, { command: ran.command });
  return code;
}

/** `drydock release <lease...>` */
export async function releaseFlow(client: ApiClient, ids: string[], io: Io): Promise<number> {
  const released: ApiLease[] = [];
  const failures: string[] = [];
  for (const id of ids) {
    try {
      const before = await getLease(client, id).catch(() => undefined);
      const { lease } = await client.post<{ lease: ApiLease }>(
        `/v1/leases/${encodeURIComponent(id)}/release`,
        {},
        { retry: true },
      );
      released.push(lease);
      if (!io.json) {
        io.out(
          before && ENDED.has(before.status)
            ? `${id} was already ${before.status}${before.endReason ? ` (${before.endReason})` : ''}\n`
            : `${id} released\n`,
        );
      }
    } catch (err) {
      failures.push(`${id}: ${(err as Error).message}`);
    }
  }
  if (io.json) printJson(io, released);
  if (failures.length > 0) throw new CliError(failures.join('\n'));
  return 0;
}

/** `drydock logs <id> [--follow]` */
export async function logsFlow(
  client: ApiClient,
  id: string,
  follow: boolean,
  io: Io,
  interrupts: Interrupts,
): Promise<number> {
  let after: string | undefined;
  const show = (events: LogEvent[]) => {
    for (const event of events) {
      if (io.json) io.out(`${JSON.stringify(event)}\n`);
      else io.out(formatLogLine(`${event.at}  ${event.type.padEnd(26)}`, event.message));
    }
    after = events.at(-1)?.seq ?? after;
  };
  const first = await fetchLogs(client, id, undefined);
  if (io.json && !follow) {
    printJson(io, first);
    return 0;
  }
  show(first);
  if (!follow) {
    if (first.length === 0) io.err(`drydock: no log events for ${id}\n`);
    return 0;
  }
  while (!interrupts.signal.aborted) {
    await sleep(1_000, interrupts.signal);
    if (interrupts.signal.aborted) break;
    show(await fetchLogs(client, id, after));
  }
  return exitCodeOf(interrupts.received ?? 'SIGINT');
}
