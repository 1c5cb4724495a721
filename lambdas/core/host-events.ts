/**
 * What the cloud tells us about a host (EC2's spot interruption warnings, rebalance
 * recommendations, instance state changes; the worker translates the EventBridge event into a
 * plain HostEvent, so no AWS type reaches the core) mapped to the resource bound to it.
 *
 * The instance → resource map is the `binding:<instanceId>` slot lock's owner: one GetItem, no
 * scan, and exact (a resource takes the lock in the write that records its instance). An
 * instance nobody holds is not ours (or no longer): the event is dropped with a log line.
 *
 *  - interruption            → the resource breaks: "spot instance i-… interrupted by EC2 at <t>";
 *                              its active leases break with that reason, the others wait again.
 *  - state stopping, stopped, shutting-down, terminated → breaks: "instance i-… is <state>".
 *  - rebalance recommendation → retiring: no new lease is placed on it (`data.retiring`, checked
 *                              by the allocator), active leases carry on, and it is reclaimed
 *                              as soon as it is idle.
 */
import type { Engine } from './engine.ts';
import type { Resource } from './model.ts';
import type { Outcome } from './outcomes.ts';
import { breakResource } from './resource-end.ts';
import { isResourceFinished } from './transitions.ts';

export interface HostEvent {
  instanceId: string;
  kind: 'interruption' | 'state-change' | 'rebalance';
  /** The instance's new state, for `state-change`. */
  state?: string;
  /** When the cloud says it happened (ISO-8601). */
  at: string;
}

export type HostEventOutcome = Outcome<'ignored' | 'none' | 'broken' | 'retiring' | 'stale'> & {
  resourceId?: string;
};

const GONE_STATES = new Set(['stopping', 'stopped', 'shutting-down', 'terminated']);

export const bindingLockKey = (instanceId: string) => `binding:${instanceId}`;

export async function handleHostEvent(engine: Engine, event: HostEvent): Promise<HostEventOutcome> {
  const [lock] = await engine.store.getSlotLocks([bindingLockKey(event.instanceId)]);
  if (lock?.ownerKind !== 'resource') {
    return { action: 'ignored', detail: `instance ${event.instanceId} is bound to no resource` };
  }
  const r = await engine.store.getResource(lock.ownerId);
  if (!r || isResourceFinished(r.status)) {
    return {
      action: 'ignored',
      detail: `resource ${lock.ownerId} of instance ${event.instanceId} is already ${r?.status ?? 'gone'}`,
      resourceId: lock.ownerId,
    };
  }
  switch (event.kind) {
    case 'interruption':
      await breakResource(
        engine,
        r,
        `spot instance ${event.instanceId} interrupted by EC2 at ${event.at}`,
      );
      return { action: 'broken', resourceId: r.id };
    case 'state-change':
      if (!GONE_STATES.has(event.state ?? '')) {
        return { action: 'none', detail: `instance is ${event.state}`, resourceId: r.id };
      }
      await breakResource(engine, r, `instance ${event.instanceId} is ${event.state}`);
      return { action: 'broken', resourceId: r.id };
    case 'rebalance':
      return retire(
        engine,
        r,
        `EC2 recommends rebalancing spot instance ${event.instanceId} (at ${event.at}): no new leases; reclaimed once idle`,
      );
  }
}

async function retire(engine: Engine, r: Resource, reason: string): Promise<HostEventOutcome> {
  if (r.data.retiring !== undefined) return { action: 'none', detail: 'already retiring' };
  const ok = await engine.tryTransact([
    {
      op: 'updateResource',
      id: r.id,
      type: r.type,
      expect: { status: r.status, version: r.version },
      set: { data: { ...r.data, retiring: reason } },
    },
    engine.logWrite(r.id, 'resource.suspect', `suspect: ${reason}`, { reason }),
  ]);
  if (!ok) return { action: 'stale', resourceId: r.id };
  // Reclaimed now if nobody holds it; otherwise when its last lease is released.
  await engine.send({ kind: 'resource', id: r.id, reason: 'retiring: rebalance recommended' });
  return { action: 'retiring', resourceId: r.id };
}
