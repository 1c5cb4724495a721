/**
 * How a scripted command plays out over time. Pure: everything follows from the command's rule,
 * when it started, its timeout, when (if ever) it was cancelled, and the clock, so any worker
 * process that reads the same records computes the same answer at the same instant.
 *
 *   start ──chunk──chunk──────────── start + delayMs: final output, exit code   (exited)
 *   start ──chunk─────── start + timeout: output so far, exit code null         (timedOut)
 *   start ──chunk──── cancel: output so far, exit code null                     (cancelled)
 *
 * A chunk is visible once `afterMs <= elapsed`; the command has ended once `now >= end`, so a
 * delay equal to the timeout still exits normally.
 */
import type { CommandProgress, OutputOffsets } from '../../core/blueprint.ts';
import type { Synthetic } from './config.ts';

interface Output {
  stdout: string;
  stderr: string;
}

/** What a command prints and how it ends if nothing stops it. */
export interface CommandScript {
  delayMs: number;
  exitCode: number;
  /** In time order (the config schema refuses anything else). */
  chunks: ReadonlyArray<Output & { afterMs: number }>;
  /** Printed as the command exits, after every chunk. */
  final: Output;
}

/** A started command, as recorded by `start`. */
export interface StartedCommand {
  commandId: string;
  text: string;
  startedAtMs: number;
  timeoutSeconds: number;
}

export type Ending =
  | { kind: 'exited'; atMs: number }
  | { kind: 'timedOut'; atMs: number }
  | { kind: 'cancelled'; atMs: number };

/** The first rule whose `match` finds the command's text; unmatched commands act like `echo`. */
export function scriptFor(blueprint: Synthetic, text: string): CommandScript {
  const rule = blueprint.config.commands.find((r) => new RegExp(r.match).test(text));
  if (!rule) {
    return {
      delayMs: 0,
      exitCode: 0,
      chunks: [],
      final: { stdout: `${text.replace(/^echo(?:\s+|$)/, '')}\n`, stderr: '' },
    };
  }
  return {
    delayMs: rule.delayMs,
    exitCode: rule.exitCode,
    chunks: rule.chunks,
    final: { stdout: rule.stdout, stderr: rule.stderr },
  };
}

/** When and how the command ends: its script, its timeout or a cancel, whichever comes first. */
export function endingOf(
  script: CommandScript,
  started: StartedCommand,
  cancelledAtMs: number | undefined,
): Ending {
  const timeoutMs = started.timeoutSeconds * 1000;
  const natural: Ending =
    script.delayMs <= timeoutMs
      ? { kind: 'exited', atMs: started.startedAtMs + script.delayMs }
      : { kind: 'timedOut', atMs: started.startedAtMs + timeoutMs };
  if (cancelledAtMs !== undefined && cancelledAtMs < natural.atMs) {
    return { kind: 'cancelled', atMs: Math.max(cancelledAtMs, started.startedAtMs) };
  }
  return natural;
}

/** Everything the command has printed by `nowMs`. */
function outputBy(
  script: CommandScript,
  started: StartedCommand,
  ending: Ending,
  nowMs: number,
): Output {
  const elapsed = Math.min(nowMs, ending.atMs) - started.startedAtMs;
  const shown: Output[] = script.chunks.filter((chunk) => chunk.afterMs <= elapsed);
  if (ending.kind === 'exited' && nowMs >= ending.atMs) shown.push(script.final);
  return {
    stdout: shown.map((o) => o.stdout).join(''),
    stderr: shown.map((o) => o.stderr).join(''),
  };
}

/**
 * The part of `text` after its first `offset` bytes of UTF-8. The text is whole characters and
 * the engine's offsets are sums of earlier answers, so no character is ever split.
 */
function afterBytes(text: string, offset: number): string {
  if (offset <= 0) return text;
  return Buffer.from(text, 'utf8').subarray(offset).toString('utf8');
}

/** What a poll at `nowMs` sees, from the offsets the engine has already recorded. */
export function progressAt(
  script: CommandScript,
  started: StartedCommand,
  ending: Ending,
  nowMs: number,
  from: OutputOffsets,
): CommandProgress {
  const output = outputBy(script, started, ending, nowMs);
  const stdout = afterBytes(output.stdout, from.stdout);
  const stderr = afterBytes(output.stderr, from.stderr);
  if (nowMs < ending.atMs) return { state: 'running', stdout, stderr };
  return {
    state: 'finished',
    stdout,
    stderr,
    exitCode: ending.kind === 'exited' ? script.exitCode : null,
    timedOut: ending.kind === 'timedOut',
    cancelled: ending.kind === 'cancelled',
    durationMs: ending.atMs - started.startedAtMs,
  };
}
