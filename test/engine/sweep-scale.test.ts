/**
 * The sweep at scale (issue 14): with 5,000 live leases its orphan-lock step reads owners in
 * batches and finishes within its budget, and with a small budget it stops after a page and the
 * next run resumes from the stored cursor, until every lock has been looked at once. Real
 * DynamoDB Local; the live leases, resources and locks are written directly (as the allocator
 * would have left them), since driving 5,000 leases through the engine is not what is tested.
 */
import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { slotKeys } from '../../lambdas/core/engine.ts';
import type { Lease, Resource, SlotLock } from '../../lambdas/core/model.ts';
import type { TxWrite } from '../../lambdas/core/ports.ts';
import { DEFAULT_SWEEP_BUDGET_MS, runSweep } from '../../lambdas/core/sweep.ts';
import type { DynamoStore } from '../../lambdas/store/dynamo-store.ts';
import { syntheticPool, type TestSystem, testSystem } from '../support/system.ts';

const LEASES = 5_000;
const PER_RESOURCE = 20;
const RESOURCES = LEASES / PER_RESOURCE;

interface Fixture {
  live: string[];
  orphans: string[];
}

/** 5,000 active leases on 250 full resources, their locks, and locks nobody holds any more. */
async function liveFleet(system: TestSystem): Promise<Fixture> {
  const { store, clock } = system;
  await syntheticPool(system.engine, {
    limits: { maxResources: RESOURCES, leasesPerResource: PER_RESOURCE },
  });
  const at = new Date(clock.now() - 120_000).toISOString();
  const later = new Date(clock.now() + 3 * 3_600_000).toISOString();
  const lock = (key: string, ownerKind: SlotLock['ownerKind'], ownerId: string): TxWrite => ({
    op: 'takeSlotLock',
    lock: { key, ownerKind, ownerId, createdAt: at },
  });
  const live: string[] = [];
  const batches: TxWrite[][] = [];
  for (let r = 0; r < RESOURCES; r++) {
    const resourceId = `res-fleet-${r}`;
    const poolKey = slotKeys.pool('pool', r);
    const resource: Resource = {
      id: resourceId,
      blueprintId: 'pool',
      type: 'host',
      attributes: { platform: 'linux' },
      status: 'active',
      version: 1,
      slotLocks: [poolKey],
      capacity: PER_RESOURCE,
      leaseCount: PER_RESOURCE,
      uses: PER_RESOURCE,
      createdAt: at,
      activatedAt: at,
      updatedAt: at,
      data: {},
    };
    const writes: TxWrite[] = [
      { op: 'createResource', resource },
      lock(poolKey, 'resource', resourceId),
    ];
    live.push(poolKey);
    for (let j = 0; j < PER_RESOURCE; j++) {
      const key = slotKeys.lease(resourceId, j);
      const lease: Lease = {
        id: `lease-fleet-${r}-${j}`,
        type: 'host',
        attributes: {},
        owner: 'ci',
        status: 'active',
        version: 2,
        resourceId,
        blueprintId: 'pool',
        slotLocks: [key],
        requestedAt: at,
        activatedAt: at,
        updatedAt: at,
        expiresAt: later,
        sweepAt: later,
        waitSeq: 0,
        requeues: 0,
      };
      writes.push({ op: 'createLease', lease }, lock(key, 'lease', lease.id));
      live.push(key);
    }
    // 42 writes: two resources' worth per transaction stays under the 100-write limit.
    if (r % 2 === 0) batches.push(writes);
    else batches[batches.length - 1]?.push(...writes);
  }
  // Locks left behind: owners missing, destroyed, or no longer listing the lock.
  const orphans: string[] = [];
  const leftovers: TxWrite[] = [];
  for (let k = 0; k < 20; k++) {
    const key = `resource:res-gone-${k}:lease-slot:0`;
    orphans.push(key);
    leftovers.push(lock(key, 'lease', `lease-gone-${k}`));
  }
  for (let k = 0; k < 10; k++) {
    const key = `resource:res-fleet-${k}:lease-slot:${PER_RESOURCE + 1}`;
    orphans.push(key); // its owner lists another lock
    leftovers.push(lock(key, 'lease', `lease-fleet-${k}-0`));
  }
  batches.push(leftovers);
  await inParallel(batches, 4, (writes) => store.transact(writes));
  return { live, orphans };
}

async function inParallel<T>(items: T[], width: number, run: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await run(items[next++] as T);
    }),
  );
}

async function heldKeys(store: DynamoStore): Promise<Set<string>> {
  const keys = new Set<string>();
  let cursor: string | undefined;
  do {
    const page = await store.listSlotLocks({ limit: 1000, ...(cursor ? { cursor } : {}) });
    for (const l of page.items) keys.add(l.key);
    cursor = page.cursor;
  } while (cursor);
  return keys;
}

describe('the sweep at scale', () => {
  it('with 5,000 live leases the orphan-lock step finishes within its budget, reading owners in batches', async () => {
    const system = await testSystem();
    const { live, orphans } = await liveFleet(system);
    const { store, engine } = system;
    store.resetStats();
    const started = performance.now();
    const report = await runSweep(engine);
    const elapsed = performance.now() - started;
    console.log(`orphan-lock sweep of ${report.locksChecked} locks: ${Math.round(elapsed)} ms`);
    expect(report.locksComplete).toBe(true);
    expect(report.unfinished).toEqual([]);
    expect(report.locksChecked).toBe(live.length + orphans.length);
    expect(report.locksFreed).toBe(orphans.length);
    expect(elapsed).toBeLessThan(DEFAULT_SWEEP_BUDGET_MS);
    // Owners are read 100 at a time, never one GetItem per owner.
    const ops = store.stats.byOperation;
    expect(ops.GetItem ?? 0).toBeLessThan(10);
    expect(ops.BatchGetItem ?? 0).toBeLessThanOrEqual(2 * Math.ceil(report.locksChecked / 100));
    const held = await heldKeys(store);
    expect(live.filter((k) => !held.has(k))).toEqual([]);
    expect(orphans.filter((k) => held.has(k))).toEqual([]);
  }, 180_000);

  it('with a small budget each run stops after a page and the next resumes from its cursor', async () => {
    const system = await testSystem();
    const { live, orphans } = await liveFleet(system);
    const { store, engine, clock } = system;
    const total = live.length + orphans.length;
    const runs: Array<{ checked: number; freed: number; resumed: boolean; complete: boolean }> = [];
    for (let i = 0; i < 100; i++) {
      // No time at all: one page per run. The clock moves on as between two sweeps.
      const report = await runSweep(engine, { budgetMs: 0 });
      runs.push({
        checked: report.locksChecked,
        freed: report.locksFreed,
        resumed: i > 0 && runs[i - 1]?.complete === false,
        complete: report.locksComplete,
      });
      if (!report.locksComplete) expect(report.unfinished).toContain('slot locks');
      if (report.locksComplete) break;
      clock.advance(60_000);
    }
    expect(runs.length).toBe(Math.ceil(total / 100));
    expect(runs.slice(0, -1).every((r) => r.checked === 100 && !r.complete)).toBe(true);
    // Every lock looked at exactly once over the runs, and every orphan freed once.
    expect(runs.reduce((n, r) => n + r.checked, 0)).toBe(total);
    expect(runs.reduce((n, r) => n + r.freed, 0)).toBe(orphans.length);
    const held = await heldKeys(store);
    expect(live.filter((k) => !held.has(k))).toEqual([]);
    expect(orphans.filter((k) => held.has(k))).toEqual([]);
    // The walk done, the next run starts again from the first lock.
    const again = await runSweep(engine, { budgetMs: 0 });
    expect(again.locksChecked).toBe(100);
    expect(again.locksFreed).toBe(0);
  }, 300_000);

  it('a stored cursor the store refuses restarts the walk instead of failing every sweep', async () => {
    const { engine, store, clock } = await testSystem();
    const bucket = Math.floor(clock.now() / (10 * 60_000));
    await store.appendRecord(`sweep:slot-locks:${bucket}`, { n: 1, cursor: 'not-a-cursor' });
    await store.transact([
      {
        op: 'takeSlotLock',
        lock: {
          key: 'resource:res-gone:lease-slot:0',
          ownerKind: 'lease',
          ownerId: 'lease-gone',
          createdAt: new Date(clock.now() - 120_000).toISOString(),
        },
      },
    ]);
    const report = await runSweep(engine);
    expect(report).toMatchObject({ locksChecked: 1, locksFreed: 1, locksComplete: true });
  });
});
