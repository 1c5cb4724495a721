/**
 * The workers' half of a command (DESIGN §2): start it on its host, then poll it until it ends.
 * No worker ever waits on a host: each "command C" message does one quick step and, while the
 * command runs, re-enqueues itself with a delay (short at first, then backing off), exactly like
 * a waiting lease. The plug-in's handle is on the record, so any worker can take the next step
 * after a crash or a redeploy, and the sweep re-drives a command whose message was lost.
 *
 * The timeline, and why each write is conditional:
 *
 *   API:      create(queued, attempt 0, polls 0) ─ send "command C"
 *   worker:   start on host (idempotent by command id) ─ queued(0)→running(1) + handle
 *             ─ send "command C" (waitSeq 0, delay 1 s)
 *   worker:   poll from the recorded offsets ─ running(polls n)→running(polls n+1) + output
 *             ─ send "command C" (waitSeq n+1, delay)          ... until the poll says finished:
 *   worker:   running(polls n)→finished + result, output tail, env removed
 *   dup:      a second poll of the same step loses the (status, attempt, polls) condition and
 *             sends nothing, so duplicate deliveries never multiply the chain; a message whose
 *             waitSeq is behind the record belongs to a superseded chain and is dropped.
 *   crashed:  after start, before the write: redelivery starts again, and the plug-in returns
 *             the same handle (the command runs once). After a worker stopped it itself (its
 *             lease ended, its timeout passed), before the write: the host says "cancelled",
 *             but only a cancel on the record (cancelling) is the holder's, so the redelivery
 *             records why the worker stopped it.
 *   cancel:   API: running→cancelling ─ send "command C" (no waitSeq: a wake-up)
 *             worker: cancel on host ─ poll ─ cancelling→cancelled once the host says it ended.
 *   timeout:  the plug-in kills it at its timeout; if it never reports, the engine cancels it
 *             COMMAND_KILL_GRACE_SECONDS later and records it as timed out.
 */
import type { CommandHandle, CommandInterface, CommandProgress } from './blueprint.ts';
import { appendOutput, extentsOnly, recordedOffsets } from './command-output.ts';
import { parsedOfRecord, shownCommand } from './command-spec.ts';
import type { Engine } from './engine.ts';
import { DrydockError, errorMessage, ResourceGoneError, TemporaryError } from './errors.ts';
import { type LeaseHost, leaseHost } from './lease-host.ts';
import {
  type CommandRecord,
  type CommandResult,
  ENDED_COMMAND_STATUSES,
  type UpdateMessage,
} from './model.ts';
import type { CommandOutcome } from './outcomes.ts';
import type { CommandPatch, NullablePatch, TxWrite } from './ports.ts';
import { markSuspect } from './resource-end.ts';

/** Past its timeout plus this, the engine stops a command the plug-in did not report ended. */
const COMMAND_KILL_GRACE_SECONDS = 10;
/** Poll delays: every second at first (output streams), backing off to this cap. */
const COMMAND_POLL_CAP_SECONDS = 10;

/** One step of a command: start it, poll it, cancel it, or record how it ended. Idempotent. */
export async function advanceCommand(engine: Engine, msg: UpdateMessage): Promise<CommandOutcome> {
  if (!msg.leaseId) return { action: 'ignored', detail: `command ${msg.id} names no lease` };
  // Both reads in one round trip: the message names the lease, and every step needs it.
  const [command, lease] = await Promise.all([
    engine.store.getCommand(msg.leaseId, msg.id),
    engine.store.getLease(msg.leaseId),
  ]);
  if (!command) return { action: 'ignored', detail: `command ${msg.id} does not exist` };
  if (ENDED_COMMAND_STATUSES.includes(command.status)) {
    return { action: 'none', detail: `command already ${command.status}` };
  }
  if (msg.waitSeq !== undefined && msg.waitSeq !== (command.polls ?? 0)) {
    return { action: 'stale', detail: `poll ${msg.waitSeq} superseded by ${command.polls}` };
  }

  if (command.status === 'cancelling' && !command.handle) {
    // Cancelled before any worker recorded a start: nothing of it runs that we know of (a start
    // racing this cancel stops what it started itself: see startOnHost).
    const done = await engine.tryTransact([
      endWrite(engine, command, { status: 'cancelled', error: 'cancelled before it started' }),
      engine.logWrite(
        command.leaseId,
        'lease.command',
        `command \`${shownCommand(parsedOfRecord(command).text)}\` was cancelled before it started`,
        { commandId: command.id },
      ),
    ]);
    return { action: done ? 'cancelled' : 'stale', detail: 'cancelled before it started' };
  }

  const host: LeaseHost = lease
    ? await leaseHost(engine, lease)
    : { ok: false, reason: `lease ${command.leaseId} no longer exists` };
  if (!host.ok) return endWithoutHost(engine, command, host);
  try {
    if (command.status === 'queued') return await startOnHost(engine, command, host.iface);
    return await pollOnHost(engine, command, host.iface);
  } catch (err) {
    // A poll that may work next time: SQS redelivers this message.
    if (err instanceof TemporaryError) throw err;
    // The host is suspect unless the holder's own request was at fault (a cwd that escapes).
    if (!(err instanceof DrydockError && HOLDER_READABLE.has(err.code))) {
      await markSuspect(engine, host.resource, `command failed on it: ${errorMessage(err)}`);
    }
    const reason =
      err instanceof ResourceGoneError
        ? `${errorMessage(err)}; ${host.resource.id} is being health-checked and the lease will break if it is gone`
        : holderReason(err, command.id);
    const failed = await engine.tryTransact([
      endWrite(engine, command, { status: 'failed', error: reason }),
      engine.logWrite(
        command.leaseId,
        'lease.command',
        `command \`${shownCommand(parsedOfRecord(command).text)}\` could not run: ${reason}`,
        { commandId: command.id },
      ),
    ]);
    return { action: failed ? 'failed' : 'stale', detail: reason };
  }
}

// ---- steps ----------------------------------------------------------------------------------

async function startOnHost(
  engine: Engine,
  command: CommandRecord,
  iface: CommandInterface,
): Promise<CommandOutcome> {
  const parsed = parsedOfRecord(command);
  const handle = await iface.start(command.id, parsed);
  const started = await engine.tryTransact([
    {
      op: 'updateCommand',
      leaseId: command.leaseId,
      id: command.id,
      expect: { status: 'queued', attempt: 0, polls: command.polls ?? 0 },
      set: {
        status: 'running',
        attempt: 1,
        handle,
        startedAt: engine.iso(),
        sweepAt: engine.iso((1 + engine.settings.commandStrandSeconds) * 1000),
      },
    },
  ]);
  if (!started) {
    const now = await engine.store.getCommand(command.leaseId, command.id);
    if (now && !now.handle && (now.status === 'cancelling' || now.status === 'cancelled')) {
      // Cancelled while we started it: nobody else knows the handle, so stop it here.
      await iface.cancel(handle);
      return { action: 'cancelled', detail: 'cancelled while it was being started' };
    }
    // Lost to another worker that started the same command (the plug-in ran it once).
    return { action: 'stale', detail: 'another worker started it' };
  }
  await nextPoll(engine, command, command.polls ?? 0, 1);
  return { action: 'started', detail: `started \`${shownCommand(parsed.text)}\`` };
}

async function pollOnHost(
  engine: Engine,
  command: CommandRecord,
  iface: CommandInterface,
): Promise<CommandOutcome> {
  const handle = command.handle as CommandHandle;
  if (command.status === 'cancelling') await iface.cancel(handle);
  let progress: CommandProgress = await iface.poll(handle, recordedOffsets(command));
  const startedMs = Date.parse(command.startedAt ?? command.createdAt);
  const overdueAt = startedMs + (command.timeoutSeconds + COMMAND_KILL_GRACE_SECONDS) * 1000;
  let engineTimedOut = false;
  if (progress.state === 'running' && engine.now() >= overdueAt) {
    // The plug-in did not stop it at its timeout: the engine does, and says so.
    await iface.cancel(handle);
    engineTimedOut = true;
    progress = {
      ...progress,
      state: 'finished',
      exitCode: null,
      timedOut: true,
      durationMs: engine.now() - startedMs,
    };
  } else if (
    progress.state === 'finished' &&
    stoppedByAWorker(command, progress) &&
    engine.now() >= overdueAt
  ) {
    // A worker stopped it at its timeout (above) and crashed before recording it: the host says
    // "cancelled", but the holder never asked. It is recorded as the timeout it was.
    engineTimedOut = true;
    progress = { ...progress, exitCode: null, timedOut: true };
  }
  const polls = (command.polls ?? 0) + 1;
  const output = appendOutput(command, progress);
  const expect = { status: command.status, attempt: command.attempt, polls: command.polls ?? 0 };

  if (progress.state === 'running') {
    const delay = pollDelaySeconds(engine.now() - startedMs);
    const polled = await engine.tryTransact([
      {
        op: 'updateCommand',
        leaseId: command.leaseId,
        id: command.id,
        expect,
        set: {
          polls,
          output,
          sweepAt: engine.iso((delay + engine.settings.commandStrandSeconds) * 1000),
        },
      },
    ]);
    if (!polled) return { action: 'stale', detail: 'another worker polled it meanwhile' };
    await nextPoll(engine, command, polls, delay);
    return { action: 'polled', detail: `running; next look in ${delay}s` };
  }

  return recordEnd(engine, command, progress, { polls, output, engineTimedOut });
}

/** Record how a command ended, with its output tail and a log line for the holder. */
async function recordEnd(
  engine: Engine,
  command: CommandRecord,
  progress: Extract<CommandProgress, { state: 'finished' }>,
  seen: { polls: number; output: ReturnType<typeof appendOutput>; engineTimedOut?: boolean },
): Promise<CommandOutcome> {
  const { polls, output } = seen;
  const cancelled = cancelledByHolder(command, progress) && !seen.engineTimedOut;
  const result: CommandResult = {
    exitCode: progress.exitCode,
    stdout: output.stdout.text,
    stderr: output.stderr.text,
    timedOut: progress.timedOut,
    durationMs: progress.durationMs,
    ...(progress.truncated || output.stdout.start > 0 || output.stderr.start > 0
      ? { truncated: true }
      : {}),
  };
  const ended = await engine.tryTransact([
    endWrite(engine, command, {
      status: cancelled ? 'cancelled' : 'finished',
      polls,
      output: extentsOnly(output),
      result,
      ...(cancelled ? { error: 'cancelled by its holder' } : {}),
    }),
    engine.logWrite(command.leaseId, 'lease.command', endSentence(command, result, cancelled), {
      commandId: command.id,
      exitCode: result.exitCode,
      timedOut: result.timedOut,
      durationMs: result.durationMs,
      ...(cancelled ? { cancelled: true } : {}),
    }),
  ]);
  if (!ended) return { action: 'stale', detail: 'another worker recorded its end' };
  return cancelled
    ? { action: 'cancelled', detail: `cancelled after ${result.durationMs}ms` }
    : {
        action: 'finished',
        detail: `exit ${result.exitCode}${result.timedOut ? ' (timed out)' : ''}`,
      };
}

/**
 * The lease or its resource is not active any more (or never was). A command that already
 * ended on its host is recorded as it ended (released right after it finished, say); one that
 * still runs is stopped, and the record says why.
 */
async function endWithoutHost(
  engine: Engine,
  command: CommandRecord,
  ended: { reason: string; iface?: CommandInterface | undefined },
): Promise<CommandOutcome> {
  if (command.handle && ended.iface) {
    const progress = await ended.iface
      .poll(command.handle, recordedOffsets(command))
      .catch(() => undefined);
    // Stopped by this very step before a crash (not by the holder): recorded below, with why.
    if (progress?.state === 'finished' && !stoppedByAWorker(command, progress)) {
      return recordEnd(engine, command, progress, {
        polls: (command.polls ?? 0) + 1,
        output: appendOutput(command, progress),
      });
    }
    await ended.iface.cancel(command.handle).catch(() => undefined);
  }
  const status = command.status === 'queued' ? 'failed' : 'cancelled';
  const done = await engine.tryTransact([
    endWrite(engine, command, { status, error: ended.reason }),
    engine.logWrite(
      command.leaseId,
      'lease.command',
      `command \`${shownCommand(parsedOfRecord(command).text)}\` ${status === 'failed' ? 'could not run' : 'was stopped'}: ${ended.reason}`,
      { commandId: command.id },
    ),
  ]);
  return { action: done ? status : 'stale', detail: ended.reason };
}

// ---- helpers --------------------------------------------------------------------------------

/**
 * Whether the holder stopped it. The host says only that *someone* cancelled it; the holder's
 * cancel is on the record (status cancelling) before any worker stops it on the host.
 */
function cancelledByHolder(command: CommandRecord, progress: CommandProgress): boolean {
  return (
    progress.state === 'finished' && Boolean(progress.cancelled) && command.status === 'cancelling'
  );
}

/**
 * Cancelled on the host, but not by the holder: a worker stopped it itself (its lease ended, its
 * timeout passed) and crashed before recording why. The redelivery must not blame the holder.
 */
function stoppedByAWorker(command: CommandRecord, progress: CommandProgress): boolean {
  return (
    progress.state === 'finished' &&
    Boolean(progress.cancelled) &&
    !cancelledByHolder(command, progress)
  );
}

/** Every second for the first 20 s (output streams), then one more second per 10 s, capped. */
function pollDelaySeconds(elapsedMs: number): number {
  return Math.min(COMMAND_POLL_CAP_SECONDS, Math.max(1, Math.floor(elapsedMs / 10_000)));
}

async function nextPoll(
  engine: Engine,
  command: CommandRecord,
  polls: number,
  delaySeconds: number,
): Promise<void> {
  await engine.send({
    kind: 'command',
    id: command.id,
    leaseId: command.leaseId,
    waitSeq: polls,
    delaySeconds,
    reason: 'poll',
  });
}

/** The write that ends a command: conditional on the step it read; secrets and index dropped. */
function endWrite(
  engine: Engine,
  command: CommandRecord,
  set: NullablePatch<CommandPatch> & { status: 'finished' | 'failed' | 'cancelled' },
): TxWrite {
  return {
    op: 'updateCommand',
    leaseId: command.leaseId,
    id: command.id,
    expect: { status: command.status, attempt: command.attempt, polls: command.polls ?? 0 },
    set: { ...set, finishedAt: engine.iso(), env: null, sweepAt: null },
  };
}

function endSentence(command: CommandRecord, result: CommandResult, cancelled: boolean): string {
  const shown = shownCommand(parsedOfRecord(command).text);
  if (cancelled) return `command \`${shown}\` was cancelled after ${result.durationMs}ms`;
  if (result.timedOut) {
    return `command \`${shown}\` timed out after ${command.timeoutSeconds}s and was killed`;
  }
  return `command \`${shown}\` exited ${result.exitCode} in ${result.durationMs}ms`;
}

/** Codes whose messages are written for callers; anything else is an internal failure. */
const HOLDER_READABLE = new Set(['invalid_request', 'not_found', 'forbidden', 'conflict']);

/** What the holder reads when the command could not run; internals stay in the worker's log. */
function holderReason(err: unknown, commandId: string): string {
  if (err instanceof DrydockError && HOLDER_READABLE.has(err.code)) return err.message;
  if (err instanceof DrydockError && err.code !== 'store_failure' && err.code !== 'queue_failure') {
    // A plug-in's own failure (its messages describe the host, e.g. "could not reach i-0abc").
    return `it could not run: ${err.message}`;
  }
  return `internal error while running it; start it again (reference ${commandId})`;
}
