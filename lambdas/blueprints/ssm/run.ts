/**
 * Housekeeping commands (files, cleanup, a health ping) that a caller needs finished before it
 * returns: start, then poll until done, bounded. Lease commands never go through here — they are
 * asynchronous and polled by the engine.
 */
import { randomUUID } from 'node:crypto';
import type { CommandInterface, ParsedCommand } from '../../core/blueprint.ts';
import { TemporaryError } from '../../core/errors.ts';
import type { Clock } from '../../core/ports.ts';

export type Sleep = (ms: number) => Promise<void>;

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
 * Run `command` to its end. Gives up (cancelling it) after its timeout plus a margin of the
 * caller's clock, or after `maxPolls`, with a TemporaryError: the caller may try again.
 */
export async function runToEnd(
  iface: CommandInterface,
  command: ParsedCommand,
  deps: { clock: Clock; sleep: Sleep; pollEveryMs?: number; maxPolls?: number; what: string },
): Promise<Finished> {
  const { clock, sleep, pollEveryMs = 500, what } = deps;
  const maxPolls =
    deps.maxPolls ?? Math.ceil((command.timeoutSeconds * 1000 + 60_000) / pollEveryMs);
  const handle = await iface.start(`housekeeping-${randomUUID()}`, command);
  const deadline = clock.now() + command.timeoutSeconds * 1000 + 60_000;
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
    await sleep(pollEveryMs);
  }
  await iface.cancel(handle);
  throw new TemporaryError(`${what} did not finish in time`);
}

/** The last `chars` characters of some output, for error messages. */
export function tail(text: string, chars = 2_000): string {
  return text.length <= chars ? text : `…${text.slice(-chars)}`;
}
