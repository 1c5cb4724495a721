/**
 * One command on a lease, for `drydock lease -- cmd` and `drydock exec`: start it, stream its
 * output as the server appends it to the command record, cancel it on Ctrl-C, and turn how it
 * ended into the CLI's exit status.
 *
 * The server runs commands asynchronously. The POST answers with the queued record at once;
 * each GET answers with the record and each stream's output from the offset the CLI passes
 * (bytes of the UTF-8 stream; `to` is the next offset). The server keeps only a tail of each
 * stream, so a reader that falls behind misses some: `skipped` says how many bytes.
 *
 *   POST .../commands ─► queued ─► running ─► finished | failed     (polled every ~500 ms)
 *                                     │ Ctrl-C: POST .../cancel, keep streaming
 *                                     └─► cancelling ─► cancelled   (waited for at most ~10 s;
 *                                                                    Ctrl-C again stops waiting)
 */
import { z } from 'zod';
import {
  type CommandRecord,
  type CommandStatus,
  ENDED_COMMAND_STATUSES,
} from '../../lambdas/core/model.ts';
import { formatZodIssues } from '../../lambdas/core/validation.ts';
import type { ApiClient } from './api.ts';
import { exitCodeOf, type Interrupts, sleep } from './interrupts.ts';
import { CliError, EXIT, formatDuration, type Io } from './output.ts';
import type { OutputStream, Progress } from './progress.ts';

/** A command record as the API returns it (docs/api-contract.md). */
export type ApiCommand = Pick<
  CommandRecord,
  | 'id'
  | 'leaseId'
  | 'status'
  | 'argv'
  | 'script'
  | 'timeoutSeconds'
  | 'cwd'
  | 'createdAt'
  | 'startedAt'
  | 'cancelRequestedAt'
  | 'finishedAt'
  | 'result'
  | 'error'
>;

/** One stream's new output in a poll: bytes [from, to), plus how many before `from` were cut. */
const outputChunkSchema = z.object({
  from: z.number().int().nonnegative(),
  to: z.number().int().nonnegative(),
  text: z.string(),
  skipped: z.number().int().nonnegative().optional(),
});
const pollOutputSchema = z.object({ stdout: outputChunkSchema, stderr: outputChunkSchema });
type OutputChunk = z.infer<typeof outputChunkSchema>;

/** How often to poll; tests shorten it. */
export interface CommandPacing {
  /** Between polls while the command runs. @default 500 */
  pollMs?: number;
  /** Before the first poll, so a quick command's output comes back quickly. @default 200 */
  firstPollMs?: number;
  /** How long to wait for a cancelled command to end before saying it may still run. @default 10_000 */
  cancelWaitMs?: number;
}

export interface CommandSession {
  client: ApiClient;
  io: Io;
  progress: Progress;
  interrupts: Interrupts;
  pacing?: CommandPacing;
}

export type CommandOutcome =
  /** It ended by itself (any status: finished, failed, or cancelled by someone else). */
  | { kind: 'ended'; command: ApiCommand }
  /** Ctrl-C: a cancel was requested; `command` is the last record seen (ended or not). */
  | { kind: 'interrupted'; command: ApiCommand };

const ENDED: ReadonlySet<CommandStatus> = new Set(ENDED_COMMAND_STATUSES);

export function commandEnded(command: ApiCommand): boolean {
  return ENDED.has(command.status);
}

function commandsPath(leaseId: string): string {
  return `/v1/leases/${encodeURIComponent(leaseId)}/commands`;
}

function commandPath(command: ApiCommand): string {
  return `${commandsPath(command.leaseId)}/${encodeURIComponent(command.id)}`;
}

export function shellQuote(argv: string[]): string {
  return argv
    .map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`))
    .join(' ');
}

/**
 * Where each stream's output has been read up to, and the writing of new output. Never writes
 * a byte twice, even if a server answers from an earlier offset than the one asked for.
 */
class OutputFollower {
  readonly #progress: Progress;
  /** With --json, stdout is for the JSON record alone: output is followed but not written. */
  readonly #write: boolean;
  readonly #next: Record<OutputStream, number> = { stdout: 0, stderr: 0 };

  constructor(progress: Progress, write: boolean) {
    this.#progress = progress;
    this.#write = write;
  }

  query(): { stdoutFrom: number; stderrFrom: number } {
    return { stdoutFrom: this.#next.stdout, stderrFrom: this.#next.stderr };
  }

  show(output: unknown): void {
    const parsed = pollOutputSchema.safeParse(output);
    if (!parsed.success) {
      throw new CliError(
        `the API answered a command poll with output of an unexpected shape: ${formatZodIssues(parsed.error)}`,
      );
    }
    this.#take('stdout', parsed.data.stdout);
    this.#take('stderr', parsed.data.stderr);
  }

  #take(stream: OutputStream, chunk: OutputChunk): void {
    const next = this.#next[stream];
    const cut = Math.max(chunk.skipped ?? 0, chunk.from - next);
    if (cut > 0 && this.#write) {
      this.#progress.notice(`[drydock: ${cut} bytes of output were cut]`);
    }
    if (chunk.to <= next) return;
    let text = chunk.text;
    if (chunk.from < next) {
      // Already written up to `next`: drop the bytes before it.
      text = Buffer.from(text, 'utf8')
        .subarray(next - chunk.from)
        .toString('utf8');
    }
    this.#next[stream] = chunk.to;
    if (this.#write) this.#progress.output(stream, text);
  }
}

async function poll(
  session: CommandSession,
  command: ApiCommand,
  output: OutputFollower,
): Promise<ApiCommand> {
  const answer = await session.client.get<{ command: ApiCommand; output: unknown }>(
    commandPath(command),
    { query: output.query() },
  );
  output.show(answer.output);
  return answer.command;
}

/**
 * Polls until the command ended, `stop` aborted or `until` (epoch ms) passed; returns the last
 * record seen.
 */
async function follow(
  session: CommandSession,
  command: ApiCommand,
  output: OutputFollower,
  stop: AbortSignal,
  until: number,
  describe: string,
): Promise<ApiCommand> {
  const { pollMs = 500, firstPollMs = 200 } = session.pacing ?? {};
  let wait = firstPollMs;
  let current = command;
  while (!commandEnded(current) && !stop.aborted && Date.now() < until) {
    session.progress.status(`${current.status} ${describe}`);
    await sleep(Math.max(0, Math.min(wait, until - Date.now())), stop);
    if (stop.aborted) break;
    current = await poll(session, current, output);
    wait = pollMs;
  }
  return current;
}

/**
 * Starts `argv` on the lease and streams its output until it ends. On the first Ctrl-C it asks
 * the server to cancel it and keeps streaming until it ends (bounded); a second Ctrl-C, even
 * one that comes before the cancel request went out, only stops the waiting, so the caller
 * still cleans up (releases its lease). Throws CliError(EXIT.timeout) if the command is still
 * running well after its own timeout.
 */
export function runCommand(
  session: CommandSession,
  leaseId: string,
  argv: string[],
  timeoutSeconds: number | undefined,
  /** Working directory on the resource (a working copy: relative to it). */
  cwd?: string,
): Promise<CommandOutcome> {
  return session.interrupts.cutShort((again) =>
    startAndFollow(session, leaseId, argv, timeoutSeconds, again, cwd),
  );
}

async function startAndFollow(
  session: CommandSession,
  leaseId: string,
  argv: string[],
  timeoutSeconds: number | undefined,
  again: AbortSignal,
  cwd: string | undefined,
): Promise<CommandOutcome> {
  const { client, io, progress, interrupts } = session;
  const output = new OutputFollower(progress, !io.json);
  // Not retried: starting a command is not idempotent.
  const { command: started } = await client.post<{ command: ApiCommand }>(commandsPath(leaseId), {
    argv,
    ...(timeoutSeconds ? { timeoutSeconds } : {}),
    ...(cwd ? { cwd } : {}),
  });
  const describe = `\`${shellQuote(argv)}\` on ${leaseId}`;
  progress.line(
    `running ${describe} (${started.id}, timeout ${formatDuration(started.timeoutSeconds)})`,
  );
  const startedAt = Date.now();
  // The server kills the command at its timeout; allow for the kill and the report to land.
  const giveUpAt = startedAt + (started.timeoutSeconds + 60) * 1000;
  const command = await follow(session, started, output, interrupts.signal, giveUpAt, describe);
  if (commandEnded(command)) return { kind: 'ended', command };
  if (interrupts.signal.aborted) {
    return { kind: 'interrupted', command: await cancel(session, command, output, again) };
  }
  throw new CliError(
    `command ${command.id} was still ${command.status} ${formatDuration((Date.now() - startedAt) / 1000)} after it was started (timeout ${command.timeoutSeconds}s); giving up`,
    EXIT.timeout,
  );
}

/**
 * Asks the server to cancel the command and streams on until it ends, `cancelWaitMs` passed or
 * `again` aborted (a second Ctrl-C).
 */
async function cancel(
  session: CommandSession,
  command: ApiCommand,
  output: OutputFollower,
  again: AbortSignal,
): Promise<ApiCommand> {
  const { client, progress, interrupts } = session;
  const { cancelWaitMs = 10_000 } = session.pacing ?? {};
  progress.line(
    `${interrupts.received ?? 'interrupted'}: cancelling command ${command.id} (Ctrl-C again stops waiting for it)`,
  );
  let current: ApiCommand;
  try {
    // Cancelling is idempotent on the server, so a retry after a lost answer is safe.
    ({ command: current } = await client.post<{ command: ApiCommand }>(
      `${commandPath(command)}/cancel`,
      {},
      { retry: true },
    ));
  } catch (err) {
    progress.line(`could not cancel command ${command.id}: ${(err as Error).message}`);
    return command;
  }
  if (again.aborted) return current;
  // Read what it wrote up to now, even if the cancel found it already ended.
  current = await poll(session, current, output);
  return follow(
    session,
    current,
    output,
    again,
    Date.now() + cancelWaitMs,
    `command ${command.id}`,
  );
}

/**
 * Says how the command ended and returns
 * the exit status: the command's own, 124 if it timed out, 125 if it could not run or was
 * killed, 128+n after Ctrl-C / SIGTERM.
 */
export function reportCommand(session: CommandSession, outcome: CommandOutcome): number {
  const { io, progress, interrupts } = session;
  const { command } = outcome;
  progress.clear();
  if (outcome.kind === 'interrupted') {
    const signal = interrupts.received ?? 'SIGINT';
    const why = command.error;
    if (command.status === 'cancelled') {
      progress.line(`command cancelled${why ? ` (${why})` : ''}`);
    } else if (commandEnded(command)) {
      progress.line(
        `command ${command.status} before it could be cancelled${describeEnd(command)}`,
      );
    } else {
      progress.line(
        `stopped waiting: command ${command.id} was still ${command.status}; it may still be running on ${command.leaseId}`,
      );
    }
    return exitCodeOf(signal);
  }
  const result = command.result;
  if (command.status === 'cancelled') {
    const why = command.error;
    progress.line(`command ${command.id} was cancelled${why ? `: ${why}` : ''}`);
    return EXIT.cannotRun;
  }
  if (command.status === 'failed' || !result) {
    progress.line(`command ${command.id} could not run: ${command.error ?? 'no reason given'}`);
    return EXIT.cannotRun;
  }
  // The output was streamed as it came; only the JSON record carries the (bounded) tails.
  if (result.truncated && io.json) {
    progress.line('output was truncated to the size limit');
  }
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

function describeEnd(command: ApiCommand): string {
  const result = command.result;
  if (!result) return '';
  if (result.timedOut) return ' (timed out)';
  return result.exitCode === null ? ' (killed by a signal)' : ` (exit ${result.exitCode})`;
}
