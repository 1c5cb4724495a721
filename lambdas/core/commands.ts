/**
 * The command interface of a lease, as its holder uses it (DESIGN §2): start a command, read it
 * (with its output from an offset) while it runs, cancel it. Nothing here waits on a host: the
 * API records the request and the workers (command-runner.ts) start, poll and finish it.
 */
import { type Caller, describeCaller, getLease } from './access.ts';
import { type ReadCommandOutput, readOutput } from './command-output.ts';
import { parseCommandSpec, shownCommand } from './command-spec.ts';
import { type Engine, newId } from './engine.ts';
import { errorMessage, ForbiddenError, NotFoundError, StateConflictError } from './errors.ts';
import { notActiveReason } from './lease-host.ts';
import {
  type CommandRecord,
  type CommandSpec,
  ENDED_COMMAND_STATUSES,
  type Lease,
} from './model.ts';

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
  const parsed = parseCommandSpec(spec, engine.settings.commandTimeoutSeconds);
  const lease = await getLease(engine, leaseId, caller);
  if (lease.owner !== caller.principal) {
    throw new ForbiddenError(
      `only the holder of lease ${leaseId} (${lease.owner}) may run commands on it`,
    );
  }
  requireActive(lease);
  const at = engine.iso();
  const command: CommandRecord = {
    id: newId('cmd'),
    leaseId,
    owner: caller.principal,
    status: 'queued',
    ...(parsed.kind === 'argv' ? { argv: parsed.argv } : { script: parsed.script }),
    timeoutSeconds: parsed.timeoutSeconds,
    ...(parsed.cwd === undefined ? {} : { cwd: parsed.cwd }),
    ...(parsed.env === undefined ? {} : { env: parsed.env }),
    attempt: 0,
    polls: 0,
    createdAt: at,
    updatedAt: at,
    // A lost first message is re-driven by the sweep after this.
    sweepAt: engine.iso(engine.settings.commandStrandSeconds * 1000),
  };
  await engine.store.transact([
    { op: 'createCommand', command },
    engine.logWrite(
      leaseId,
      'lease.command-queued',
      `queued command \`${shownCommand(parsed.text)}\` (${command.id}, timeout ${parsed.timeoutSeconds}s)`,
      { commandId: command.id },
    ),
  ]);
  try {
    await engine.send({ kind: 'command', id: command.id, leaseId, reason: 'started' });
  } catch (err) {
    // Nobody would start it before the sweep: say so on the record rather than leave it queued.
    await engine
      .tryTransact([
        {
          op: 'updateCommand',
          leaseId,
          id: command.id,
          expect: { status: 'queued', attempt: 0 },
          set: {
            status: 'failed',
            finishedAt: engine.iso(),
            error: `it could not be queued (${errorMessage(err)}); start it again`,
            env: null,
            sweepAt: null,
          },
        },
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

/** A command with its output after the given byte offsets (one read; the CLI streams with it). */
export async function readCommand(
  engine: Engine,
  leaseId: string,
  commandId: string,
  caller: Caller,
  from: { stdout?: number; stderr?: number } = {},
): Promise<{ command: CommandRecord; output: ReadCommandOutput }> {
  const command = await getCommand(engine, leaseId, commandId, caller);
  return { command, output: readOutput(command, from) };
}

/**
 * Ask for a command to be stopped. The record moves to `cancelling` and a worker kills it on its
 * host and records `cancelled` (within about a second: the message is sent without delay).
 * Idempotent: cancelling an ended command returns it unchanged. Holder or admin.
 */
export async function cancelCommand(
  engine: Engine,
  leaseId: string,
  commandId: string,
  caller: Caller,
): Promise<CommandRecord> {
  await getLease(engine, leaseId, caller); // who may see it: checked once, not per retry
  for (let attempt = 0; attempt < 5; attempt++) {
    const command = await engine.store.getCommand(leaseId, commandId);
    if (!command) throw new NotFoundError('command', commandId);
    if (ENDED_COMMAND_STATUSES.includes(command.status) || command.status === 'cancelling') {
      return command;
    }
    const at = engine.iso();
    const set = {
      status: 'cancelling' as const,
      cancelRequestedAt: at,
      sweepAt: engine.iso(engine.settings.commandStrandSeconds * 1000),
    };
    const moved = await engine.tryTransact([
      {
        op: 'updateCommand',
        leaseId,
        id: commandId,
        expect: { status: command.status, attempt: command.attempt },
        set,
      },
      engine.logWrite(
        leaseId,
        'lease.command-cancelling',
        `cancel of command ${commandId} requested by ${describeCaller(caller)}`,
        { commandId },
      ),
    ]);
    if (!moved) continue; // a worker moved it on meanwhile: look again
    await engine.send({ kind: 'command', id: commandId, leaseId, reason: 'cancel requested' });
    return { ...command, ...set, updatedAt: at };
  }
  throw new StateConflictError(
    `command ${commandId} kept changing while it was being cancelled; try again`,
  );
}

function requireActive(lease: Lease): void {
  if (lease.status !== 'active') {
    throw new StateConflictError(notActiveReason(lease), { status: lease.status });
  }
}
