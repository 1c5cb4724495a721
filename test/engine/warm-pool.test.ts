/**
 * Warm pools (`minIdle`) on DynamoDB Local with a deterministic delivery order: the sweep
 * pre-warms, leases take warm hosts without a launch, every idle-lowering event tops the pool
 * back up within the cap, idle reclaim stops at minIdle without churn, and draining or
 * disabled blueprints keep no pool. Launches are counted from the synthetic blueprint's own
 * host bill, never from what the engine believes.
 */
import { describe, expect, it } from 'vitest';
import { hostTimeline, syntheticScopes } from '../../lambdas/blueprints/synthetic/index.ts';
import { type Engine, makeEngine } from '../../lambdas/core/engine.ts';
import type { Resource } from '../../lambdas/core/model.ts';
import type { Store, WorkQueue } from '../../lambdas/core/ports.ts';
import {
  advanceSetup,
  processUpdate,
  readLogs,
  releaseLease,
  requestLease,
  runSweep,
  updateBlueprint,
} from '../../lambdas/core/use-cases.ts';
import { topUpWarmPool } from '../../lambdas/core/warm-pool.ts';
import { leaseNow, syntheticPool, testSystem } from '../support/system.ts';

const ci = { principal: 'ci' };
/** A queue that loses everything: to set a pool up without its create-time top-up. */
const nowhere: WorkQueue = { send: async () => {} };

async function pool(store: Store): Promise<{ live: Resource[]; idle: Resource[] }> {
  const live = (await store.listLiveResources('host')).filter((r) => r.blueprintId === 'pool');
  return {
    live,
    idle: live.filter((r) => r.status === 'active' && r.leaseCount === 0),
  };
}

async function bill(store: Store) {
  return hostTimeline(await store.listRecords(syntheticScopes.hosts('pool')));
}

async function launches(store: Store): Promise<number> {
  return (await bill(store)).events.filter((e) => e.event === 'created').length;
}

/** A blueprint written without its create-time top-up, so the sweep is what warms it. */
function quietPool(engineWith: (p: { queue: WorkQueue }) => Engine, limits: object) {
  return syntheticPool(engineWith({ queue: nowhere }), {
    limits: { maxResources: 5, idleTtlSeconds: 300, ...limits },
  });
}

describe('warm pools', () => {
  it('minIdle 3 on a pool capped at 5: within one sweep 3 idle hosts exist, logged as pre-warmed', async () => {
    const { engine, store, queue, engineWith } = await testSystem();
    await quietPool(engineWith, { minIdle: 3 });
    expect(queue.size).toBe(0);

    const report = await runSweep(engine);
    expect(report.warmPoolTopUps).toBe(1);
    await queue.drain(engine);

    const { live, idle } = await pool(store);
    expect(idle).toHaveLength(3);
    expect(live).toHaveLength(3);
    expect(await launches(store)).toBe(3);
    for (const r of idle) {
      expect(r).toMatchObject({ leaseCount: 0, uses: 0 });
      const first = (await readLogs(engine, r.id))[0]!;
      expect(first.type).toBe('resource.allocated');
      expect(first.message).toMatch(
        /^pre-warmed \(minIdle 3\) by blueprint 'pool' in blueprint:pool:slot:[0-4]; no lease yet$/,
      );
    }
    const onBlueprint = (await readLogs(engine, 'pool')).filter(
      (e) => e.type === 'blueprint.pre-warmed',
    );
    expect(onBlueprint.map((e) => e.message).sort()).toEqual(
      idle.map((r) => `pre-warmed (minIdle 3) host ${r.id} in ${r.slotLocks[0]}`).sort(),
    );

    // A full pool: the next sweep sends nothing at all.
    const again = await runSweep(engine);
    expect(again).toMatchObject({ warmPoolTopUps: 0, resourcesToReclaimOrCheck: 0 });
    expect(queue.size).toBe(0);
  });

  it('3 leases activate on pre-warmed hosts without a launch; the pool tops back up, never above the cap', async () => {
    const { engine, store, queue } = await testSystem();
    await syntheticPool(engine, { limits: { maxResources: 5, minIdle: 3, idleTtlSeconds: 300 } });
    await queue.drain(engine); // the create-time top-up
    const warm = new Set((await pool(store)).idle.map((r) => r.id));
    expect(warm.size).toBe(3);
    expect(await launches(store)).toBe(3);

    const leases = [];
    const topUps = [];
    for (let i = 0; i < 3; i++) {
      const lease = await requestLease(engine, { type: 'host', owner: ci.principal });
      // The lease's own update acquires and activates it at once on a warm host; the top-up
      // it asks for waits until all three are served.
      let msg = queue.take()!;
      while (msg.kind === 'blueprint') {
        topUps.push(msg);
        msg = queue.take()!;
      }
      expect(msg).toMatchObject({ kind: 'lease', id: lease.id });
      const { outcome } = await processUpdate(engine, msg);
      expect(outcome).toMatchObject({ action: 'activated' });
      const active = await leaseNow(store, lease.id);
      expect(active.status).toBe('active');
      expect(warm.has(active.resourceId!)).toBe(true);
      leases.push(active);
    }
    expect(new Set(leases.map((l) => l.resourceId)).size).toBe(3);
    expect(await launches(store)).toBe(3); // not one launch for the three leases

    // Each acquisition asked for a top-up; the pool refills as far as the cap allows.
    topUps.push(queue.take()!);
    expect(topUps).toMatchObject(Array(3).fill({ kind: 'blueprint', id: 'pool' }));
    expect(queue.size).toBe(0);
    for (const msg of topUps) queue.redeliver(msg);
    await queue.drain(engine);
    const after = await pool(store);
    expect(after.live).toHaveLength(5);
    expect(after.idle).toHaveLength(2); // 3 wanted, 2 slots left: the cap wins
    expect((await bill(store)).maxAlive).toBe(5);
    expect(await launches(store)).toBe(5);

    // Released, all five are idle; past the idle TTL the sweep trims to exactly minIdle.
    for (const lease of leases) await releaseLease(engine, lease.id, ci);
    await queue.drain(engine);
    expect((await pool(store)).idle).toHaveLength(5);
    engine.forgetBlueprints();
    const clock = queue.clock;
    clock.advance(301_000);
    const trim = await runSweep(engine);
    expect(trim).toMatchObject({ resourcesToReclaimOrCheck: 2, warmPoolTopUps: 0 });
    await queue.drain(engine);
    const trimmed = await pool(store);
    expect(trimmed.idle).toHaveLength(3);
    expect(trimmed.live).toHaveLength(3);

    // An update of a kept one (a duplicate sweep's, say) counts the pool and keeps it.
    const kept = trimmed.idle[0]!;
    expect(await processUpdate(engine, { kind: 'resource', id: kept.id })).toEqual({
      kind: 'resource',
      outcome: { action: 'none' },
    });
    expect((await store.getResource(kept.id))!.status).toBe('active');

    // The three kept are idle past their TTL, sweep after sweep: no update, no log line.
    const logged = await Promise.all(
      trimmed.idle.map(async (r) => (await readLogs(engine, r.id)).length),
    );
    for (let i = 0; i < 3; i++) {
      clock.advance(120_000);
      expect(await runSweep(engine)).toMatchObject({
        resourcesToReclaimOrCheck: 0,
        warmPoolTopUps: 0,
      });
      expect(queue.size).toBe(0);
    }
    expect(
      await Promise.all(trimmed.idle.map(async (r) => (await readLogs(engine, r.id)).length)),
    ).toEqual(logged);
    expect((await bill(store)).maxAlive).toBe(5);
  });

  it('reclaim on release: the used host goes and the pool tops back up to minIdle', async () => {
    const { engine, store, queue } = await testSystem();
    await syntheticPool(engine, {
      limits: { maxResources: 5, minIdle: 3, reclaimOnRelease: true },
    });
    await queue.drain(engine);
    const lease = await requestLease(engine, { type: 'host', owner: ci.principal });
    await queue.drain(engine);
    const active = await leaseNow(store, lease.id);
    expect(active.status).toBe('active');
    expect((await pool(store)).idle).toHaveLength(3); // topped up after the acquisition
    await releaseLease(engine, lease.id, ci);
    await queue.drain(engine);

    const host = (await store.getResource(active.resourceId!))!;
    expect(host).toMatchObject({
      status: 'destroyed',
      endReason: 'reclaimed on release (one use per resource)',
    });
    const after = await pool(store);
    expect(after.idle).toHaveLength(3);
    expect(after.live).toHaveLength(3);
    expect(after.idle.every((r) => r.uses === 0)).toBe(true);
    expect(await launches(store)).toBe(4);
  });

  it('a draining blueprint is not pre-warmed and its idle hosts go below minIdle; a disabled one is not pre-warmed', async () => {
    const { engine, store, queue } = await testSystem();
    await syntheticPool(engine, { limits: { maxResources: 5, minIdle: 2 } });
    await queue.drain(engine);
    expect((await pool(store)).idle).toHaveLength(2);

    await updateBlueprint(engine, 'pool', { state: 'draining' });
    await queue.drain(engine);
    expect((await pool(store)).live).toEqual([]);
    expect(await runSweep(engine)).toMatchObject({ warmPoolTopUps: 0 });
    expect(await topUpWarmPool(engine, { id: 'pool' })).toEqual({
      action: 'none',
      detail: 'blueprint is draining; no warm pool',
    });

    await updateBlueprint(engine, 'pool', { state: 'disabled' });
    await queue.drain(engine);
    expect(await runSweep(engine)).toMatchObject({ warmPoolTopUps: 0 });
    expect(await topUpWarmPool(engine, { id: 'pool' })).toMatchObject({ action: 'none' });
    expect((await pool(store)).live).toEqual([]);
    expect(await launches(store)).toBe(2);

    // Enabled again, the pool warms at once.
    await updateBlueprint(engine, 'pool', { state: 'enabled' });
    await queue.drain(engine);
    expect((await pool(store)).idle).toHaveLength(2);
  });

  it('a schedule window raises minIdle while it is open', async () => {
    const { engine, store, queue, engineWith } = await testSystem();
    const days = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
    const tomorrow = days[(new Date(queue.clock.now()).getUTCDay() + 1) % 7];
    await quietPool(engineWith, {
      minIdle: 1,
      minIdleSchedule: [{ days: tomorrow, from: '00:00', to: '24:00', minIdle: 4 }],
    });
    await runSweep(engine);
    await queue.drain(engine);
    expect((await pool(store)).idle).toHaveLength(1); // the window is not open today

    await updateBlueprint(engine, 'pool', {
      limits: { minIdleSchedule: [{ from: '00:00', to: '24:00', minIdle: 4 }] },
    });
    await queue.drain(engine);
    expect((await pool(store)).idle).toHaveLength(4);
    expect(
      (await readLogs(engine, 'pool')).filter((e) =>
        e.message.startsWith('pre-warmed (minIdle 4)'),
      ),
    ).toHaveLength(3);
  });

  it('a pre-warm racing a lease for the last pool slot: one host, and the lease is served on it', async () => {
    const { engine, store, queue, engineWith } = await testSystem();
    await quietPool(engineWith, { maxResources: 1, minIdle: 1 });
    const lease = await requestLease(engine, { type: 'host', owner: ci.principal });
    const msg = queue.take()!;
    await Promise.all([processUpdate(engine, msg), topUpWarmPool(engine, { id: 'pool' })]);
    await queue.drain(engine);

    const served = await leaseNow(store, lease.id);
    expect(served.status).toBe('active');
    expect(await launches(store)).toBe(1);
    expect((await bill(store)).maxAlive).toBe(1);
    expect((await pool(store)).live.map((r) => r.id)).toEqual([served.resourceId]);
  });

  it('a warm pool whose hosts fail to start stops pre-warming when its circuit breaker opens', async () => {
    const { engine, store, queue, engineWith } = await testSystem();
    await quietPool(engineWith, { minIdle: 2 });
    await updateBlueprint(engineWith({ queue: nowhere }), 'pool', {
      config: { activation: { failTimes: 100 } },
    });
    await runSweep(engine);
    await queue.drain(engine, { maxSteps: 200 });

    // Each failure is counted; past the threshold (3) the breaker holds the pool empty.
    const blueprint = (await store.getBlueprint('pool'))!;
    expect(blueprint.health.failureCount).toBeGreaterThanOrEqual(3);
    expect(blueprint.health.backoffUntil).toBeDefined();
    expect(await topUpWarmPool(engine, { id: 'pool' })).toMatchObject({
      action: 'none',
      detail: expect.stringMatching(/^backing off until /),
    });
    const attempts = (await store.listRecords(syntheticScopes.activationFailures('pool'))).length;
    expect(attempts).toBeLessThanOrEqual(4);
    expect((await pool(store)).live).toEqual([]);
  });

  it('reclaim to make room for a lease that cannot use the idle hosts never goes below minIdle', async () => {
    const { engine, store, queue } = await testSystem();
    await syntheticPool(engine, { limits: { maxResources: 2, minIdle: 2 } });
    await queue.drain(engine);
    expect((await pool(store)).idle).toHaveLength(2);
    // The blueprint's new hosts have gpu=yes from now on; the idle ones were made before.
    // (A blueprint that never sets gpu cannot serve a gpu=yes lease at all: the lease breaks.)
    await updateBlueprint(engine, 'pool', { attributes: { platform: 'linux', gpu: 'yes' } });
    await queue.drain(engine);

    // No idle host has gpu=yes; the pool is at its cap and every idle host is kept warm.
    const lease = await requestLease(engine, {
      type: 'host',
      owner: ci.principal,
      attributes: { gpu: 'yes' },
    });
    const first = await processUpdate(engine, queue.take()!);
    expect(first.outcome).toMatchObject({ action: 'waited' });
    expect((await pool(store)).idle).toHaveLength(2);
    expect(queue.sent.filter((m) => m.reason?.startsWith('reclaimed'))).toEqual([]);

    // With minIdle 1 one idle host is above it: that one is reclaimed to make room.
    await updateBlueprint(engine, 'pool', { limits: { minIdle: 1 } });
    await queue.drain(engine, { until: async () => (await pool(store)).live.length < 2 });
    const logs = await Promise.all(
      (await bill(store)).events
        .filter((e) => e.event === 'created')
        .map(async (e) => (await readLogs(engine, e.resourceId)).map((l) => l.message)),
    );
    expect(logs.flat()).toContain(`reclaimed to make room for lease ${lease.id}`);
  });

  it('a pre-warmed resource whose activation message is lost is re-driven by the sweep', async () => {
    const { engine, store, queue, clock } = await testSystem();
    await syntheticPool(engine, { limits: { maxResources: 2, minIdle: 1 } });
    queue.dropNext((m) => m.kind === 'resource' && m.reason === 'pre-warmed (minIdle 1)');
    await queue.drain(engine);
    const [stranded] = (await pool(store)).live;
    expect(stranded).toMatchObject({ status: 'pending', leaseCount: 0 });
    // The sweep lists only active resources, so it asks for a top-up; the top-up counts the
    // pending one exactly and launches nothing more.
    expect(await runSweep(engine)).toMatchObject({ redrivenResources: 0, warmPoolTopUps: 1 });
    const topUp = queue.take()!;
    expect(await processUpdate(engine, topUp)).toEqual({
      kind: 'blueprint',
      outcome: { action: 'none', detail: '1 idle (minIdle 1), 1 live' },
    });
    expect((await pool(store)).live).toHaveLength(1);

    clock.advance(61_000);
    expect(await runSweep(engine)).toMatchObject({ redrivenResources: 1 });
    await queue.drain(engine);
    expect((await store.getResource(stranded!.id))!.status).toBe('active');
    expect(await launches(store)).toBe(1);
  });

  it('pre-warmed hosts that boot slowly are set up by the setup workflow; a lease meanwhile takes one and is woken when it is up', async () => {
    const { engine, store, queue, clock } = await testSystem();
    const started: string[] = [];
    const withWorkflow = makeEngine({
      store,
      queue,
      clock,
      registry: engine.registry,
      dataDir: engine.ctx.dataDir,
      settings: engine.settings,
      startSetup: async (resourceId) => {
        started.push(resourceId);
      },
    });
    await syntheticPool(withWorkflow, {
      limits: { maxResources: 3, minIdle: 2 },
      config: { activation: { delaySeconds: 30 } },
    });
    await queue.drain(withWorkflow);
    const warm = (await pool(store)).live;
    expect(warm.map((r) => r.status)).toEqual(['pending', 'pending']);
    expect(started.sort()).toEqual(warm.map((r) => r.id).sort());

    // A lease now acquires a booting warm host rather than launching a third.
    const lease = await requestLease(withWorkflow, { type: 'host', owner: ci.principal });
    await queue.drain(withWorkflow);
    const acquired = await leaseNow(store, lease.id);
    expect(acquired.status).toBe('acquired');
    expect(warm.map((r) => r.id)).toContain(acquired.resourceId);

    // The workflow's steps (as Step Functions would run them) bring both up.
    for (const r of warm) expect((await advanceSetup(withWorkflow, r.id)).state).toBe('pending');
    clock.advance(31_000);
    for (const r of warm) expect((await advanceSetup(withWorkflow, r.id)).state).toBe('active');
    await queue.drain(withWorkflow);
    expect((await leaseNow(store, lease.id)).status).toBe('active');
    // The acquisition lowered the idle count: the pool refilled within the cap of 3.
    const after = await pool(store);
    expect(after.live).toHaveLength(3);
    expect(await launches(store)).toBe(2); // the third is booting: created on its first step
    expect(started).toHaveLength(3);
  });

  it('idle reclaim reads the pool only for a blueprint that keeps one', async () => {
    const { engine, store, queue, clock, engineWith } = await testSystem();
    let poolReads = 0;
    const counting = new Proxy(store, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (prop === 'listLiveResources') poolReads++;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as Store;
    const counted = engineWith({ store: counting });
    await syntheticPool(engine, { limits: { maxResources: 3, idleTtlSeconds: 60 } });
    const lease = await requestLease(engine, { type: 'host', owner: ci.principal });
    await queue.drain(engine);
    const host = (await leaseNow(store, lease.id)).resourceId!;
    await releaseLease(engine, lease.id, ci);
    await queue.drain(engine);
    clock.advance(61_000);

    // No warm pool: the idle host is reclaimed without counting anything.
    expect(await processUpdate(counted, { kind: 'resource', id: host })).toMatchObject({
      outcome: { action: 'reclaimed' },
    });
    expect(poolReads).toBe(0);
    await queue.drain(engine);

    // With one, the same decision counts the pool once, and keeps the host.
    await updateBlueprint(engine, 'pool', { limits: { minIdle: 1 } });
    await queue.drain(engine);
    const [warm] = (await pool(store)).idle;
    clock.advance(61_000);
    expect(await processUpdate(counted, { kind: 'resource', id: warm!.id })).toMatchObject({
      outcome: { action: 'none' },
    });
    expect(poolReads).toBe(1);
  });

  it("the sweep's warm-pool check costs no DynamoDB call when the pool is full", async () => {
    const { engine, store, queue } = await testSystem();
    await syntheticPool(engine, { limits: { maxResources: 5, minIdle: 3 } });
    await queue.drain(engine);
    expect((await pool(store)).idle).toHaveLength(3);

    store.resetStats();
    await runSweep(engine);
    const withPool = store.stats.calls;
    expect(queue.size).toBe(0);

    await updateBlueprint(engine, 'pool', { limits: { minIdle: 0 } });
    store.resetStats();
    await runSweep(engine);
    expect(store.stats.calls).toBe(withPool);

    // The top-up itself, when the pool is full: the blueprint and one index Query.
    await updateBlueprint(engine, 'pool', { limits: { minIdle: 3 } });
    await queue.drain(engine);
    store.resetStats();
    expect(await topUpWarmPool(engine, { id: 'pool' })).toMatchObject({ action: 'none' });
    expect(store.stats.byOperation).toEqual({ GetItem: 1, Query: 1 });
  });
});
