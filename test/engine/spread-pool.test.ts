/**
 * Live resources spread over pool-slot blocks (issue 14 item 4, store/schema.ts GSI1) seen from
 * the allocator: a pool of up to 32 is still one query per listLiveResources, a larger one is
 * one query per block, and either way the allocator sees the whole pool (a full pool makes a
 * lease wait, never a resource past the cap). Real DynamoDB Local; Query calls counted on the
 * store's client while listLiveResources runs.
 */
import { describe, expect, it } from 'vitest';
import type { Store } from '../../lambdas/core/ports.ts';
import { processUpdate, requestLease } from '../../lambdas/core/use-cases.ts';
import { takeFor } from '../support/recording.ts';
import { leaseNow, syntheticPool, testSystem } from '../support/system.ts';

const ci = { principal: 'arn:aws:iam::123456789012:role/ci' };

interface LiveRead {
  largestPool: unknown;
  queries: number;
  found: number;
}

/** A full pool of `hosts`, then one more lease's first update: what its live reads cost. */
async function fullPoolThenOneMore(hosts: number) {
  const system = await testSystem();
  const { engine, store, queue, engineWith } = system;
  await syntheticPool(engine, { limits: { maxResources: hosts, idleTtlSeconds: 3600 } });
  const holders = [];
  for (let i = 0; i < hosts; i++) {
    holders.push(await requestLease(engine, { type: 'host', owner: ci.principal }));
  }
  await queue.drain(engine);
  for (const h of holders) expect((await leaseNow(store, h.id)).status).toBe('active');

  const extra = await requestLease(engine, { type: 'host', owner: ci.principal });
  const msg = takeFor(queue, extra.id);
  const reads: LiveRead[] = [];
  const watched = new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      if (prop !== 'listLiveResources') return value.bind(target);
      return async (...args: unknown[]) => {
        const before = store.stats.byOperation.Query ?? 0;
        const answer = await value.apply(target, args);
        reads.push({
          largestPool: args[1],
          queries: (store.stats.byOperation.Query ?? 0) - before,
          found: answer.length,
        });
        return answer;
      };
    },
  }) as Store;
  await processUpdate(engineWith({ store: watched }), msg);
  return { ...system, reads, extra };
}

describe('live resources spread over pool-slot blocks', () => {
  it('a pool of 32 is one query per listLiveResources, and the allocator sees all of it', async () => {
    const { store, reads, extra } = await fullPoolThenOneMore(32);
    expect(reads.length).toBeGreaterThan(0);
    for (const read of reads) expect(read).toEqual({ largestPool: 32, queries: 1, found: 32 });
    expect((await leaseNow(store, extra.id)).status).toBe('pending');
    expect(await store.listLiveResources('host')).toHaveLength(32);
  });

  it('a pool of 40 spans two blocks: two queries, the whole pool, the cap held', async () => {
    const { store, reads, extra } = await fullPoolThenOneMore(40);
    expect(reads.length).toBeGreaterThan(0);
    for (const read of reads) expect(read).toEqual({ largestPool: 40, queries: 2, found: 40 });
    expect((await leaseNow(store, extra.id)).status).toBe('pending');
    // The spread is real: block 0 alone holds pool slots 0..31.
    expect(await store.listLiveResources('host', 32)).toHaveLength(32);
    expect(await store.listLiveResources('host')).toHaveLength(40);
  });
});
