/**
 * Slot locks a plug-in asks for (a static host's `binding:<instance>`) are taken in the
 * allocation transaction. When one is taken by another lease between the plug-in's choice and
 * the transaction, the allocator asks the plug-in again (at most two more times) rather than
 * trying the next pool slot with the same, now impossible, template; and if every choice is
 * taken, the lease waits saying so. Real DynamoDB Local conditional writes; a test-only plug-in
 * that hands out bindings from a fixed list; a store wrapper that takes a binding just before
 * the allocation transaction.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { allocateNew, poolSlotStart } from '../../lambdas/core/allocate-new.ts';
import { allocateLease } from '../../lambdas/core/allocator.ts';
import type { BlueprintType } from '../../lambdas/core/blueprint.ts';
import { slotKeys } from '../../lambdas/core/engine.ts';
import type { Store, TxWrite } from '../../lambdas/core/ports.ts';
import { createBlueprint, requestLease } from '../../lambdas/core/use-cases.ts';
import { type TestSystem, testSystem } from '../support/system.ts';

const configSchema = z.object({ instances: z.array(z.string()).min(1) }).strict();

/** Hands out `binding:<instance>` for the first instance whose binding is free. */
function boundType(choices: string[]): BlueprintType<z.output<typeof configSchema>> {
  const bindings = (instances: string[]) => instances.map((i) => `binding:${i}`);
  return {
    type: 'bound-test',
    description: 'One resource per instance of a fixed list (test only)',
    resourceTypes: ['bound'],
    configSchema,
    async canAllocateNow(ctx, bp) {
      const held = await ctx.slotLocks.held(bindings(bp.config.instances));
      return held.length < bp.config.instances.length
        ? { ok: true }
        : { ok: false, reason: `all ${bp.config.instances.length} instances are bound` };
    },
    async allocateResource(ctx, bp) {
      const held = new Set(await ctx.slotLocks.held(bindings(bp.config.instances)));
      const free = bp.config.instances.find((i) => !held.has(`binding:${i}`));
      if (!free) throw new Error('no free instance');
      choices.push(free);
      return { slotLocks: [`binding:${free}`], data: { instanceId: free } };
    },
    async activateResource() {
      return { state: 'active' };
    },
    async destroyResource() {},
    async healthCheck() {
      return { healthy: true };
    },
  };
}

/** A store on which another lease takes `steal(key)` just before each of the next `times` allocations. */
function stealing(system: TestSystem, times: number, steal: (writes: TxWrite[]) => string) {
  let left = times;
  const stolen: string[] = [];
  const store: Store = new Proxy(system.store, {
    get(target, prop, receiver) {
      if (prop !== 'transact') return Reflect.get(target, prop, receiver);
      return async (writes: TxWrite[]) => {
        if (left > 0 && writes.some((w) => w.op === 'createResource')) {
          left--;
          const key = steal(writes);
          stolen.push(key);
          await target.transact([
            {
              op: 'takeSlotLock',
              lock: {
                key,
                ownerKind: 'resource',
                ownerId: `res-intruder-${stolen.length}`,
                createdAt: new Date(system.clock.now()).toISOString(),
              },
            },
          ]);
        }
        return target.transact(writes);
      };
    },
  });
  return { engine: system.engineWith({ store }), stolen };
}

const bindingOf = (writes: TxWrite[]) => {
  const w = writes.find((w) => w.op === 'takeSlotLock' && w.lock.key.startsWith('binding:'));
  if (w?.op !== 'takeSlotLock') throw new Error('no binding in this allocation');
  return w.lock.key;
};

async function setup(instances: string[]) {
  const choices: string[] = [];
  const system = await testSystem({}, { plugins: [boundType(choices)] });
  await createBlueprint(system.engine, {
    id: 'bound',
    type: 'bound-test',
    resourceType: 'bound',
    limits: { maxResources: 5 },
    config: { instances },
  });
  const lease = await requestLease(system.engine, { type: 'bound', owner: 'ci' });
  return { system, choices, lease };
}

describe('binding locks in the allocation transaction', () => {
  it('a binding taken meanwhile makes the plug-in choose again, and the lease gets the next instance', async () => {
    const { system, choices, lease } = await setup(['i-1', 'i-2', 'i-3']);
    const { engine, stolen } = stealing(system, 1, bindingOf);

    const outcome = await allocateLease(engine, lease, 0);

    expect(stolen).toEqual(['binding:i-1']);
    expect(choices).toEqual(['i-1', 'i-2']);
    expect(outcome).toMatchObject({ outcome: 'acquired', allocated: true });
    if (outcome.outcome !== 'acquired') return;
    // The pool slot this lease's allocations start at (allocate-new.ts, poolSlotStart).
    expect(outcome.resource.slotLocks).toEqual([
      slotKeys.pool('bound', poolSlotStart(lease.id, 5)),
      'binding:i-2',
    ]);
    const locks = await system.store.getSlotLocks(['binding:i-1', 'binding:i-2']);
    expect(locks.map((l) => [l.key, l.ownerId]).sort()).toEqual([
      ['binding:i-1', 'res-intruder-1'],
      ['binding:i-2', outcome.resource.id],
    ]);
  });

  it('after three choices all taken meanwhile, the lease waits and says what happened', async () => {
    const { system, choices, lease } = await setup(['i-1', 'i-2', 'i-3', 'i-4']);
    const { engine, stolen } = stealing(system, 3, bindingOf);

    const outcome = await allocateLease(engine, lease, 0);

    expect(stolen).toEqual(['binding:i-1', 'binding:i-2', 'binding:i-3']);
    expect(choices).toEqual(['i-1', 'i-2', 'i-3']);
    expect(outcome).toMatchObject({
      outcome: 'wait',
      reason:
        "blueprint 'bound': binding:i-3 was taken by another lease meanwhile (after 3 choices of its plug-in); will retry",
    });
    // Nothing was written for the lease: no resource, no pool slot, the lease still pending.
    expect(await system.store.listLiveResources('bound')).toEqual([]);
    expect(await system.store.getSlotLocks(slotKeys.allPool('bound', 5))).toEqual([]);
    expect((await system.store.getLease(lease.id))?.status).toBe('pending');

    // The next try finds i-4, the one binding nobody took.
    const again = await allocateLease(system.engine, lease, 1);
    expect(again).toMatchObject({ outcome: 'acquired' });
    if (again.outcome === 'acquired') expect(again.resource.slotLocks).toContain('binding:i-4');
  });

  it('a pool slot taken meanwhile moves to the next slot with the same choice', async () => {
    const { system, choices, lease } = await setup(['i-1', 'i-2']);
    // Allocations start at a free slot of their own (allocate-new.ts, poolSlotStart).
    const first = poolSlotStart(lease.id, 5);
    const { engine, stolen } = stealing(system, 1, () => slotKeys.pool('bound', first));
    const blueprint = await system.store.getBlueprint('bound');
    const { plugin, bp } = engine.configured(blueprint!);

    const outcome = await allocateNew(engine, lease, blueprint!, plugin, bp);

    expect(stolen).toEqual([slotKeys.pool('bound', first)]);
    expect(choices).toEqual(['i-1']);
    expect(outcome).toMatchObject({ outcome: 'acquired' });
    if (outcome.outcome !== 'acquired') return;
    expect(outcome.resource.slotLocks).toEqual([
      slotKeys.pool('bound', (first + 1) % 5),
      'binding:i-1',
    ]);
  });
});
