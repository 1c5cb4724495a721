/**
 * Run a command on a lease to its end the way the workers do (start, then poll steps), for
 * engine tests that only care about the outcome. Real plug-ins run real processes, so between
 * steps it waits real time, bounded by a deadline.
 */
import type { Caller } from '../../lambdas/core/access.ts';
import { advanceCommand } from '../../lambdas/core/command-runner.ts';
import { startCommand } from '../../lambdas/core/commands.ts';
import type { Engine } from '../../lambdas/core/engine.ts';
import type { CommandRecord, CommandResult, CommandSpec } from '../../lambdas/core/model.ts';

export async function runCommandToEnd(
  engine: Engine,
  leaseId: string,
  spec: CommandSpec,
  caller: Caller,
  options: { deadlineMs?: number; intervalMs?: number } = {},
): Promise<CommandResult> {
  const ended = await commandToEnd(
    engine,
    await startCommand(engine, leaseId, spec, caller),
    options,
  );
  if (ended.status !== 'finished' || !ended.result) {
    throw new Error(ended.error ?? `command ${ended.id} ended ${ended.status}`);
  }
  return ended.result;
}

/** Step a started command until it ends (any end); returns the final record. */
export async function commandToEnd(
  engine: Engine,
  command: CommandRecord,
  { deadlineMs = 60_000, intervalMs = 25 }: { deadlineMs?: number; intervalMs?: number } = {},
): Promise<CommandRecord> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    await advanceCommand(engine, { kind: 'command', id: command.id, leaseId: command.leaseId });
    const now = await engine.store.getCommand(command.leaseId, command.id);
    if (!now) throw new Error(`command ${command.id} disappeared`);
    if (now.status === 'finished' || now.status === 'failed' || now.status === 'cancelled') {
      return now;
    }
    if (Date.now() > deadline) {
      throw new Error(`command ${command.id} still ${now.status} after ${deadlineMs}ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
