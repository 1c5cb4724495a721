/**
 * Handing freed slots to waiting leases (issue 14). A slot that frees wakes exactly as many
 * waiting leases as slots freed (times `wakeBatch`, 1 by default), oldest request first, and
 * only leases that already waited (waitSeq > 0): a lease that has not had its first attempt
 * yet is about to be served by its own first message, and waking it only races that message.
 *
 * Waiting on a full pool is therefore not a race on backoff timers: the allocator gives such a
 * wait a long retry (allocator.ts, `waitsForWake`) and the wake-up is what serves the lease.
 * Two things keep that safe:
 *  - a wake-up that finds its lease no longer pending (served by another message meanwhile, or
 *    woken twice by two slots freed at once) passes the wake on to the next waiter, once
 *    (`passWakeOn`), so a freed slot is rarely left unclaimed because its wake-up hit the wrong
 *    lease. So is one whose update was stale (two slots freed at once woke the same lease,
 *    and the other wake-up's update took one of them). A passed-on wake-up is not passed on
 *    again: a wake-up hopping from lease to lease while 32 workers serve them is a storm;
 *  - the wait chain's own message still comes, at the backoff cap: a lost wake-up costs a
 *    lease time, never the lease.
 */
import type { Engine } from './engine.ts';
import type { Lease, UpdateMessage } from './model.ts';

/**
 * Pending leases one wake-up looks at (one query page, oldest first). Leases that never waited
 * are skipped by the query's filter; if the oldest WAKE_SCAN have not had their first attempt,
 * nobody is woken: those first attempts come anyway and take the slot.
 */
export const WAKE_SCAN = 25;

/** A freed slot (or `slots` of them): wake the oldest leases of the type that waited. */
export async function wakeWaitingLeases(
  engine: Engine,
  type: string,
  why: string,
  slots = 1,
  options: { skip?: string; passOn?: boolean } = {},
): Promise<void> {
  const wanted = slots * engine.settings.wakeBatch;
  if (wanted <= 0) return;
  const waiting = await engine.store.listLeasesByType(type, 'pending', {
    limit: WAKE_SCAN,
    waitedOnly: true,
  });
  await engine.send(
    ...waiting.items
      .filter((l) => l.id !== options.skip)
      .slice(0, wanted)
      .map(
        (l): UpdateMessage => ({
          kind: 'lease',
          id: l.id,
          reason: `wake: ${why}`,
          ...(options.passOn === false ? {} : { wake: true }),
        }),
      ),
  );
}

/**
 * A wake-up reached a lease that no longer waits: the slot it stood for is still free (or was
 * taken by whoever served this lease, in which case the next waiter finds the pool full and
 * waits again: one wasted update, not a stranded slot).
 */
export async function passWakeOn(engine: Engine, lease: Lease, msg: UpdateMessage): Promise<void> {
  if (!msg.wake) return;
  await wakeWaitingLeases(engine, lease.type, `passed on by ${lease.id}`, 1, {
    skip: lease.id,
    // Passed on once only: a wake-up that hops from lease to lease while 32 workers serve them
    // becomes a storm (each hop is an update and a query). A second miss is left to the chain.
    passOn: false,
  });
}
