/**
 * The exact wait reason of each allocator outcome in the reference cases (issue 16): a reason
 * says what the allocator saw in that attempt — who won a race, what holds the pool's slots,
 * until when a breaker is open — and "being torn down" only when something is.
 */
import { describe, expect, it } from 'vitest';
import { reclaimResource } from '../../lambdas/core/allocator.ts';
import type { Engine } from '../../lambdas/core/engine.ts';
import {
  processUpdate,
  readLogs,
  releaseLease,
  requestLease,
} from '../../lambdas/core/use-cases.ts';
import {
  describeWaitCause,
  describeWaitCauses,
  describeWaitProgress,
  sameStory,
} from '../../lambdas/core/wait-reasons.ts';
import { raceAfter, takeFor } from '../support/recording.ts';
import { leaseNow, syntheticPool, testSystem } from '../support/system.ts';

const ci = { principal: 'arn:aws:iam::123456789012:role/ci' };

async function waitingLines(engine: Engine, id: string): Promise<string[]> {
  return (await readLogs(engine, id))
    .filter((e) => e.type === 'lease.waiting')
    .map((e) => e.message);
}

describe('wait reasons are what the allocator saw', () => {
  it('lost race, planned on a stale view: names the lease that took the slot, and no teardown', async () => {
    // Each lease's first attempt is the subject here: no joining the line at request (line.ts).
    const { engine, store, queue, engineWith } = await testSystem({ joinLine: false });
    await syntheticPool(engine, { limits: { maxResources: 1 } });
    const a = await requestLease(engine, { type: 'host', owner: ci.principal });
    const b = await requestLease(engine, { type: 'host', owner: ci.principal });
    const aMsg = takeFor(queue, a.id);
    const bMsg = takeFor(queue, b.id);
    // B plans with an empty pool; A's update allocates the only host before B writes.
    const racing = raceAfter(store, 'listLiveResources', () => processUpdate(engine, aMsg));
    await processUpdate(engineWith({ store: racing }), bMsg);

    const host = (await leaseNow(store, a.id)).resourceId!;
    const expected = `lost the race for blueprint 'pool' slot 0 to lease ${a.id} (its new host ${host}); blueprint 'pool' is at its limit of 1 host, all leased`;
    expect((await leaseNow(store, b.id)).waitReason).toBe(expected);
    expect(await waitingLines(engine, b.id)).toEqual([
      `waiting: ${expected}; no leases ahead of this one`,
    ]);
  });

  it('lost race in the allocation transaction: the pool slot went to the other lease', async () => {
    const { engine, store, queue, engineWith } = await testSystem();
    await syntheticPool(engine, { limits: { maxResources: 1 } });
    const a = await requestLease(engine, { type: 'host', owner: ci.principal });
    const b = await requestLease(engine, { type: 'host', owner: ci.principal });
    const aMsg = takeFor(queue, a.id);
    const bMsg = takeFor(queue, b.id);
    // B saw slot 0 free in its exact read; A takes it before B's transaction.
    const racing = raceAfter(store, 'getSlotLocks', () => processUpdate(engine, aMsg));
    await processUpdate(engineWith({ store: racing }), bMsg);

    const host = (await leaseNow(store, a.id)).resourceId!;
    expect((await leaseNow(store, b.id)).waitReason).toBe(
      `lost the race for blueprint 'pool' slot 0 to lease ${a.id} (its new host ${host})`,
    );
  });

  it('lost race for an idle host: names the lease now holding it', async () => {
    const { engine, store, queue, engineWith } = await testSystem();
    await syntheticPool(engine, { limits: { maxResources: 1, idleTtlSeconds: 3600 } });
    const first = await requestLease(engine, { type: 'host', owner: ci.principal });
    await queue.drain(engine);
    await releaseLease(engine, first.id, ci);
    await queue.drain(engine);
    const idle = (await leaseNow(store, first.id)).resourceId!;
    expect((await store.getResource(idle))!).toMatchObject({ status: 'active', leaseCount: 0 });

    const a = await requestLease(engine, { type: 'host', owner: ci.principal });
    const b = await requestLease(engine, { type: 'host', owner: ci.principal });
    const aMsg = takeFor(queue, a.id);
    const bMsg = takeFor(queue, b.id);
    const racing = raceAfter(store, 'listLiveResources', () => processUpdate(engine, aMsg));
    await processUpdate(engineWith({ store: racing }), bMsg);

    expect(await leaseNow(store, a.id)).toMatchObject({ status: 'active', resourceId: idle });
    expect((await leaseNow(store, b.id)).waitReason).toBe(
      `lost the race for ${idle} to lease ${a.id}; blueprint 'pool' is at its limit of 1 host, all leased`,
    );
  });

  it('cap with booting hosts: counts them as booting, not leased or torn down', async () => {
    const { engine, store, queue } = await testSystem();
    await syntheticPool(engine, { config: { activation: { delaySeconds: 30 } } });
    const a = await requestLease(engine, { type: 'host', owner: ci.principal });
    const b = await requestLease(engine, { type: 'host', owner: ci.principal });
    await processUpdate(engine, takeFor(queue, a.id));
    await processUpdate(engine, takeFor(queue, b.id));
    for (const id of [a.id, b.id]) expect((await leaseNow(store, id)).status).toBe('acquired');

    const c = await requestLease(engine, { type: 'host', owner: ci.principal });
    await processUpdate(engine, takeFor(queue, c.id));
    expect(await waitingLines(engine, c.id)).toEqual([
      "waiting: blueprint 'pool' is at its limit of 2 hosts: 2 booting; no leases ahead of this one",
    ]);
  });

  it('cap with all leased: says all leased, with the place in line', async () => {
    const { engine, store, queue } = await testSystem();
    await syntheticPool(engine, { limits: { maxResources: 1 } });
    const holder = await requestLease(engine, { type: 'host', owner: ci.principal });
    await queue.drain(engine);
    expect((await leaseNow(store, holder.id)).status).toBe('active');
    const waiting = await requestLease(engine, { type: 'host', owner: ci.principal });
    await processUpdate(engine, takeFor(queue, waiting.id));
    expect((await leaseNow(store, waiting.id)).waitReason).toBe(
      "blueprint 'pool' is at its limit of 1 host, all leased",
    );
  });

  it('breaker open: says until when, after how many failures, and the last one', async () => {
    const { engine, store, queue } = await testSystem({
      breakerThreshold: 2,
      breakerBaseSeconds: 20,
    });
    await syntheticPool(engine, {
      limits: { maxResources: 1 },
      config: { allocation: { failTimes: 3, failMessage: 'capacity' } },
    });
    const lease = await requestLease(engine, { type: 'host', owner: ci.principal });
    await queue.drain(engine, {
      until: async () => /backing off/.test((await leaseNow(store, lease.id)).waitReason ?? ''),
    });
    const health = (await store.getBlueprint('pool'))!.health;
    expect(health.backoffUntil).toBeDefined();
    expect((await leaseNow(store, lease.id)).waitReason).toBe(
      `blueprint 'pool' is backing off after 2 failed allocations until ${health.backoffUntil} (last: ${health.lastFailure})`,
    );
    expect(health.lastFailure).toMatch(/^allocation failed: .*capacity/);
  });

  it('teardown in progress: only then says a host is being torn down', async () => {
    const { engine, store, queue } = await testSystem();
    await syntheticPool(engine, { limits: { maxResources: 1, idleTtlSeconds: 3600 } });
    const first = await requestLease(engine, { type: 'host', owner: ci.principal });
    await queue.drain(engine);
    await releaseLease(engine, first.id, ci);
    await queue.drain(engine);
    const idle = (await store.getResource((await leaseNow(store, first.id)).resourceId!))!;
    // Reclaimed: released, its pool slot still held until its teardown message is handled.
    expect(await reclaimResource(engine, idle, 'idle')).toBe(true);

    const lease = await requestLease(engine, { type: 'host', owner: ci.principal });
    await processUpdate(engine, takeFor(queue, lease.id));
    expect((await store.getResource(idle.id))!.status).toBe('released');
    expect((await leaseNow(store, lease.id)).waitReason).toBe(
      "blueprint 'pool' is at its limit of 1 host: 1 being torn down",
    );
    await queue.drain(engine);
    expect((await leaseNow(store, lease.id)).status).toBe('active');
  });
});

describe('wait reasons in words', () => {
  it('renders each cause once, and the progress line with the place in line', () => {
    const pool = {
      kind: 'at-limit',
      blueprintId: 'p',
      type: 'host',
      limit: 3,
      booting: 1,
      leased: 1,
      unsuitable: 0,
      tearingDown: 1,
    } as const;
    expect(describeWaitCause(pool)).toBe(
      "blueprint 'p' is at its limit of 3 hosts: 1 booting, 1 leased, 1 being torn down",
    );
    expect(describeWaitCauses([pool, pool])).toBe(describeWaitCause(pool));
    expect(describeWaitCause({ kind: 'lost-race', slot: 'res-1', nowStatus: 'released' })).toBe(
      'res-1 was released meanwhile',
    );
    expect(
      describeWaitProgress({
        leaseId: 'lease-1',
        status: 'pending',
        elapsedSeconds: 12.4,
        ahead: 2,
        reason: 'x',
      }),
    ).toBe('lease-1 pending for 12s, 2 leases ahead of this one: x');
  });

  it('tells a new story (a new log line) only when more than the numbers changed', () => {
    const booting = "blueprint 'p' is at its limit of 2 hosts: 2 booting";
    expect(sameStory(booting, undefined)).toBe(false);
    expect(sameStory(booting, "blueprint 'p' is at its limit of 3 hosts: 3 booting")).toBe(true);
    expect(
      sameStory(booting, "blueprint 'p' is at its limit of 2 hosts: 1 booting, 1 leased"),
    ).toBe(false);
    expect(
      sameStory(
        'lost the race for res-1 to lease lease-a1',
        'lost the race for res-1 to lease lease-b1',
      ),
    ).toBe(false);
  });
});
