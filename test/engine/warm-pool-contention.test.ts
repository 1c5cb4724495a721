/**
 * Warm pool under contention: a synthetic pool capped at 5 hosts keeping 3 idle (minIdle 3),
 * one lease per host and reclaim on release, 30 leases requested at once, 40 concurrent workers
 * pulling from the SQS emulator with duplicate deliveries injected, and three sweeps at a time
 * running over and over. Every pre-warm contends for the same pool slot locks as the leases,
 * so the cap must hold exactly. Checked from the blueprint's own host bill, not by sampling.
 */
import { describe, expect, it } from 'vitest';
import { hostTimeline, syntheticScopes } from '../../lambdas/blueprints/synthetic/index.ts';
import type { Lease } from '../../lambdas/core/model.ts';
import {
  createBlueprint,
  readLogs,
  releaseLease,
  requestLease,
  runSweep,
} from '../../lambdas/core/use-cases.ts';
import { seeded, sqsEngine, startDuplicatingWorkers } from '../support/duplicating-workers.ts';
import { waitFor } from '../support/env.ts';

const LEASES = 30;
const CAP = 5;
const MIN_IDLE = 3;
const WORKERS = 40;
const DUPLICATE_RATE = 0.15;
const SWEEPS_AT_ONCE = 3;

describe('warm pool contention', () => {
  it(`minIdle ${MIN_IDLE}, cap ${CAP}: ${LEASES} leases, ${WORKERS} workers, duplicate deliveries and duplicate sweeps`, async () => {
    const { engine, store, client, queueUrl } = await sqsEngine('warm-contention', {
      blueprintCacheMs: 1000,
      backoffBaseSeconds: 1,
      backoffCapSeconds: 4,
      strandAfterSeconds: 120,
    });
    await createBlueprint(engine, {
      id: 'pool',
      type: 'synthetic',
      resourceType: 'host',
      limits: {
        maxResources: CAP,
        leasesPerResource: 1,
        reclaimOnRelease: true,
        minIdle: MIN_IDLE,
      },
    });

    const random = seeded(1903);
    const {
      failures,
      duplicates,
      stop: stopWorkers,
    } = startDuplicatingWorkers({
      client,
      queueUrl,
      engine,
      workers: WORKERS,
      duplicateRate: DUPLICATE_RATE,
      random,
    });

    // Sweeps, several at once, over and over, for as long as the test runs.
    let sweeping = true;
    let sweeps = 0;
    const sweeper = (async () => {
      while (sweeping) {
        await Promise.all(
          Array.from({ length: SWEEPS_AT_ONCE }, async () => {
            await runSweep(engine);
            sweeps++;
          }),
        );
      }
    })();

    let leases: Lease[] = [];
    try {
      // The pool warms before any lease asks.
      await waitFor(
        async () => {
          const live = await store.listLiveResources('host');
          return live.filter((r) => r.status === 'active' && r.leaseCount === 0).length >= MIN_IDLE;
        },
        { timeoutMs: 60_000, intervalMs: 100, message: `${MIN_IDLE} idle hosts before any lease` },
      );

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
        { timeoutMs: 180_000, intervalMs: 100, message: `all ${LEASES} leases to become active` },
      );
      await waitFor(
        async () => {
          const ended = await Promise.all(leases.map((l) => store.getLease(l.id)));
          return ended.every((l) => l?.status === 'destroyed');
        },
        { timeoutMs: 60_000, intervalMs: 200, message: 'every lease to be destroyed' },
      );
      // Quiet again: the pool settles back at (at least) minIdle idle hosts, all active.
      await waitFor(
        async () => {
          const live = await store.listLiveResources('host');
          return (
            live.every((r) => r.status === 'active' && r.leaseCount === 0) &&
            live.length >= MIN_IDLE
          );
        },
        { timeoutMs: 60_000, intervalMs: 200, message: `the pool to settle at ${MIN_IDLE} idle` },
      );
    } finally {
      sweeping = false;
      await sweeper;
      await stopWorkers();
    }

    expect(failures).toEqual([]);
    const bill = hostTimeline(await store.listRecords(syntheticScopes.hosts('pool')));
    // The cap held at every moment of the host bill, pre-warms and leases together.
    expect(bill.maxAlive).toBeLessThanOrEqual(CAP);
    expect(bill.maxAlive).toBeGreaterThan(MIN_IDLE); // leases and pre-warms really overlapped
    // Within the cap, never below minIdle, and what is alive is exactly the live pool.
    const live = await store.listLiveResources('host');
    expect(live.length).toBeGreaterThanOrEqual(MIN_IDLE);
    expect(live.length).toBeLessThanOrEqual(CAP);
    expect(bill.alive.sort()).toEqual(live.map((r) => `synthetic-${r.id}`).sort());
    const slots = (await store.listSlotLocks()).items;
    expect(slots.map((l) => l.ownerId).sort()).toEqual(live.map((r) => r.id).sort());

    // Every lease was served, each on a host of its own (reclaim on release).
    const final = (await Promise.all(leases.map((l) => store.getLease(l.id)))) as Lease[];
    expect(final).toHaveLength(LEASES);
    for (const lease of final) expect(lease.activatedAt, lease.id).toBeDefined();
    expect(new Set(final.map((l) => l.resourceId)).size).toBe(LEASES);

    // Many were served by a host pre-warmed before their lease was even requested.
    let warmServed = 0;
    for (const lease of final) {
      const first = (await readLogs(engine, lease.resourceId!))[0];
      if (first?.message.startsWith(`pre-warmed (minIdle ${MIN_IDLE})`)) warmServed++;
    }
    expect(warmServed).toBeGreaterThanOrEqual(MIN_IDLE);
    console.log(
      `warm pool contention: ${LEASES} leases, cap ${CAP}, minIdle ${MIN_IDLE}, ${WORKERS} workers, ` +
        `${duplicates()} duplicate deliveries, ${sweeps} sweeps, peak ${bill.maxAlive} alive, ` +
        `${warmServed} leases served by pre-warmed hosts, ${live.length} idle at the end`,
    );
  }, 300_000);
});
