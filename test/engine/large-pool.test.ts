/**
 * Issue 14 item 4: what a warm acquisition reads does not grow with the pool. A pool of 500
 * idle hosts (written straight into the store, as the bench does) against one of 10, counted
 * on the real store (DynamoDB Local): the store methods an update called, the items its
 * queries returned, and the capacity units DynamoDB reported.
 */
import { describe, expect, it } from 'vitest';
import { seedIdlePool } from '../../bench/lib/idle-pool.ts';
import { reclaimResource } from '../../lambdas/core/allocator.ts';
import { FREE_PAGE } from '../../lambdas/core/free-candidates.ts';
import type { Resource } from '../../lambdas/core/model.ts';
import type { Store } from '../../lambdas/core/ports.ts';
import { processUpdate, readLogs, requestLease } from '../../lambdas/core/use-cases.ts';
import { instrumentDynamoClient } from '../../lambdas/store/clients.ts';
import { DynamoStore } from '../../lambdas/store/dynamo-store.ts';
import { hashShard } from '../../lambdas/store/keys.ts';
import { FREE_SHARDS } from '../../lambdas/store/schema.ts';
import { testClients } from '../support/env.ts';
import { leaseNow, syntheticPool, type TestSystem, testSystem } from '../support/system.ts';

const ci = { principal: 'arn:aws:iam::123456789012:role/ci' };

/** Store methods called through it, in order, with how many objects each list returned. */
function counting(store: Store): { store: Store; calls: string[]; items: Map<string, number> } {
  const calls: string[] = [];
  const items = new Map<string, number>();
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        calls.push(String(prop));
        const result = await value.apply(target, args);
        if (Array.isArray(result)) {
          items.set(String(prop), (items.get(String(prop)) ?? 0) + result.length);
        }
        return result;
      };
    },
  }) as Store;
  return { store: proxy, calls, items };
}

/** A second store on the test's table whose client asks DynamoDB for consumed capacity. */
function measuredStore(system: TestSystem): DynamoStore {
  const client = testClients().dynamo;
  instrumentDynamoClient(client, { consumedCapacity: true });
  return new DynamoStore({ client, tableName: system.store.tableName, clock: system.clock });
}

/** The store with an empty free index: every attempt takes the full plan. */
function withoutFreeIndex(store: Store): Store {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'listFreeResources') return async () => [];
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** A system whose blueprint `pool` has `hosts` idle active hosts (maxResources = hosts). */
async function idlePool(hosts: number): Promise<{ system: TestSystem; pool: Resource[] }> {
  const system = await testSystem();
  await syntheticPool(system.engine, {
    limits: { maxResources: hosts, idleTtlSeconds: 3600, idleGraceSeconds: 3600 },
  });
  const blueprint = (await system.store.getBlueprint('pool'))!;
  const pool = await seedIdlePool(system.store, blueprint, hosts, system.engine.iso(-60_000));
  return { system, pool };
}

/** One warm acquisition: the lease's first update, measured. */
async function acquire(
  system: TestSystem,
  before?: (leaseId: string) => Promise<void>,
  wrap: (store: Store) => Store = (store) => store,
): Promise<{
  calls: string[];
  items: Map<string, number>;
  capacity: number;
  host: string;
  leaseId: string;
}> {
  const lease = await requestLease(system.engine, { type: 'host', owner: ci.principal });
  const msg = system.queue.take()!;
  expect(msg).toMatchObject({ kind: 'lease', id: lease.id });
  await before?.(lease.id);
  const measured = measuredStore(system);
  const counted = counting(wrap(measured));
  measured.resetStats();
  await processUpdate(system.engineWith({ store: counted.store }), msg);
  const now = await leaseNow(system.store, lease.id);
  expect(now.status).toBe('active');
  return {
    // listBlueprints is the catalog (cached in production, not in tests).
    calls: counted.calls.filter((c) => c !== 'listBlueprints'),
    items: counted.items,
    capacity: measured.stats.consumedCapacity,
    host: now.resourceId!,
    leaseId: lease.id,
  };
}

describe('a warm acquisition on a large pool', () => {
  it('reads a bounded page of the free index: 500 idle hosts cost what 10 do', async () => {
    const small = await idlePool(10);
    const onSmall = await acquire(small.system);
    // A small pool is read whole, as before: one query, one transaction.
    expect(onSmall.calls).toEqual(['listLiveResources', 'transact']);
    expect(onSmall.items.get('listLiveResources')).toBe(10);

    const large = await idlePool(500);
    const onLarge = await acquire(large.system);
    expect(onLarge.calls).toEqual(['listFreeResources', 'transact']);
    expect(onLarge.items.get('listFreeResources')).toBeLessThanOrEqual(FREE_PAGE);
    // One of the oldest free hosts of the lease's own shard, which holds more than a page.
    const ownShard = large.pool.filter(
      (r) => hashShard(r.id, FREE_SHARDS) === hashShard(onLarge.leaseId, FREE_SHARDS),
    );
    expect(ownShard.length).toBeGreaterThan(FREE_PAGE);
    expect(ownShard.slice(0, FREE_PAGE).map((r) => r.id)).toContain(onLarge.host);

    expect(onSmall.capacity).toBeGreaterThan(0);
    expect(onLarge.capacity).toBeLessThanOrEqual(1.5 * onSmall.capacity);
    // The same acquisition with the index hidden (the plan before it): the measure tells the
    // two apart, so the bound above is the index's doing.
    const withoutIndex = await acquire(large.system, undefined, (store) => withoutFreeIndex(store));
    expect(withoutIndex.calls).toEqual(['listFreeResources', 'listLiveResources', 'transact']);
    expect(withoutIndex.items.get('listLiveResources')).toBe(500);
    expect(withoutIndex.capacity).toBeGreaterThan(1.5 * onSmall.capacity);
  });

  it("falls back to the full plan when the lease's shard has nothing usable", async () => {
    const { system, pool } = await idlePool(40);
    let own: Resource[] = [];
    const onMiss = await acquire(system, async (leaseId) => {
      // Every host in the lease's shard of the index turns suspect before its update runs.
      own = pool.filter((r) => hashShard(r.id, FREE_SHARDS) === hashShard(leaseId, FREE_SHARDS));
      for (const r of own) {
        await system.store.transact([
          {
            op: 'updateResource',
            id: r.id,
            type: r.type,
            expect: { status: 'active', version: r.version },
            set: { suspectSince: system.engine.iso(), suspectReason: 'test' },
          },
        ]);
      }
    });
    expect(own.length).toBeGreaterThan(0);
    expect(onMiss.calls).toEqual(['listFreeResources', 'listLiveResources', 'transact']);
    expect(onMiss.items.get('listFreeResources')).toBe(0);
    expect(own.map((r) => r.id)).not.toContain(onMiss.host);
  });

  it('reclaim racing the warm path: no lease is handed a resource being reclaimed', async () => {
    const { system, pool } = await idlePool(40);
    // Every host of the page is reclaimed between the page read and the lease's transactions.
    const reclaimed: string[] = [];
    const racing = (store: Store): Store =>
      new Proxy(store, {
        get(target, prop, receiver) {
          const value = Reflect.get(target, prop, receiver);
          if (prop !== 'listFreeResources') {
            return typeof value === 'function' ? value.bind(target) : value;
          }
          return async (...args: Parameters<Store['listFreeResources']>) => {
            const page = await target.listFreeResources(...args);
            for (const r of page) {
              if (await reclaimResource(system.engine, r, 'idle (reclaimed by the sweep)')) {
                reclaimed.push(r.id);
              }
            }
            return page;
          };
        },
      });
    const onRace = await acquire(system, undefined, racing);
    expect(reclaimed.length).toBeGreaterThan(0);
    // Each lost race is a cancelled transaction; then the full plan, on a host still live.
    expect(onRace.calls.filter((c) => c !== 'transact')).toEqual([
      'listFreeResources',
      'listLiveResources',
    ]);
    expect(reclaimed).not.toContain(onRace.host);
    expect(pool.map((r) => r.id)).toContain(onRace.host);
    for (const id of reclaimed) {
      expect(await system.store.getResource(id)).toMatchObject({
        status: 'released',
        leaseCount: 0,
      });
    }
    const acquired = (await readLogs(system.engine, onRace.leaseId)).filter(
      (e) => e.type === 'lease.acquired',
    );
    expect(acquired.map((e) => e.data?.resourceId)).toEqual([onRace.host]);
  });
});
