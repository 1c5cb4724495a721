/**
 * How a lease ends: released or broken (the reason is what its holder reads), then destroyed —
 * the plug-in cleans up on the resource (possibly in steps, holding the slot until done), the
 * lease's slot locks are freed and it detaches from the resource in one transaction, and
 * whoever can use the freed slot is woken.
 */
import type { LeaseStep } from './blueprint.ts';
import type { Engine } from './engine.ts';
import { errorMessage, WriteConflictError } from './errors.ts';
import { mayBeFreedByDetach } from './free.ts';
import { asLeaseStep, recordPendingStep, stepLogWrites } from './lease-steps.ts';
import type { Lease } from './model.ts';
import { childLeaseEnded } from './nested-leases.ts';
import type { LeaseOutcome, LeaseTeardown } from './outcomes.ts';
import type { TxWrite } from './ports.ts';
import { markSuspect } from './resource-end.ts';
import { isResourceFinished } from './transitions.ts';
import { wakeWaitingLeases } from './wake.ts';

/** pending|acquired|active -> broken, then destroyed. The reason is what the holder reads. */
export async function breakLease(
  engine: Engine,
  lease: Lease,
  reason: string,
  logType: 'lease.broken' | 'lease.activation-failed' = 'lease.broken',
): Promise<LeaseOutcome> {
  return endLease(engine, lease, 'broken', reason, logType);
}

export async function endLease(
  engine: Engine,
  lease: Lease,
  status: 'released' | 'broken',
  reason: string,
  logType: 'lease.broken' | 'lease.activation-failed' | 'lease.released' | 'lease.expired',
): Promise<LeaseOutcome> {
  const at = engine.iso();
  try {
    await engine.store.transact([
      {
        op: 'updateLease',
        id: lease.id,
        type: lease.type,
        expect: { status: lease.status, version: lease.version },
        set: {
          status,
          endReason: reason,
          endedAs: status,
          releasedAt: at,
          sweepAt: engine.iso(engine.settings.strandAfterSeconds * 1000),
        },
      },
      engine.logWrite(
        lease.id,
        logType,
        status === 'broken' ? `broken: ${reason}` : `released: ${reason}`,
        {
          reason,
        },
      ),
    ]);
  } catch (err) {
    if (err instanceof WriteConflictError) return { action: 'stale' };
    throw err;
  }
  const destroyed = await destroyLease(engine, {
    ...lease,
    status,
    version: lease.version + 1,
    endReason: reason,
    releasedAt: at,
  });
  return { action: status, detail: reason, next: destroyed };
}

/**
 * released|broken -> destroyed: clean up on the resource, free the lease's slot locks and
 * detach from the resource, in one transaction; then wake whoever can use the freed slot.
 */
export async function destroyLease(engine: Engine, lease: Lease): Promise<LeaseTeardown> {
  const r = lease.resourceId ? await engine.store.getResource(lease.resourceId) : undefined;
  const blueprint = r ? await engine.blueprint(r.blueprintId) : undefined;
  let cleaned: LeaseStep = { state: 'done' };
  // Cleanup runs after an activation, and after the steps of one that never finished (the
  // holder gave up during a git fetch): the plug-in stops what they started.
  if (r && blueprint && r.status === 'active' && (lease.activatedAt || lease.data)) {
    const { plugin, bp } = engine.configured(blueprint);
    try {
      cleaned = asLeaseStep(await plugin.releaseLease?.(engine.ctx, bp, r, lease));
    } catch (err) {
      // Cleanup failed: the next holder must not get a dirty resource.
      await markSuspect(engine, r, `cleanup after lease ${lease.id} failed: ${errorMessage(err)}`);
    }
  }
  if (cleaned.state === 'pending') {
    // Cleanup runs on the host (git clean): the slot stays held until it is done.
    const recorded = await recordPendingStep(engine, lease, cleaned);
    return recorded ? { action: 'cleaning', detail: cleaned.message } : { action: 'stale' };
  }
  const at = engine.iso();
  try {
    await engine.store.transact([
      ...destroyWrites(
        lease,
        at,
        r ? { op: 'detachLease', resourceId: r.id, at, mayFree: mayBeFreedByDetach(r) } : undefined,
      ),
      ...stepLogWrites(engine, lease, cleaned, destroyedLog(engine, lease)),
    ]);
  } catch (err) {
    if (err instanceof WriteConflictError) return { action: 'stale' };
    throw err;
  }
  await childLeaseEnded(engine, lease);
  if (r) {
    const reclaim =
      isResourceFinished(r.status) ||
      blueprint?.limits.reclaimOnRelease ||
      blueprint?.state === 'draining';
    if (reclaim) {
      // The resource's own update decides (reclaim, or finish tearing down); its pool slot,
      // once free, wakes waiting leases.
      await engine.send({ kind: 'resource', id: r.id, reason: `lease ${lease.id} destroyed` });
    } else {
      await wakeWaitingLeases(engine, r.type, `lease slot on ${r.id} freed`);
    }
  }
  return { action: 'destroyed' };
}

/**
 * The writes of every teardown of a lease, in its one transaction (destroyLease above,
 * destroy-at-once.ts): the lease to destroyed, conditional on the status and version it was
 * read with (plus `extra`, e.g. the release recorded with it), its slot locks freed, and its
 * detach from the resource. The first write is the lease's own.
 */
export function destroyWrites(
  lease: Lease,
  at: string,
  detach: TxWrite | undefined,
  extra: Partial<Lease> = {},
): TxWrite[] {
  return [
    {
      op: 'updateLease',
      id: lease.id,
      type: lease.type,
      expect: { status: lease.status, version: lease.version },
      set: { ...extra, status: 'destroyed', destroyedAt: at, slotLocks: [], sweepAt: null },
    },
    ...lease.slotLocks.map((key): TxWrite => ({ op: 'freeSlotLock', key, ownerId: lease.id })),
    ...(detach ? [detach] : []),
  ];
}

/** The log line of a lease's teardown. */
export function destroyedLog(engine: Engine, lease: Lease): TxWrite {
  return engine.logWrite(lease.id, 'lease.destroyed', 'destroyed; its slot is free', {
    resourceId: lease.resourceId,
  });
}
