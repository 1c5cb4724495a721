/**
 * A lease's end in one transaction when nothing needs cleaning (issue 14): the holder's release
 * of an active lease destroys it at once (`releaseAtOnce`, called by the release itself), and a
 * lease already released is torn down from the snapshot its message carried (`destroyAtOnce`). The usual teardown (lease-end.ts, destroyLease) reads the
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
import { destroyedLog, destroyWrites } from './lease-end.ts';
import type { Lease } from './model.ts';
import { childLeaseEnded } from './nested-leases.ts';
import type { LeaseTeardown } from './outcomes.ts';
import { type TxWrite, writeLabel } from './ports.ts';
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
  if (lease.status !== 'released') return { action: 'not-at-once' };
  const how = await endsInOneWrite(engine, lease);
  if (how !== 'one-write') return { action: how };
  const ended = await endInOneWrite(engine, lease, {}, []);
  return typeof ended === 'object' ? { action: 'destroyed' } : { action: 'not-at-once' };
}

/**
 * The holder's release and the teardown in one transaction (issue 14: "release and teardown in
 * one transaction when nothing needs cleaning"): an active lease goes straight to destroyed,
 * with its release recorded (`released`: releasedAt, endReason, endedAs) and both log lines,
 * instead of a release write, a message and a worker's teardown write. The release path reads
 * the lease just before, so this never runs from a stale copy; its conditions are the teardown's
 * own (above). Returns the destroyed lease; `stale` if the lease changed since it was read (the
 * caller reads it again); undefined when the usual release must run (cleanup needed, the
 * resource goes after its lease, or it left service).
 */
export async function releaseAtOnce(
  engine: Engine,
  lease: Lease,
  released: Pick<Lease, 'releasedAt' | 'endReason' | 'endedAs'>,
  releaseLog: TxWrite,
): Promise<Lease | 'stale' | undefined> {
  if (lease.status !== 'active' || !engine.settings.releaseAtOnce) return undefined;
  if ((await endsInOneWrite(engine, lease)) !== 'one-write') return undefined;
  const ended = await endInOneWrite(engine, lease, released, [releaseLog]);
  if (ended === 'stale') return 'stale';
  if (ended === 'usual-way') return undefined;
  const { sweepAt: _, ...rest } = { ...lease, ...released };
  return {
    ...rest,
    destroyedAt: ended.destroyedAt,
    slotLocks: [],
    status: 'destroyed',
    version: lease.version + 1,
  };
}

/** Whether the lease's end is one transaction, the usual teardown from a snapshot, or neither. */
async function endsInOneWrite(
  engine: Engine,
  lease: Lease,
): Promise<'one-write' | 'from-snapshot' | 'not-at-once'> {
  if (!lease.resourceId || !lease.blueprintId) return 'not-at-once';
  const blueprint = await engine.blueprint(lease.blueprintId);
  if (!blueprint || engine.configured(blueprint).plugin.releaseLease) return 'not-at-once';
  if (blueprint.limits.reclaimOnRelease || blueprint.state === 'draining') return 'from-snapshot';
  return 'one-write';
}

/**
 * The one transaction: the lease (conditional on the status and version it was read with) to
 * destroyed, its slot locks freed, the resource detached if still active, and the log lines
 * `before` it and "destroyed". Then the parent (if a child lease) and the oldest waiter hear of
 * the freed slot.
 */
async function endInOneWrite(
  engine: Engine,
  lease: Lease,
  extra: Partial<Lease>,
  before: TxWrite[],
): Promise<{ destroyedAt: string; slotLocks: string[]; sweepAt: null } | 'stale' | 'usual-way'> {
  const resourceId = lease.resourceId as string;
  const at = engine.iso();
  const set = { destroyedAt: at, slotLocks: [] as string[], sweepAt: null };
  const writes = destroyWrites(
    lease,
    at,
    { op: 'detachLease', resourceId, at, statusIn: ['active'] },
    extra,
  );
  const leaseWrite = writes[0] as TxWrite;
  try {
    await engine.store.transact([...writes, ...before, destroyedLog(engine, lease)]);
  } catch (err) {
    if (!(err instanceof WriteConflictError)) throw err;
    return err.failed(writeLabel(leaseWrite), 'condition') ? 'stale' : 'usual-way';
  }
  await childLeaseEnded(engine, lease);
  await wakeWaitingLeases(engine, lease.type, `lease slot on ${resourceId} freed`);
  return set;
}
