/**
 * The ports a plug-in reaches the rest of the system through (BlueprintContext.leases and
 * commandsOn): leases held by resources, and the command interface of such a lease.
 *
 * A child lease is an ordinary lease whose owner is its parent resource
 * (`drydock:resource/<id>`), requested with the child's key as its Idempotency-Key, so a retried
 * activation finds the lease it asked for before. The parent is woken (an "update resource"
 * message) when a child lease becomes active or ends: see Engine.wakeParent.
 *
 * The use cases are imported lazily: they import the engine, which builds these ports.
 */
import type { ChildLease, ChildLeaseRequest, CommandInterface, LeasePort } from './blueprint.ts';
import type { Engine } from './engine.ts';
import { NotFoundError, StateConflictError } from './errors.ts';
import { leaseHost } from './lease-host.ts';
import type { Lease, Resource } from './model.ts';

const PARENT_PREFIX = 'drydock:resource/';

/** The owner of a resource's child leases. */
export function childLeaseOwner(resourceId: string): string {
  return `${PARENT_PREFIX}${resourceId}`;
}

/** The resource a lease belongs to, if it is a child lease. */
export function parentResourceOf(lease: Pick<Lease, 'owner'>): string | undefined {
  return lease.owner.startsWith(PARENT_PREFIX)
    ? lease.owner.slice(PARENT_PREFIX.length)
    : undefined;
}

export function leasePort(engine: Engine): LeasePort {
  return {
    async request(parent: Resource, request: ChildLeaseRequest): Promise<ChildLease> {
      const { submitLeaseRequest } = await import('./use-cases.ts');
      const { lease } = await submitLeaseRequest(engine, {
        type: request.type,
        ...(request.attributes ? { attributes: request.attributes } : {}),
        ...(request.blueprintIds ? { blueprintIds: request.blueprintIds } : {}),
        ttlSeconds: request.ttlSeconds ?? engine.settings.maxLeaseTtlSeconds,
        owner: childLeaseOwner(parent.id),
        idempotencyKey: `child:${request.key}`,
      });
      return childView(lease);
    },
    async get(leaseId: string): Promise<ChildLease | undefined> {
      const lease = await engine.store.getLease(leaseId);
      return lease ? childView(lease) : undefined;
    },
    async release(leaseId: string): Promise<void> {
      const lease = await engine.store.getLease(leaseId);
      if (!lease) return;
      const { releaseLease } = await import('./use-cases.ts');
      // The holder is the parent resource: the lease's log says "released by drydock:resource/R".
      await releaseLease(engine, leaseId, { principal: lease.owner });
    },
  };
}

/** The command interface of an active lease (a parent resource running `git` on its host). */
export async function commandsOn(engine: Engine, leaseId: string): Promise<CommandInterface> {
  const lease = await engine.store.getLease(leaseId);
  if (!lease) throw new NotFoundError('lease', leaseId);
  const host = await leaseHost(engine, lease);
  if (!host.ok) throw new StateConflictError(host.reason, { status: lease.status });
  return host.iface;
}

function childView(lease: Lease): ChildLease {
  return {
    id: lease.id,
    status: lease.status,
    ...(lease.resourceId ? { resourceId: lease.resourceId } : {}),
    ...(lease.endReason ? { endReason: lease.endReason } : {}),
  };
}
