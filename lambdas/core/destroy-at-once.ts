/**
 * The teardown of a lease its holder released, from the snapshot the release carried, when
 * nothing needs cleaning (issue 14). The usual teardown (lease-end.ts, destroyLease) reads the
 * lease, reads its resource, runs the plug-in's cleanup, then writes one transaction; when the
 * blueprint has no per-lease cleanup, all it needs is that transaction: 2 reads fewer per lease.
 *
 * What the usual path's reads protect, and why skipping them here is safe:
 *  - GetItem LEASE: the lease may have moved on since the release (a duplicate delivery already
 *    destroyed it). The transaction is conditional on the snapshot's (status, version), so a
 *    stale snapshot changes nothing; it cancels and the update reads the lease after all.
 *  - GetItem RES, for the cleanup on the host (plug-in `releaseLease`): taken only when the
 *    plug-in has none — a cleanup is a side effect that must never run from a stale snapshot.
 *  - GetItem RES, for "does the resource go after its lease" (it broke, is being released): the
 *    detach is conditional on the resource still being active. If it left service the
 *    transaction cancels and the usual path runs, which tells the resource's update. Reclaim on
 *    release and a draining blueprint are blueprint settings, checked here: then the usual
 *    teardown runs from the snapshot (it reads the resource, but not the lease: with no cleanup
 *    its first effect is the same conditional transaction).
 * Freeing the lease's slot locks and the resource's leaseCount stays in the same transaction as
 * the lease's own conditional transition (released v -> destroyed), so it cannot happen twice.
 */
import type { Engine } from './engine.ts';
import { WriteConflictError } from './errors.ts';
import type { Lease } from './model.ts';
import { childLeaseEnded } from './nested-leases.ts';
import type { LeaseTeardown } from './outcomes.ts';
import type { TxWrite } from './ports.ts';
import { wakeWaitingLeases } from './wake.ts';

export type DestroyAtOnce =
  | LeaseTeardown
  /**
   * No cleanup, but the resource goes after its lease (reclaim on release, draining): the
   * usual teardown, from the snapshot (its first effect is the conditional transaction).
   */
  | { action: 'from-snapshot' }
  /** The snapshot was stale, cleanup is needed, or the resource left service: the usual way. */
  | { action: 'not-at-once' };

export async function destroyAtOnce(engine: Engine, lease: Lease): Promise<DestroyAtOnce> {
  if (lease.status !== 'released' || !lease.resourceId || !lease.blueprintId) {
    return { action: 'not-at-once' };
  }
  const blueprint = await engine.blueprint(lease.blueprintId);
  if (!blueprint || engine.configured(blueprint).plugin.releaseLease) {
    return { action: 'not-at-once' };
  }
  if (blueprint.limits.reclaimOnRelease || blueprint.state === 'draining') {
    return { action: 'from-snapshot' };
  }

  const at = engine.iso();
  const leaseWrite: TxWrite = {
    op: 'updateLease',
    id: lease.id,
    type: lease.type,
    expect: { status: lease.status, version: lease.version },
    set: { status: 'destroyed', destroyedAt: at, slotLocks: [], sweepAt: null },
  };
  try {
    await engine.store.transact([
      leaseWrite,
      ...lease.slotLocks.map((key): TxWrite => ({ op: 'freeSlotLock', key, ownerId: lease.id })),
      { op: 'detachLease', resourceId: lease.resourceId, at, statusIn: ['active'] },
      engine.logWrite(lease.id, 'lease.destroyed', 'destroyed; its slot is free', {
        resourceId: lease.resourceId,
      }),
    ]);
  } catch (err) {
    if (err instanceof WriteConflictError) return { action: 'not-at-once' };
    throw err;
  }
  await childLeaseEnded(engine, lease);
  await wakeWaitingLeases(engine, lease.type, `lease slot on ${lease.resourceId} freed`);
  return { action: 'destroyed' };
}
