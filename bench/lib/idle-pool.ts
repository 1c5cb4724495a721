/**
 * An idle pool written straight into the store: `count` active resources of a blueprint, no
 * lease on any, each holding its pool slot lock, as a warm pool looks after its leases left.
 * Booting 500 hosts through the engine would cost the bench minutes and measure nothing the
 * row is about (what one warm acquisition reads); the items are the ones allocation and
 * activation write, so the allocator cannot tell them apart.
 */
import { slotKeys } from '../../lambdas/core/engine.ts';
import type { Blueprint, Resource } from '../../lambdas/core/model.ts';
import type { Store, TxWrite } from '../../lambdas/core/ports.ts';

/** Resources per transaction: two writes each, within DynamoDB's 100 items per transaction. */
const PER_TRANSACTION = 25;

/** The resources written, oldest first (createdAt one millisecond apart from `at`). */
export async function seedIdlePool(
  store: Store,
  blueprint: Blueprint,
  count: number,
  at: string,
): Promise<Resource[]> {
  const startMs = Date.parse(at);
  const resources = Array.from({ length: count }, (_, n): Resource => {
    const created = new Date(startMs + n).toISOString();
    const id = `idle-${blueprint.id}-${String(n).padStart(5, '0')}`;
    return {
      id,
      blueprintId: blueprint.id,
      type: blueprint.resourceType,
      attributes: { ...blueprint.attributes },
      status: 'active',
      version: 1,
      slotLocks: [slotKeys.pool(blueprint.id, n)],
      capacity: blueprint.limits.leasesPerResource,
      leaseCount: 0,
      uses: 0,
      createdAt: created,
      activatedAt: created,
      updatedAt: created,
      data: { hostId: `synthetic-${id}` },
    };
  });
  for (let i = 0; i < resources.length; i += PER_TRANSACTION) {
    const writes = resources.slice(i, i + PER_TRANSACTION).flatMap((r): TxWrite[] => [
      { op: 'createResource', resource: r },
      {
        op: 'takeSlotLock',
        lock: {
          key: r.slotLocks[0]!,
          ownerKind: 'resource',
          ownerId: r.id,
          createdAt: r.createdAt,
        },
      },
    ]);
    await store.transact(writes);
  }
  return resources;
}
