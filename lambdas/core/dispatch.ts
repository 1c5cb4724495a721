/**
 * The work queue's one entry point into the core: an update message goes to the writer of the
 * object it names (lease, resource or command), or to the blueprint's warm pool top-up.
 */
import { advanceCommand } from './command-runner.ts';
import type { Engine } from './engine.ts';
import { updateLease } from './lease-update.ts';
import { METRIC } from './metrics.ts';
import type { UpdateMessage } from './model.ts';
import { type DispatchOutcome, outcomeSteps } from './outcomes.ts';
import { updateResource } from './resource-update.ts';
import { topUpWarmPool } from './warm-pool.ts';

/**
 * Process one queued update message. Every kind takes one short step (a command is started or
 * polled, never waited on), so no step needs the worker's deadline.
 */
export async function processUpdate(engine: Engine, msg: UpdateMessage): Promise<DispatchOutcome> {
  const done = await route(engine, msg);
  // Updates by how they ended (acquired, waited, stale ...): wasted work shows up here.
  const last = outcomeSteps(done.outcome).at(-1)?.action ?? 'none';
  engine.metrics.count(METRIC.workerUpdates, { kind: msg.kind, outcome: last });
  return done;
}

async function route(engine: Engine, msg: UpdateMessage): Promise<DispatchOutcome> {
  switch (msg.kind) {
    case 'lease':
      return { kind: 'lease', outcome: await updateLease(engine, msg) };
    case 'resource':
      return { kind: 'resource', outcome: await updateResource(engine, msg) };
    case 'command':
      return { kind: 'command', outcome: await advanceCommand(engine, msg) };
    case 'blueprint':
      return { kind: 'blueprint', outcome: await topUpWarmPool(engine, msg) };
  }
}
