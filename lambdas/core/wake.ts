/**
 * Handing freed slots to waiting leases (issue 14). A slot that frees wakes exactly as many
 * waiting leases as slots freed (times `wakeBatch`, 1 by default), oldest request first, and
 * only leases that already waited (waitSeq > 0): a lease that has not had its first attempt
 * yet is about to be served by its own first message, and waking it only races that message.
 *
 * Waiting on a full pool is therefore not a race on backoff timers: the allocator gives such a
 * wait a long retry (allocator.ts, `waitsForWake`) and the wake-up is what serves the lease.
 * Each wake-up is claimed on the lease (`claimWake`, a conditional write: one wake-up per wait,
 * `wokenSeq`, judged on the item itself, so a wait recorded since the index was read does not
 * make the claim miss and the slot go unclaimed). Without it, a second slot freed before the woken lease's update ran woke the
 * same oldest lease again (the query still shows it waiting), and one of its two updates was
 * stale: under contention most wake-ups came in such pairs. One write per wake-up instead of
 * a wasted update, a lease read and a query per pair.
 *
 * Two things keep that safe:
 *  - a wake-up that finds its lease no longer pending (served by another message meanwhile, or
 *    a duplicate delivery of the wake-up) passes the wake on to the next waiter, once
 *    (`passWakeOn`), so a freed slot is rarely left unclaimed because its wake-up hit the wrong
 *    lease. So is one whose update was stale (another message of the same lease took the
 *    slot at the same time). A passed-on wake-up is not passed on
 *    again: a wake-up hopping from lease to lease while 32 workers serve them is a storm;
 *  - the wait chain's own message still comes, at the backoff cap: a lost wake-up costs a
 *    lease time, never the lease.
 */
import type { Engine } from './engine.ts';
import { snapshotOf } from './leases.ts';
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
  const woken: UpdateMessage[] = [];
  let claims = wanted + MISSED_CLAIMS;
  for (const l of waiting.items) {
    if (woken.length >= wanted || claims === 0) break;
    // Already handed a wake-up for this wait, which it has not used yet: the next one in line.
    if (l.id === options.skip || (l.wokenSeq ?? 0) >= l.waitSeq) continue;
    claims--;
    if (!(await engine.tryTransact([{ op: 'claimWake', id: l.id }]))) continue;
    woken.push({
      kind: 'lease',
      id: l.id,
      reason: `wake: ${why}`,
      ...(options.passOn === false ? {} : { wake: true }),
      // The lease as the claim just found it (pending, this waitSeq): its update plans from it
      // without reading it; the acquisition's write is conditional on its status and version,
      // so a copy the index served stale changes nothing (lease-update.ts, updateFromSnapshot).
      ...snapshotOf({ ...l, wokenSeq: l.waitSeq }),
    });
  }
  await engine.send(...woken);
}

/**
 * Claims that may fail (the lease was served, waited again or was woken meanwhile: the index
 * is a little behind) before a wake-up gives up and leaves its slot to the wait chains.
 */
const MISSED_CLAIMS = 2;

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
