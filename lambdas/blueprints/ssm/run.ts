/**
 * Housekeeping commands (files, cleanup, a health ping) that a caller needs finished before it
 * returns: send (no idempotency records: nothing retries a housekeeping command by id), then
 * poll until done, bounded. Lease commands never go through here — they are
 * asynchronous and polled by the engine.
 *
 * The bound is the step's, not the command's: a worker step must end well inside a worker
 * invocation (60 s on AWS), so a housekeeping command still running after STEP_BUDGET_MS is
 * cancelled and the step fails with a TemporaryError; the engine retries the step later (every
 * housekeeping script is idempotent: a retry runs it again from the start).
 */
import type { CommandInterface, ParsedCommand } from '../../core/blueprint.ts';
import { TemporaryError } from '../../core/errors.ts';
import type { Clock } from '../../core/ports.ts';

export type Sleep = (ms: number) => Promise<void>;

/** How long one step may wait on a housekeeping command. */
export const STEP_BUDGET_MS = 20_000;

export const realSleep: Sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export interface Finished {
  stdout: string;
  stderr: string;
  exitCode: number | null;
  timedOut: boolean;
}

/** A housekeeping script as a command the interface accepts (never shown to lease holders). */
export function housekeeping(script: string, timeoutSeconds: number): ParsedCommand {
  return { kind: 'script', script, text: script, timeoutSeconds };
}

/**
 * What housekeeping needs of a host: a plain send (no idempotency bookkeeping: a housekeeping
 * command is never retried by id, a retried step sends again), then poll and cancel.
 */
export interface HousekeepingCommands {
  send(command: ParsedCommand): Promise<Record<string, unknown>>;
  poll: CommandInterface['poll'];
  cancel: CommandInterface['cancel'];
}

/** How often a housekeeping wait polls. */
const POLL_EVERY_MS = 500;

/**
 * Run `command` to its end. Gives up (cancelling it) after its timeout or STEP_BUDGET_MS,
 * whichever is shorter, on the caller's clock, with a TemporaryError: the caller may try again.
 */
export async function runToEnd(
  iface: HousekeepingCommands,
  command: ParsedCommand,
  deps: { clock: Clock; sleep: Sleep; what: string },
): Promise<Finished> {
  const { clock, sleep, what } = deps;
  const waitMs = Math.min(command.timeoutSeconds * 1000, STEP_BUDGET_MS);
  const maxPolls = Math.ceil(waitMs / POLL_EVERY_MS) + 1;
  const handle = await iface.send(command);
  const deadline = clock.now() + waitMs;
  let stdout = '';
  let stderr = '';
  for (let polls = 0; polls < maxPolls && clock.now() <= deadline; polls++) {
    const progress = await iface.poll(handle, {
      stdout: Buffer.byteLength(stdout),
      stderr: Buffer.byteLength(stderr),
    });
    stdout += progress.stdout;
    stderr += progress.stderr;
    if (progress.state === 'finished') {
      return { stdout, stderr, exitCode: progress.exitCode, timedOut: progress.timedOut };
    }
    await sleep(POLL_EVERY_MS);
  }
  await iface.cancel(handle);
  throw new TemporaryError(
    `${what} did not finish within ${Math.round(waitMs / 1000)}s; it is retried later`,
  );
}

/** The last `chars` characters of some output, for error messages. */
export function tail(text: string, chars = 2_000): string {
  return text.length <= chars ? text : `…${text.slice(-chars)}`;
}
