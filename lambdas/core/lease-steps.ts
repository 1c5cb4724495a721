/**
 * Step-based lease activation and cleanup (a working copy's `git fetch`, `git clean`): work on a
 * host that takes longer than a quick look. No worker waits on it: the plug-in starts commands
 * with deterministic ids, returns a pending LeaseStep, and the engine records the step on the
 * lease and re-enqueues the lease's update, exactly like resource setup (advanceResourceSetup).
 *
 * The timeline (activation; cleanup is the same with `released|broken` for `acquired`):
 *
 *   worker:  plugin.activateLease(lease v5) ─ starts `git fetch` (id <lease>-<attempt>-checkout-fetch0)
 *            ─ pending{data, message, log} ─ acquired v5→v6: data, stepMessage, sweepAt, log lines
 *            ─ send "lease L" (delay checkAgainSeconds)
 *   worker:  plugin.activateLease(lease v6, data) ─ polls the fetch: still running ─ pending
 *            ─ acquired v6→v7 ... until the plug-in says done:
 *   worker:  acquired→active (lease-update.ts, activateLease) with the last step's data and log.
 *   dup:     two deliveries of the same step both call the plug-in (a start with the same id
 *            finds the first one's command, a poll only reads), and only one wins the
 *            (status, version) condition; the loser sends nothing, so the chain never doubles.
 *   crash:   after the step, before the write: redelivery (or the sweep, at sweepAt) calls the
 *            plug-in again with the old data; the deterministic command ids find what it started.
 *   cleanup: a released lease whose cleanup is pending keeps its slot locks and stays attached
 *            to its resource, so nobody else gets the resource until the cleanup said done.
 *   requeue: a lease sent back to pending (its resource died) drops its data: steps taken on
 *            the dead resource mean nothing on the next one.
 */
import type { LeaseStep } from './blueprint.ts';
import type { Engine } from './engine.ts';
import type { Lease } from './model.ts';
import type { TxWrite } from './ports.ts';

/** The longest delay between two steps (an SQS delay caps at 15 minutes). */
const MAX_STEP_DELAY_SECONDS = 900;

/** A plug-in's answer as a LeaseStep: `void` is the old meaning, done at once. */
// biome-ignore lint/suspicious/noConfusingVoidType: what activateLease/releaseLease may return (Promise<void> from older plug-ins).
export function asLeaseStep(answer: void | LeaseStep): LeaseStep {
  return answer ?? { state: 'done' };
}

/** The lease's data after a step: the plug-in's keys over the old ones. */
export function mergedLeaseData(lease: Lease, step: LeaseStep): Record<string, unknown> {
  return { ...lease.data, ...step.data };
}

/**
 * The log lines of a step (each finished command with its duration), then `last` (the line of
 * the transition the step ends in), as writes. Written in one transaction they share a
 * timestamp, and a seq is `<at>#<random>`: an index after the `#` keeps them in order.
 */
export function stepLogWrites(
  engine: Engine,
  lease: Lease,
  step: LeaseStep,
  last?: TxWrite,
): TxWrite[] {
  const events = (step.log ?? []).map((line) => engine.log(lease.id, 'lease.step', line));
  if (last?.op === 'appendLog') events.push(last.event);
  if (events.length < 2) return events.map((event) => ({ op: 'appendLog', event }));
  return events.map((event, i) => {
    const [at, random] = event.seq.split('#');
    const seq = `${at}#${i.toString(36).padStart(2, '0')}${random}`;
    return { op: 'appendLog', event: { ...event, at: at ?? event.at, seq } };
  });
}

/**
 * Record a pending step on the lease and re-enqueue its update. False if another update changed
 * the lease meanwhile (that update continues the chain; this one sends nothing).
 */
export async function recordPendingStep(
  engine: Engine,
  lease: Lease,
  step: LeaseStep & { state: 'pending' },
): Promise<boolean> {
  const delay = Math.max(1, Math.min(MAX_STEP_DELAY_SECONDS, Math.ceil(step.checkAgainSeconds)));
  const writes: TxWrite[] = [
    {
      op: 'updateLease',
      id: lease.id,
      type: lease.type,
      expect: { status: lease.status, version: lease.version },
      set: {
        data: mergedLeaseData(lease, step),
        stepMessage: step.message,
        // A lost message is re-driven by the sweep once the step is overdue.
        sweepAt: engine.iso((delay + engine.settings.strandAfterSeconds) * 1000),
      },
    },
    // The message only when it changed: the log reads as a story, not a heartbeat.
    ...stepLogWrites(
      engine,
      lease,
      step,
      step.message === lease.stepMessage
        ? undefined
        : engine.logWrite(lease.id, 'lease.step', step.message),
    ),
  ];
  if (!(await engine.tryTransact(writes))) return false;
  await engine.send({ kind: 'lease', id: lease.id, delaySeconds: delay, reason: 'lease step' });
  return true;
}
