/**
 * The command interface of a lease (DESIGN §2). Two ways in:
 *
 *  - `runCommand` runs a command now and returns its result (the CLI's local mode, tests);
 *  - `startCommand` records a queued command and returns at once; a worker runs it
 *    (`runQueuedCommand`, through runCommand) and records the outcome, which the holder polls
 *    with `getCommand`. An HTTPS request cannot wait for a build step; a worker can.
 *
 * A queued command's timeline, and why each write is conditional on (status, attempt):
 *
 *   API:     create(queued, attempt 0) ─ send "command C"
 *   worker:  receive ─ queued→running(attempt 1) ─ run ─ running(1)→finished|failed
 *   dup:     receive ─ finished? nothing to do.  running(1), not yet past its timeout? look
 *            again once it is (a delayed message), never run it twice at once.
 *   died:    the runner's Lambda timed out or crashed mid-run: the message comes back; past
 *            the command's timeout (+ grace) nobody can still be running it, so
 *            running(1)→running(2) and run again; after MAX_COMMAND_ATTEMPTS it fails.
 *   late:    a runner that outlived its attempt finds attempt changed: its result is dropped.
 */
import { type Caller, getLease } from './access.ts';
import type { CommandResult, CommandSpec } from './blueprint.ts';
import { type Engine, newId } from './engine.ts';
import {
  DrydockError,
  errorMessage,
  ForbiddenError,
  NotFoundError,
  ResourceGoneError,
  StateConflictError,
  ValidationError,
} from './errors.ts';
import type { CommandRecord, UpdateMessage } from './model.ts';
import type { TxWrite } from './ports.ts';
import { markSuspect } from './resource-update.ts';

/** The longest command timeout a holder may ask for. */
export const MAX_COMMAND_TIMEOUT_SECONDS = 3600;
/** Runs of one queued command whose runner died before it gives up. */
export const MAX_COMMAND_ATTEMPTS = 3;
/** After a command's timeout, how long before a runner that never reported is presumed dead. */
export const RUNNER_GRACE_SECONDS = 30;
/**
 * Output kept per stream in the command record. A DynamoDB item holds at most 400 KB; the
 * plug-ins may capture more (local-host keeps 1 MiB), the rest is cut and `truncated` set.
 */
export const MAX_STORED_OUTPUT_BYTES = 96 * 1024;

/**
 * Run a command through the lease's command interface. A failure of the resource itself (not a
 * non-zero exit) marks it suspect; a vanished host breaks it and, through it, the lease — with
 * the reason the caller is told here.
 */
export async function runCommand(
  engine: Engine,
  leaseId: string,
  spec: CommandSpec,
  caller: Caller,
  options: { signal?: AbortSignal } = {},
): Promise<CommandResult> {
  if ((spec.argv?.length ? 1 : 0) + (spec.script ? 1 : 0) !== 1) {
    throw new ValidationError('give exactly one of argv (a non-empty list) or script');
  }
  const lease = await getLease(engine, leaseId, caller);
  if (lease.status !== 'active') {
    throw new StateConflictError(
      `lease ${leaseId} is ${lease.status}, not active${lease.endReason ? ` (${lease.endReason})` : ''}; commands run only on active leases`,
      { status: lease.status },
    );
  }
  const resource = await engine.store.getResource(lease.resourceId ?? '');
  if (resource?.status !== 'active') {
    throw new StateConflictError(
      `the resource behind lease ${leaseId} is ${resource?.status ?? 'gone'}${resource?.endReason ? ` (${resource.endReason})` : ''}`,
    );
  }
  const blueprint = await engine.blueprint(resource.blueprintId);
  if (!blueprint) throw new NotFoundError('blueprint', resource.blueprintId);
  const { plugin, bp } = engine.configured(blueprint);
  if (!plugin.command) {
    throw new ValidationError(`blueprint type '${blueprint.type}' offers no command interface`);
  }
  const timeoutSeconds = spec.timeoutSeconds ?? engine.settings.commandTimeoutSeconds;
  const shown = showCommand(spec);
  let result: CommandResult;
  try {
    result = await plugin
      .command(engine.ctx, bp, resource, lease)
      .run({ ...spec, timeoutSeconds }, options);
  } catch (err) {
    await markSuspect(engine, resource, `command failed on it: ${errorMessage(err)}`);
    await engine.store.transact([
      engine.logWrite(
        leaseId,
        'lease.command',
        `command \`${shown}\` could not run: ${errorMessage(err)}`,
      ),
    ]);
    if (err instanceof ResourceGoneError) {
      throw new StateConflictError(
        `${errorMessage(err)}; ${resource.id} is being health-checked and the lease will break if it is gone`,
      );
    }
    throw err;
  }
  await engine.store.transact([
    engine.logWrite(
      leaseId,
      'lease.command',
      result.timedOut
        ? `command \`${shown}\` timed out after ${timeoutSeconds}s and was killed`
        : `command \`${shown}\` exited ${result.exitCode} in ${result.durationMs}ms`,
      { exitCode: result.exitCode, timedOut: result.timedOut, durationMs: result.durationMs },
    ),
  ]);
  return result;
}

/**
 * Queue a command on an active lease of the caller's and return its record (status queued).
 * Only the holder may run commands, not an admin: a command runs with the holder's lease.
 */
export async function startCommand(
  engine: Engine,
  leaseId: string,
  spec: CommandSpec,
  caller: Caller,
): Promise<CommandRecord> {
  const timeoutSeconds = checkCommandSpec(engine, spec);
  const lease = await getLease(engine, leaseId, caller);
  if (lease.owner !== caller.principal) {
    throw new ForbiddenError(
      `only the holder of lease ${leaseId} (${lease.owner}) may run commands on it`,
    );
  }
  if (lease.status !== 'active') {
    throw new StateConflictError(
      `lease ${leaseId} is ${lease.status}, not active${lease.endReason ? ` (${lease.endReason})` : ''}; commands run only on active leases`,
      { status: lease.status },
    );
  }
  const at = engine.iso();
  const command: CommandRecord = {
    id: newId('cmd'),
    leaseId,
    owner: caller.principal,
    status: 'queued',
    ...(spec.argv ? { argv: spec.argv } : { script: spec.script as string }),
    timeoutSeconds,
    ...(spec.cwd === undefined ? {} : { cwd: spec.cwd }),
    ...(spec.env === undefined ? {} : { env: spec.env }),
    attempt: 0,
    createdAt: at,
    updatedAt: at,
  };
  await engine.store.transact([
    { op: 'createCommand', command },
    engine.logWrite(
      leaseId,
      'lease.command',
      `queued command \`${showCommand(spec)}\` (${command.id}, timeout ${timeoutSeconds}s)`,
      { commandId: command.id },
    ),
  ]);
  try {
    await engine.send({ kind: 'command', id: command.id, leaseId, reason: 'started' });
  } catch (err) {
    // Nobody will ever run it: say so on the record rather than leave it queued forever.
    await engine
      .tryTransact([
        failWrite(engine, command, `it could not be queued (${errorMessage(err)}); start it again`),
      ])
      .catch(() => false);
    throw err;
  }
  return command;
}

/** A command of a lease the caller may see (its own, or any for an admin). */
export async function getCommand(
  engine: Engine,
  leaseId: string,
  commandId: string,
  caller: Caller,
): Promise<CommandRecord> {
  await getLease(engine, leaseId, caller);
  const command = await engine.store.getCommand(leaseId, commandId);
  if (!command) throw new NotFoundError('command', commandId);
  return command;
}

/** "Run command C": the worker's half of startCommand. Idempotent (see the timeline above). */
export async function runQueuedCommand(
  engine: Engine,
  msg: UpdateMessage,
  options: { signal?: AbortSignal } = {},
): Promise<{ action: string; detail?: string }> {
  if (!msg.leaseId) return { action: 'ignored', detail: `command ${msg.id} names no lease` };
  const command = await engine.store.getCommand(msg.leaseId, msg.id);
  if (!command) return { action: 'ignored', detail: `command ${msg.id} does not exist` };
  if (command.status === 'finished' || command.status === 'failed') {
    return { action: 'none', detail: `command already ${command.status}` };
  }
  if (command.status === 'running') {
    const presumedDeadAt =
      Date.parse(command.startedAt ?? command.updatedAt) +
      (command.timeoutSeconds + RUNNER_GRACE_SECONDS) * 1000;
    const waitMs = presumedDeadAt - engine.now();
    if (waitMs > 0) {
      // Its runner may still be at it: look again once it cannot be.
      await engine.send({
        kind: 'command',
        id: command.id,
        leaseId: command.leaseId,
        delaySeconds: Math.min(900, Math.ceil(waitMs / 1000)),
        reason: 'check on its runner',
      });
      return { action: 'deferred', detail: `attempt ${command.attempt} may still be running` };
    }
    if (command.attempt >= MAX_COMMAND_ATTEMPTS) {
      const failed = await engine.tryTransact([
        failWrite(
          engine,
          command,
          `its runner stopped ${command.attempt} times without reporting a result (the worker timed out or crashed); not run again`,
        ),
      ]);
      return { action: failed ? 'failed' : 'stale', detail: 'runner died too often' };
    }
  }

  const attempt = command.attempt + 1;
  const started = await engine.tryTransact([
    {
      op: 'updateCommand',
      leaseId: command.leaseId,
      id: command.id,
      expect: { status: command.status, attempt: command.attempt },
      set: { status: 'running', attempt, startedAt: engine.iso() },
    },
  ]);
  if (!started) return { action: 'stale', detail: 'another worker started it' };
  const running: CommandRecord = { ...command, status: 'running', attempt };

  let result: CommandResult;
  try {
    result = await runCommand(
      engine,
      command.leaseId,
      specOf(command),
      { principal: command.owner },
      options,
    );
  } catch (err) {
    const { reason, internal } = holderReason(err, command.id);
    const failed = await engine.tryTransact([failWrite(engine, running, reason)]);
    return {
      action: failed ? 'failed' : 'stale',
      detail: internal ? `${reason} (${errorMessage(err)})` : reason,
    };
  }
  if (options.signal?.aborted) {
    const failed = await engine.tryTransact([
      failWrite(
        engine,
        running,
        'the worker ran out of time before the command finished (its function timeout is shorter than the command); use a shorter command or timeout',
      ),
    ]);
    return { action: failed ? 'failed' : 'stale', detail: 'worker timeout' };
  }
  const finished = await engine.tryTransact([
    {
      op: 'updateCommand',
      leaseId: command.leaseId,
      id: command.id,
      expect: { status: 'running', attempt },
      set: { status: 'finished', finishedAt: engine.iso(), result: capOutput(result), env: null },
    },
  ]);
  return finished
    ? {
        action: 'finished',
        detail: `exit ${result.exitCode}${result.timedOut ? ' (timed out)' : ''}`,
      }
    : { action: 'stale', detail: `attempt ${attempt} was superseded; result dropped` };
}

// ---- helpers --------------------------------------------------------------------------------

/** Every problem with a command spec in one ValidationError; returns the timeout to use. */
function checkCommandSpec(engine: Engine, spec: CommandSpec): number {
  const problems: string[] = [];
  const hasArgv = spec.argv !== undefined;
  const hasScript = spec.script !== undefined;
  if (hasArgv === hasScript) {
    problems.push(`give exactly one of argv or script (got ${hasArgv ? 'both' : 'neither'})`);
  }
  if (hasArgv && (!Array.isArray(spec.argv) || spec.argv.length === 0 || !spec.argv[0])) {
    problems.push('argv must be a non-empty list starting with the program to run');
  }
  if (hasScript && (typeof spec.script !== 'string' || spec.script.trim() === '')) {
    problems.push('script must not be empty');
  }
  const timeoutSeconds = spec.timeoutSeconds ?? engine.settings.commandTimeoutSeconds;
  if (
    !Number.isInteger(timeoutSeconds) ||
    timeoutSeconds < 1 ||
    timeoutSeconds > MAX_COMMAND_TIMEOUT_SECONDS
  ) {
    problems.push(
      `timeoutSeconds must be a whole number from 1 to ${MAX_COMMAND_TIMEOUT_SECONDS}, got ${spec.timeoutSeconds}`,
    );
  }
  if (problems.length > 0) throw new ValidationError(`invalid command: ${problems.join('; ')}`);
  return timeoutSeconds;
}

function specOf(command: CommandRecord): CommandSpec {
  return {
    ...(command.argv ? { argv: command.argv } : { script: command.script }),
    timeoutSeconds: command.timeoutSeconds,
    ...(command.cwd === undefined ? {} : { cwd: command.cwd }),
    ...(command.env === undefined ? {} : { env: command.env }),
  };
}

function showCommand(spec: CommandSpec): string {
  return spec.argv ? spec.argv.join(' ') : (spec.script ?? '');
}

/** Codes whose messages are written for callers; anything else is an internal failure. */
const HOLDER_READABLE = new Set([
  'invalid_request',
  'not_found',
  'forbidden',
  'conflict',
  'resource_gone',
  'temporary',
]);

/** What the holder reads when the command could not run; internals stay in the worker's log. */
function holderReason(err: unknown, commandId: string): { reason: string; internal: boolean } {
  if (err instanceof DrydockError && HOLDER_READABLE.has(err.code)) {
    return { reason: err.message, internal: false };
  }
  if (err instanceof DrydockError && err.code !== 'store_failure' && err.code !== 'queue_failure') {
    // A plug-in's own failure (its messages describe the host, e.g. "could not reach i-0abc").
    return { reason: `it could not run: ${err.message}`, internal: false };
  }
  return {
    reason: `internal error while running it; start it again (reference ${commandId})`,
    internal: true,
  };
}

function failWrite(engine: Engine, command: CommandRecord, error: string): TxWrite {
  return {
    op: 'updateCommand',
    leaseId: command.leaseId,
    id: command.id,
    expect: { status: command.status, attempt: command.attempt },
    set: { status: 'failed', finishedAt: engine.iso(), error, env: null },
  };
}

function capOutput(result: CommandResult): CommandResult {
  const cut = (text: string): { text: string; cut: boolean } => {
    const bytes = Buffer.from(text, 'utf8');
    if (bytes.length <= MAX_STORED_OUTPUT_BYTES) return { text, cut: false };
    // A multi-byte character split at the limit decodes as U+FFFD; drop it.
    const kept = bytes
      .subarray(0, MAX_STORED_OUTPUT_BYTES)
      .toString('utf8')
      .replace(/\uFFFD$/, '');
    return { text: kept, cut: true };
  };
  const stdout = cut(result.stdout);
  const stderr = cut(result.stderr);
  const truncated = Boolean(result.truncated) || stdout.cut || stderr.cut;
  return {
    ...result,
    stdout: stdout.text,
    stderr: stderr.text,
    ...(truncated ? { truncated: true } : {}),
  };
}
