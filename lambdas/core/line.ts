/**
 * Joining the line at request time (issue 14): a new lease that can only wait does not get a
 * first attempt that is bound to find the pool full (a wasted worker update: a query of the
 * pool, maybe a lost race, a wait write) or, worse, that jumps the line by racing the oldest
 * waiter for a slot that was just freed for it. It is written as waiting instead, and the
 * wake-ups (wake.ts) serve it in its turn, oldest request first.
 *
 * It joins when one Query of the oldest pending leases of its type shows either
 *  - an older lease that wants exactly what this one wants (same attributes, blueprints and
 *    working copy) waiting for a slot (`waitingFor` `slot`: its last attempt found the pool
 *    full or lost a race, so a freed slot wakes it; or `line`: it joined the line the same
 *    way). Anything else it waits for (a breaker, a plug-in's refusal, a failure) is not a
 *    line: nothing wakes it, so the new lease gets its own first attempt; or
 *  - at least as many older leases wanting exactly this as every blueprint that could serve it
 *    has lease slots in all (maxResources × leasesPerResource). Even an empty pool goes to those
 *    first, so this lease's attempt would find it full. This is the case of a burst, where no
 *    lease has waited yet when the others are requested.
 * Otherwise (no line, leases that want something else, an unknown or larger pool) the lease
 * gets its first attempt as before.
 *
 * In line, the lease's wait chain's safety-net message does not attempt either while an older
 * lease wanting the same still waits (waitingAhead, called by the lease update): only the front
 * of the line attempts from its chain, which is what recovers a lost wake-up.
 *
 * The line may be stale (the index is eventually consistent; an older lease may give up or
 * break without taking a slot). That never loses a lease: it has the wait chain's message at
 * the backoff cap, like any wait on a full pool, and the sweep behind that. It costs time only
 * when a slot is free that no release will wake anyone for, the same risk an older waiter runs.
 *
 * Calls: one Query (and a COUNT only when the line is longer than the page), one wait write
 * with its log line, and one delayed message; against a worker update that reads the pool,
 * maybe loses a race, counts the line, writes the wait and sends the same delayed message.
 * A request that finds no line lets the next ones skip the Query for a while
 * (Engine.noLineUntil): a pool that serves every lease at once pays for lines almost nothing.
 */
import { cannotEverServe } from './eligibility.ts';
import type { Engine } from './engine.ts';
import { WriteConflictError } from './errors.ts';
import type { Lease, WaitingFor } from './model.ts';
import type { TxWrite } from './ports.ts';
import { delayWithinDeadline, sweepAtWithinDeadline } from './wait-deadline.ts';
import { describeWaiting, type WaitCause, waitOn } from './wait-reasons.ts';

/**
 * Pending leases one request looks at (one query page, oldest first). Large, so the place in
 * line is counted from the page itself: a COUNT query reads the same items (the same capacity)
 * in a second call, so it is left for lines longer than this.
 */
export const LINE_SCAN = 500;

/** A backoff attempt deep enough to be the cap (as a wait on a full pool, allocator.ts). */
export const AT_THE_CAP = 20;

export interface PlaceInLine {
  /** Pending leases of the type requested before this one. */
  ahead: number;
  cause: Extract<WaitCause, { kind: 'in-line' }>;
}

/** What decides whether two leases compete for exactly the same slots. */
function wants(lease: Lease): string {
  const sorted = (o: object) => Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([
    lease.type,
    sorted(lease.attributes),
    [...(lease.blueprintIds ?? [])].sort(),
    lease.workingCopy ?? null,
  ]);
}

/** Older by the order the line is served in (the type index's sort key: request time, id). */
function olderThan(a: Lease, b: Lease): boolean {
  return `${a.requestedAt}#${a.id}` < `${b.requestedAt}#${b.id}`;
}

/**
 * Lease slots of every blueprint that could serve the lease, or undefined if none could (the
 * first attempt then breaks it with the reason).
 */
async function slotsFor(
  engine: Engine,
  lease: Lease,
): Promise<{ slots: number; blueprintIds: string[] } | undefined> {
  const serving = (await engine.blueprints()).filter(
    (b) => cannotEverServe(engine, b, lease) === undefined,
  );
  if (serving.length === 0) return undefined;
  return {
    slots: serving.reduce((n, b) => n + b.limits.maxResources * b.limits.leasesPerResource, 0),
    blueprintIds: serving.map((b) => b.id),
  };
}

/** Where a just-created lease stands: undefined if it should have its first attempt. */
export async function placeInLine(engine: Engine, lease: Lease): Promise<PlaceInLine | undefined> {
  if ((engine.noLineUntil.get(lease.type) ?? 0) > engine.now()) return undefined;
  const page = await engine.store.listLeasesByType(lease.type, 'pending', { limit: LINE_SCAN });
  const older = page.items.filter((l) => l.id !== lease.id && olderThan(l, lease));
  const same = wants(lease);
  const rivals = older.filter((l) => wants(l) === same);
  const waits = (l: Lease, on: WaitingFor) => l.waitSeq > 0 && l.waitingFor === on;
  // The youngest that saw the pool full itself says best what the line waits for.
  const seen = rivals.findLast((l) => waits(l, 'slot'));
  const joined = rivals.some((l) => waits(l, 'line'));
  const pool = seen ? undefined : await slotsFor(engine, lease);
  const fills = pool !== undefined && rivals.length >= pool.slots;
  if (!seen && !joined && !fills) {
    // No line to join. If fewer leases wanting this are pending than the pool has slots (not a
    // burst under way, most likely a pool serving leases as they come, like a warm pool), the
    // next requests of this process skip the look for as long as the blueprint catalog is
    // cached: such a pool pays for it once per period, not once per lease, and a line that
    // forms meanwhile costs those requests only the first attempt they always had.
    const demand = page.items.filter((l) => wants(l) === same).length;
    if (pool !== undefined && !page.cursor && demand < pool.slots) {
      engine.noLineUntil.set(lease.type, engine.now() + engine.settings.blueprintCacheMs);
    }
    return undefined;
  }
  // The page holds every older lease unless it is full of them.
  const whole = !page.cursor || older.length < page.items.length;
  const ahead = whole
    ? older.length
    : await engine.store.countWaitingAhead(lease.type, lease.requestedAt, lease.id);
  return {
    ahead,
    cause: {
      kind: 'in-line',
      type: lease.type,
      rivals: rivals.length,
      ...(seen
        ? { behind: seen.id, ...(seen.waitReason ? { theirReason: seen.waitReason } : {}) }
        : fills
          ? pool
          : {}),
    },
  };
}

/** Pending leases a wait chain's message looks at to tell whether its lease is next. */
const FRONT_SCAN = 25;

/**
 * An older lease wanting the same that waits for a slot too, if any: then the lease whose wait
 * chain's message asks is not next in line, and an attempt now could only lose, or take a slot
 * freed for a lease woken ahead of it (which then loses its race and waits again). Only the
 * front of the line attempts from its chain message; it is also what recovers a lost wake-up,
 * since a slot nobody was woken for is free when the front's chain message comes.
 */
export async function waitingAhead(engine: Engine, lease: Lease): Promise<Lease | undefined> {
  const page = await engine.store.listLeasesByType(lease.type, 'pending', {
    limit: FRONT_SCAN,
    waitedOnly: true,
  });
  const same = wants(lease);
  const ahead = page.items.find(
    (l) =>
      l.id !== lease.id &&
      olderThan(l, lease) &&
      (l.waitingFor === 'slot' || l.waitingFor === 'line') &&
      wants(l) === same,
  );
  if (ahead) return ahead;
  // A line longer than the page, all of it older: someone wanting the same may be further on,
  // but the page alone says nothing; the lease is treated as next (the old behaviour).
  return undefined;
}

/**
 * Write the just-created lease as waiting in line (waitSeq 0 -> 1, so wake-ups find it) and
 * queue the wait chain's safety-net message at the backoff cap. False if the lease changed
 * meanwhile (the sweep re-drove it): it then gets its first message as usual.
 */
export async function joinLine(
  engine: Engine,
  lease: Lease,
  place: PlaceInLine,
): Promise<Lease | undefined> {
  const { reason, causes } = waitOn([place.cause]);
  const delay = delayWithinDeadline(engine, lease, engine.backoffSeconds(AT_THE_CAP));
  const set = {
    waitReason: reason,
    waitingFor: 'line' as const,
    checkedAt: engine.iso(),
    sweepAt: sweepAtWithinDeadline(engine, lease),
  };
  const writes: TxWrite[] = [
    { op: 'markLeaseWaiting', id: lease.id, type: lease.type, expectWaitSeq: lease.waitSeq, set },
    engine.logWrite(lease.id, 'lease.waiting', describeWaiting(reason, place.ahead), {
      reason,
      causes,
      ahead: place.ahead,
      retryInSeconds: delay,
    }),
  ];
  try {
    await engine.store.transact(writes);
  } catch (err) {
    if (err instanceof WriteConflictError) return undefined;
    throw err;
  }
  // A crash before this send leaves a waiting lease with no message: the sweep re-drives it at
  // its sweepAt, as it does a lease whose request died before its first message.
  await engine.send({
    kind: 'lease',
    id: lease.id,
    waitSeq: lease.waitSeq + 1,
    attempt: 1,
    delaySeconds: delay,
    reason: 'in line',
  });
  return { ...lease, ...set, waitSeq: lease.waitSeq + 1 };
}
