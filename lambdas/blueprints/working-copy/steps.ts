/**
 * Runs a working copy's git calls one command at a time on the host, without ever waiting on
 * one: each call advances as far as it can (start the next command, or look at the running one)
 * and reports pending; the engine calls again later with the state this returned (lease data,
 * resource data) — the model is the engine's own command runner (core/command-runner.ts).
 *
 * Which call comes next is a function of the results so far (`Plan`), so a plan can branch
 * (clone only when no usable clone is there) and use earlier output (the commit a ref resolved
 * to). Command ids are `<scope>-<step id>`: a redelivered step starts nothing twice, because
 * the host's `start` is idempotent by command id.
 */
import type {
  CommandHandle,
  CommandInterface,
  CommandProgress,
  ParsedCommand,
} from '../../core/blueprint.ts';

/** One command of a plan. `text` is what the logs say (`git fetch origin main`). */
export interface GitStep {
  id: string;
  text: string;
  command: { argv: [string, ...string[]] } | { script: string };
  timeoutSeconds: number;
  /** A non-zero exit is an answer, not a failure (a probe: "is there a usable clone?"). */
  probe?: boolean;
}

/** What a finished step left: kept in the state (output tails only). */
export interface StepResult {
  exitCode: number | null;
  timedOut: boolean;
  durationMs: number;
  stdout: string;
  stderr: string;
}

/** A started step: its handle, when it started, and the output read so far (bytes, tails). */
export interface StepEntry {
  handle: CommandHandle;
  /** ctx.clock time of the start: past its timeout plus a grace, this side stops it. */
  startedAt?: number;
  read?: { stdout: number; stderr: number };
  tail?: { stdout: string; stderr: string };
  result?: StepResult;
}

/** Persisted between calls (JSON): per step id, what it started and how it ended. */
export type StepState = Record<string, StepEntry>;

/** The next step, or `done` when the plan is complete. */
export type Plan = (results: Record<string, StepResult>) => GitStep | 'done';

export type Advance =
  | { state: 'pending'; steps: StepState; log: string[]; message: string }
  | { state: 'done'; steps: StepState; log: string[]; results: Record<string, StepResult> }
  | { state: 'failed'; steps: StepState; log: string[]; step: GitStep; result: StepResult };

const TAIL_CHARS = 4000;
/** A host poll returns at most a chunk of output: read on while more is there, this often. */
const MAX_READS_PER_LOOK = 64;
/**
 * Past its timeout plus this, a step the host never reported ended is cancelled here and
 * counted as timed out: the engine's own backstop for holder commands (command-runner.ts).
 */
const KILL_GRACE_SECONDS = 30;
/** Git never prompts: a missing credential fails the call instead of hanging it. */
const GIT_ENV: Record<string, string> = {
  GIT_TERMINAL_PROMPT: '0',
  GIT_ASKPASS: 'true',
  SSH_ASKPASS: 'true',
  GCM_INTERACTIVE: 'never',
  GIT_SSH_COMMAND: 'ssh -oBatchMode=yes',
  LC_ALL: 'C',
};

function parsed(step: GitStep): ParsedCommand {
  const common = { text: step.text, timeoutSeconds: step.timeoutSeconds, env: GIT_ENV };
  return 'argv' in step.command
    ? { kind: 'argv', argv: step.command.argv, ...common }
    : { kind: 'script', script: step.command.script, ...common };
}

/** Poll from what was read before, reading on while the host has more at hand. */
async function look(
  commands: CommandInterface,
  entry: StepEntry,
): Promise<{ entry: StepEntry; progress: CommandProgress }> {
  let read = entry.read ?? { stdout: 0, stderr: 0 };
  let tail = entry.tail ?? { stdout: '', stderr: '' };
  for (let i = 0; ; i++) {
    const progress = await commands.poll(entry.handle, read);
    read = {
      stdout: read.stdout + Buffer.byteLength(progress.stdout),
      stderr: read.stderr + Buffer.byteLength(progress.stderr),
    };
    tail = {
      stdout: (tail.stdout + progress.stdout).slice(-TAIL_CHARS),
      stderr: (tail.stderr + progress.stderr).slice(-TAIL_CHARS),
    };
    const more = progress.stdout !== '' || progress.stderr !== '';
    if (progress.state === 'finished' || !more || i + 1 >= MAX_READS_PER_LOOK) {
      return { entry: { ...entry, read, tail }, progress };
    }
  }
}

function resultOf(entry: StepEntry, progress: CommandProgress & { state: 'finished' }): StepResult {
  return {
    exitCode: progress.exitCode,
    timedOut: progress.timedOut,
    durationMs: progress.durationMs,
    stdout: entry.tail?.stdout ?? '',
    stderr: entry.tail?.stderr ?? '',
  };
}

export function succeeded(result: StepResult): boolean {
  return result.exitCode === 0 && !result.timedOut;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

/** How a finished step reads in a log: `git fetch origin main: done in 1.2s`. */
export function describeResult(step: GitStep, result: StepResult): string {
  if (result.timedOut) return `${step.text} timed out after ${step.timeoutSeconds}s`;
  if (succeeded(result)) return `${step.text}: done in ${seconds(result.durationMs)}`;
  const said = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-3).join(' / ');
  const how = result.exitCode === null ? 'was killed' : `exited ${result.exitCode}`;
  return `${step.text} ${how} after ${seconds(result.durationMs)}${said ? `: ${said}` : ''}`;
}

/** Take as many steps as can be taken without waiting; see the module comment. */
export async function advance(
  commands: CommandInterface,
  scope: string,
  plan: Plan,
  previous: StepState,
  now: number,
): Promise<Advance> {
  const steps: StepState = { ...previous };
  const log: string[] = [];
  const results = (): Record<string, StepResult> =>
    Object.fromEntries(
      Object.entries(steps).flatMap(([id, s]) => (s.result ? [[id, s.result]] : [])),
    );
  for (;;) {
    const step = plan(results());
    if (step === 'done') return { state: 'done', steps, log, results: results() };
    const started = steps[step.id] ?? {
      handle: await commands.start(`${scope}-${step.id}`, parsed(step)),
      startedAt: now,
    };
    const { entry, progress } = await look(commands, started);
    let result: StepResult;
    if (progress.state === 'running') {
      const overdueAt =
        (entry.startedAt ?? now) + (step.timeoutSeconds + KILL_GRACE_SECONDS) * 1000;
      if (now < overdueAt) {
        steps[step.id] = entry;
        return { state: 'pending', steps, log, message: `running ${step.text}` };
      }
      // The host never reported it ended: stop it, and count it as timed out.
      await commands.cancel(entry.handle);
      result = {
        exitCode: null,
        timedOut: true,
        durationMs: now - (entry.startedAt ?? now),
        stdout: entry.tail?.stdout ?? '',
        stderr: entry.tail?.stderr ?? '',
      };
    } else {
      result = resultOf(entry, progress);
    }
    steps[step.id] = { ...entry, result };
    log.push(describeResult(step, result));
    if (!succeeded(result) && !step.probe) return { state: 'failed', steps, log, step, result };
  }
}
