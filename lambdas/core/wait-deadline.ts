/**
 * A lease's deadline for becoming active (`waitTimeoutSeconds`, counted from its request), so
 * an API caller gets a clear end instead of an endless wait. Nothing sleeps on it: the wait
 * chain's next message is never delayed past the deadline, the lease's sweepAt is never later
 * than it (the sweep re-drives a lease whose message was lost), and the lease's own update
 * breaks it once it has passed, with the last thing it waited for.
 */
import type { Engine } from './engine.ts';
import type { Lease } from './model.ts';

/** Longest wait a lease may ask for: its TTL bound (7 days) is plenty for a queue too. */
export const MAX_WAIT_TIMEOUT_SECONDS = 7 * 24 * 3600;

/** When the lease must be active by (epoch ms), or undefined if it waits as long as it takes. */
export function waitDeadlineMs(lease: Lease): number | undefined {
  return lease.waitTimeoutSeconds === undefined
    ? undefined
    : Date.parse(lease.requestedAt) + lease.waitTimeoutSeconds * 1000;
}

export function pastWaitDeadline(engine: Engine, lease: Lease): boolean {
  const deadline = waitDeadlineMs(lease);
  return deadline !== undefined && engine.now() >= deadline;
}

/** The reason a lease past its deadline breaks with: what it was last waiting for. */
export function waitDeadlineReason(lease: Lease): string {
  const last =
    lease.status === 'acquired'
      ? `acquired on ${lease.resourceId ?? 'a resource'}, which is still being set up`
      : (lease.waitReason ?? 'still queued for allocation');
  return `not active after ${lease.waitTimeoutSeconds}s: ${last}`;
}

/** A wait chain's delay, cut so the next look comes no later than the deadline. */
export function delayWithinDeadline(engine: Engine, lease: Lease, delaySeconds: number): number {
  const deadline = waitDeadlineMs(lease);
  if (deadline === undefined) return delaySeconds;
  return Math.max(1, Math.min(delaySeconds, Math.ceil((deadline - engine.now()) / 1000)));
}

/** sweepAt for a waiting lease: the stranded-state bound, or the deadline if that is sooner. */
export function sweepAtWithinDeadline(engine: Engine, lease: Lease): string {
  const strand = engine.now() + engine.settings.strandAfterSeconds * 1000;
  const deadline = waitDeadlineMs(lease);
  return new Date(deadline === undefined ? strand : Math.min(strand, deadline)).toISOString();
}
