/**
 * The warm path under concurrency (issue 14 item 4): a pool big enough that the allocator reads
 * the free-candidate index instead of every live resource (40 idle hosts, above SMALL_POOL), 16
 * workers on the SQS emulator with duplicate deliveries, sweeps running, every lease released
 * as soon as it is active (so hosts leave and re-enter the index all the time), leases per host
 * 1 and 2. Checked from recorded history: at no instant more leases on a host than its
 * capacity, every lease activated exactly once, no host made (the pool served them all), and
 * afterwards every host back in the index: no free host missing from it.
 */
import { describe, expect, it } from 'vitest';
import { seedIdlePool } from '../../bench/lib/idle-pool.ts';
import { SMALL_POOL } from '../../lambdas/core/free-candidates.ts';
import type { Lease, Resource } from '../../lambdas/core/model.ts';
import {
  createBlueprint,
  readLogs,
  releaseLease,
  requestLease,
  runSweep,
} from '../../lambdas/core/use-cases.ts';
import { hashShard } from '../../lambdas/store/keys.ts';
import { FREE_SHARDS } from '../../lambdas/store/schema.ts';
import { commitBounds, peakPerResource } from '../support/commit-bounds.ts';
import { seeded, sqsEngine, startDuplicatingWorkers } from '../support/duplicating-workers.ts';
import { waitFor } from '../support/env.ts';

const HOSTS = 40;
const LEASES = 60;
const WORKERS = 16;
const DUPLICATE_RATE = 0.2;

describe.each([1, 2])('the free index under contention, %i lease(s) per host', (perHost) => {
  it(`${HOSTS} idle hosts, ${LEASES} leases, ${WORKERS} workers, duplicate deliveries`, async () => {
    expect(HOSTS).toBeGreaterThan(SMALL_POOL);
    const bounds = commitBounds();
    const { engine, store, client, queueUrl } = await sqsEngine(
      `free-contention-${perHost}`,
      {
        blueprintCacheMs: 1000,
        backoffBaseSeconds: 1,
        backoffCapSeconds: 2,
        strandAfterSeconds: 60,
      },
      bounds.wrap,
    );
    const blueprint = await createBlueprint(engine, {
      id: 'pool',
      type: 'synthetic',
      resourceType: 'host',
      limits: {
        maxResources: HOSTS,
        leasesPerResource: perHost,
        reclaimOnRelease: false,
        idleTtlSeconds: 3600,
        idleGraceSeconds: 3600,
      },
    });
    const pool = await seedIdlePool(store, blueprint, HOSTS, engine.iso(-60_000));
    // Count the warm path's reads on the engine's own store.
    let freeReads = 0;
    const listFree = store.listFreeResources.bind(store);
    store.listFreeResources = (...args) => {
      freeReads++;
      return listFree(...args);
    };

    const { failures, duplicates, stop } = startDuplicatingWorkers({
      client,
      queueUrl,
      engine,
      workers: WORKERS,
      duplicateRate: DUPLICATE_RATE,
      random: seeded(4400 + perHost),
    });
    let sweeping = true;
    const sweeper = (async () => {
      while (sweeping) await runSweep(engine);
    })();
    let leases: Lease[] = [];
    try {
      leases = await Promise.all(
        Array.from({ length: LEASES }, () => requestLease(engine, { type: 'host', owner: 'ci' })),
      );
      const released = new Set<string>();
      await waitFor(
        async () => {
          for (const lease of (await store.listLeasesByStatus('active', { limit: 100 })).items) {
            if (released.has(lease.id)) continue;
            released.add(lease.id);
            await releaseLease(engine, lease.id, { principal: 'ci' });
          }
          return released.size === LEASES;
        },
        { timeoutMs: 180_000, intervalMs: 50, message: `all ${LEASES} leases active` },
      );
      await waitFor(
        async () =>
          (await Promise.all(leases.map((l) => store.getLease(l.id)))).every(
            (l) => l?.status === 'destroyed',
          ),
        { timeoutMs: 60_000, intervalMs: 200, message: 'every lease destroyed' },
      );
    } finally {
      sweeping = false;
      await sweeper;
      await stop();
    }

    expect(failures).toEqual([]);
    const final = (await Promise.all(leases.map((l) => store.getLease(l.id)))) as Lease[];
    for (const lease of final) {
      const types = (await readLogs(engine, lease.id)).map((e) => e.type);
      expect(
        types.filter((t) => t === 'lease.activated'),
        lease.id,
      ).toHaveLength(1);
    }
    expect(Math.max(...peakPerResource(final, bounds).values())).toBeLessThanOrEqual(perHost);
    // The pool served every lease: no host was made, the seeded ones are all still live.
    const live = await store.listLiveResources('host');
    expect(live.map((r) => r.id).sort()).toEqual(pool.map((r) => r.id).sort());
    expect(live.every((r) => r.status === 'active' && r.leaseCount === 0)).toBe(true);
    // The warm path was taken: each lease's first attempt reads the index.
    expect(freeReads).toBeGreaterThanOrEqual(LEASES);
    // No free host is missing from the index once the dust settles.
    const indexed = new Map<string, Resource>();
    for (let shard = 0; shard < FREE_SHARDS; shard++) {
      let n = 0;
      while (hashShard(`reader-${n}`, FREE_SHARDS) !== shard) n++;
      for (const r of await listFree('pool', `reader-${n}`, 100)) indexed.set(r.id, r);
    }
    expect([...indexed.keys()].sort()).toEqual(pool.map((r) => r.id).sort());
    console.log(
      `free-index contention (${perHost}/host): ${LEASES} leases on ${
        new Set(final.map((l) => l.resourceId)).size
      } of ${HOSTS} hosts, ${freeReads} index reads, ${duplicates()} duplicate deliveries`,
    );
  }, 300_000);
});
