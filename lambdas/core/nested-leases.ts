/**
 * Nested leases (a working copy holding a host lease): what happens to the parent resource when
 * its child lease ends. A child that ended for any reason but its parent's own release (the host
 * broke, the lease expired, an operator released it) leaves the parent without its host: the
 * parent breaks, naming the child's reason once, and its active leases break with it
 * (`working-copy res-A broke: host lease lease-B broke: host res-C broke: <root cause>`).
 * A parent already finished (reclaimed, broken) is only woken: it is tearing down anyway.
 */
import type { Engine } from './engine.ts';
import type { Lease } from './model.ts';
import { parentResourceOf } from './plugin-ports.ts';
import { breakResource } from './resource-end.ts';
import { isResourceFinished } from './transitions.ts';

/** Whether the parent gave the lease back itself (the release use case's end reason). */
function releasedByParent(lease: Pick<Lease, 'owner' | 'endReason'>): boolean {
  return lease.endReason === `released by ${lease.owner}`;
}

/** Called once a lease is destroyed: wakes or breaks the resource that held it, if any. */
export async function childLeaseEnded(engine: Engine, lease: Lease): Promise<void> {
  const parentId = parentResourceOf(lease);
  if (!parentId) return;
  const why = lease.endReason ?? lease.status;
  const parent = await engine.store.getResource(parentId);
  if (parent && !isResourceFinished(parent.status) && !releasedByParent(lease)) {
    const verb = lease.endedAs === 'broken' || lease.status === 'broken' ? 'broke' : 'ended';
    await breakResource(engine, parent, `${lease.type} lease ${lease.id} ${verb}: ${why}`);
    return;
  }
  await engine.wakeParent(lease, `ended (${why})`);
}
