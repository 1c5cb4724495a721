/**
 * The hot path's calls (issue 14): what an acquisition and a teardown read and write, and how a
 * freed slot reaches a waiting lease. Counted on the real store (DynamoDB Local) through a
 * proxy that records which store methods an update called.
 */
import { describe, expect, it } from 'vitest';
import { renewLease } from '../../lambdas/core/lease-hold.ts';
import type { UpdateMessage } from '../../lambdas/core/model.ts';
import type { Store } from '../../lambdas/core/ports.ts';
import {
  processUpdate,
  readLogs,
  releaseLease,
  requestLease,
} from '../../lambdas/core/use-cases.ts';
import { countingStore as counting, takeFor } from '../support/recording.ts';
import { leaseNow, syntheticPool, testSystem } from '../support/system.ts';

const ci = { principal: 'arn:aws:iam::123456789012:role/ci' };

async function count(
  engine: Parameters<typeof processUpdate>[0],
  id: string,
  type: string,
): Promise<number> {
  return (await readLogs(engine, id)).filter((e) => e.type === type).length;
}

describe('the hot path', () => {
  it('a warm acquisition reads no lease: the request message carries it (one query, one transaction)', async () => {
    const { engine, store, queue, engineWith } = await testSystem();
    await syntheticPool(engine, { limits: { maxResources: 1, idleTtlSeconds: 3600 } });
    const first = await requestLease(engine, { type: 'host', owner: ci.principal });
    await queue.drain(engine);
    await releaseLease(engine, first.id, ci);
    await queue.drain(engine);
    const host = (await leaseNow(store, first.id)).resourceId!;

    const lease = await requestLease(engine, { type: 'host', owner: ci.principal });
    const msg = takeFor(queue, lease.id);
    expect(msg.lease).toMatchObject({ id: lease.id, status: 'pending', version: 0 });
    const { store: counted, calls } = counting(store);
    await processUpdate(engineWith({ store: counted }), msg);

    expect(await leaseNow(store, lease.id)).toMatchObject({ status: 'active', resourceId: host });
    // listBlueprints is the catalog (cached in production, not in tests).
    expect(calls.filter((c) => c !== 'listBlueprints')).toEqual(['listLiveResources', 'transact']);
  });

  it('a release with nothing to clean is the teardown too: one read, one transaction, no worker update', async () => {
    const { engine, store, queue, engineWith } = await testSystem();
    await syntheticPool(engine, { limits: { maxResources: 1, idleTtlSeconds: 3600 } });
    const lease = await requestLease(engine, { type: 'host', owner: ci.principal });
    await queue.drain(engine);
    const host = (await leaseNow(store, lease.id)).resourceId!;
    const waiting = await requestLease(engine, { type: 'host', owner: ci.principal });
    await processUpdate(engine, takeFor(queue, waiting.id));
    expect((await leaseNow(store, waiting.id)).status).toBe('pending');

    const { store: counted, calls } = counting(store);
    const sentBefore = queue.sent.length;
    const released = await releaseLease(engineWith({ store: counted }), lease.id, ci);
    expect(released).toMatchObject({ status: 'destroyed', endedAs: 'released', slotLocks: [] });
    expect(await leaseNow(store, lease.id)).toMatchObject({
      status: 'destroyed',
      endedAs: 'released',
      endReason: `released by ${ci.principal}`,
      slotLocks: [],
    });
    expect((await store.getResource(host))!).toMatchObject({ status: 'active', leaseCount: 0 });
    // The release's read, its one transaction, the wake-up's query for the freed slot and its
    // claim on the lease it wakes (wake.ts; with nobody waiting, the query is the last call).
    expect(calls.filter((c) => c !== 'listBlueprints')).toEqual([
      'getLease',
      'transact',
      'listLeasesByType',
      'transact',
    ]);
    // Nothing for a worker to tear down; the waiting lease is woken for the slot.
    const sent = queue.sent.slice(sentBefore);
    expect(sent.filter((m) => m.id === lease.id)).toEqual([]);
    expect(sent.filter((m) => m.wake).map((m) => m.id)).toEqual([waiting.id]);
    const log = (await readLogs(engine, lease.id)).map((e) => e.type);
    expect(log.slice(-2)).toEqual(['lease.released', 'lease.destroyed']);
    // Released again: nothing changes.
    expect((await releaseLease(engine, lease.id, ci)).status).toBe('destroyed');
    expect(await count(engine, lease.id, 'lease.destroyed')).toBe(1);
  });

  it('a released lease with nothing to clean is torn down in one transaction, reading neither lease nor resource', async () => {
    // The worker's teardown of a released lease is the subject: no release at once.
    const { engine, store, queue, engineWith } = await testSystem({ releaseAtOnce: false });
    await syntheticPool(engine, { limits: { maxResources: 1, idleTtlSeconds: 3600 } });
    const lease = await requestLease(engine, { type: 'host', owner: ci.principal });
    await queue.drain(engine);
    await releaseLease(engine, lease.id, ci);
    const msg = takeFor(queue, lease.id);
    expect(msg.lease).toMatchObject({ status: 'released' });

    const { store: counted, calls } = counting(store);
    await processUpdate(engineWith({ store: counted }), msg);
    const after = await leaseNow(store, lease.id);
    expect(after).toMatchObject({ status: 'destroyed', endedAs: 'released', slotLocks: [] });
    expect((await store.getResource(after.resourceId!))!).toMatchObject({
      status: 'active',
      leaseCount: 0,
    });
    expect(calls.filter((c) => c !== 'listBlueprints')).toEqual([
      'transact',
      // The wake-up for the freed slot (nobody waits: nothing is sent).
      'listLeasesByType',
    ]);
    expect(await count(engine, lease.id, 'lease.destroyed')).toBe(1);
  });

  it('a released lease whose resource left service meanwhile takes the usual teardown (the resource hears of it)', async () => {
    // The worker's teardown of a released lease is the subject: no release at once.
    const { engine, store, queue } = await testSystem({ releaseAtOnce: false });
    await syntheticPool(engine, { limits: { maxResources: 1, idleTtlSeconds: 3600 } });
    const lease = await requestLease(engine, { type: 'host', owner: ci.principal });
    await queue.drain(engine);
    const active = await leaseNow(store, lease.id);
    const r = (await store.getResource(active.resourceId!))!;
    await releaseLease(engine, lease.id, ci);
    const msg = takeFor(queue, lease.id);
    // The host breaks between the release and its teardown.
    await store.transact([
      {
        op: 'updateResource',
        id: r.id,
        type: r.type,
        expect: { status: 'active', version: r.version },
        set: { status: 'broken', endReason: 'test: host lost' },
      },
    ]);
    const sentBefore = queue.sent.length;
    await processUpdate(engine, msg);
    expect(await leaseNow(store, lease.id)).toMatchObject({ status: 'destroyed' });
    expect(queue.sent.slice(sentBefore)).toContainEqual(
      expect.objectContaining({ kind: 'resource', id: r.id }),
    );
    await queue.drain(engine);
    expect((await store.getResource(r.id))!.status).toBe('destroyed');
  });

  it('a stale snapshot changes nothing: the update reads the lease and carries on', async () => {
    const { engine, store, queue } = await testSystem();
    await syntheticPool(engine, { limits: { maxResources: 2, idleTtlSeconds: 3600 } });
    const lease = await requestLease(engine, { type: 'host', owner: ci.principal });
    const msg = takeFor(queue, lease.id);
    await processUpdate(engine, msg); // the first delivery serves it
    await queue.drain(engine);
    expect((await leaseNow(store, lease.id)).status).toBe('active');

    const outcome = await processUpdate(engine, msg); // a duplicate, with a pending snapshot
    expect(outcome).toMatchObject({ outcome: { action: 'none' } });
    await queue.drain(engine);
    expect(await count(engine, lease.id, 'lease.acquired')).toBe(1);
    expect(await count(engine, lease.id, 'lease.activated')).toBe(1);
    const live = await store.listLiveResources('host');
    expect(live.reduce((n, r) => n + r.leaseCount, 0)).toBe(1);
  });

  it('a freed slot wakes one waiting lease, the oldest that waited, never one before its first attempt', async () => {
    // Each lease's first attempt is the subject here: no joining the line at request (line.ts).
    const { engine, store, queue } = await testSystem({ joinLine: false, releaseAtOnce: false });
    await syntheticPool(engine, { limits: { maxResources: 1, idleTtlSeconds: 3600 } });
    const holder = await requestLease(engine, { type: 'host', owner: ci.principal });
    await queue.drain(engine);
    const older = await requestLease(engine, { type: 'host', owner: ci.principal });
    const younger = await requestLease(engine, { type: 'host', owner: ci.principal });
    await processUpdate(engine, takeFor(queue, older.id));
    await processUpdate(engine, takeFor(queue, younger.id));
    expect((await leaseNow(store, older.id)).waitSeq).toBe(1);
    expect((await leaseNow(store, younger.id)).waitSeq).toBe(1);
    // Requested before the slot frees, but not yet looked at: its own first message serves it.
    const newest = await requestLease(engine, { type: 'host', owner: ci.principal });

    await releaseLease(engine, holder.id, ci);
    const sentBefore = queue.sent.length;
    await processUpdate(engine, takeFor(queue, holder.id));
    const wakes = queue.sent.slice(sentBefore).filter((m) => m.wake);
    expect(wakes.map((m) => m.id)).toEqual([older.id]);
    expect(wakes.some((m) => m.id === newest.id)).toBe(false);

    await processUpdate(engine, takeFor(queue, older.id));
    expect(await leaseNow(store, older.id)).toMatchObject({ status: 'active' });
    expect((await leaseNow(store, younger.id)).status).toBe('pending');
  });

  it('a wake-up that finds its lease served passes it on to the next waiter', async () => {
    const { engine, store, queue } = await testSystem({ releaseAtOnce: false });
    await syntheticPool(engine, { limits: { maxResources: 1, idleTtlSeconds: 3600 } });
    const holder = await requestLease(engine, { type: 'host', owner: ci.principal });
    await queue.drain(engine);
    const a = await requestLease(engine, { type: 'host', owner: ci.principal });
    const b = await requestLease(engine, { type: 'host', owner: ci.principal });
    await processUpdate(engine, takeFor(queue, a.id));
    await processUpdate(engine, takeFor(queue, b.id));
    await releaseLease(engine, holder.id, ci);
    await processUpdate(engine, takeFor(queue, holder.id));
    // The slot's wake-up, as wakeWaitingLeases sends it to the oldest waiter, a.
    const wake: UpdateMessage = { kind: 'lease', id: a.id, reason: 'wake: test', wake: true };
    await processUpdate(engine, wake);
    expect((await leaseNow(store, a.id)).status).toBe('active');

    // The same wake-up again (a duplicate delivery, or a second slot's wake-up that chose the
    // same oldest lease): a has nothing to do with it, b is woken instead — once: the passed-on
    // wake-up is not passed on again (no wake storms).
    const sentBefore = queue.sent.length;
    await processUpdate(engine, wake);
    const passed = queue.sent.slice(sentBefore);
    expect(passed).toEqual([expect.objectContaining({ kind: 'lease', id: b.id })]);
    expect(passed[0]!.wake).toBeUndefined();
  });

  it('two wake-ups of one lease at once (a duplicate, a second slot free): the stale one wakes the next waiter', async () => {
    const { engine, store, queue, engineWith } = await testSystem({ releaseAtOnce: false });
    await syntheticPool(engine, { limits: { maxResources: 2, idleTtlSeconds: 3600 } });
    const h1 = await requestLease(engine, { type: 'host', owner: ci.principal });
    const h2 = await requestLease(engine, { type: 'host', owner: ci.principal });
    await queue.drain(engine);
    const a = await requestLease(engine, { type: 'host', owner: ci.principal });
    const b = await requestLease(engine, { type: 'host', owner: ci.principal });
    await processUpdate(engine, takeFor(queue, a.id));
    await processUpdate(engine, takeFor(queue, b.id));
    await releaseLease(engine, h1.id, ci);
    await releaseLease(engine, h2.id, ci);
    await processUpdate(engine, takeFor(queue, h1.id));
    // h2's slot wakes nobody: the index, a little behind, showed no lease waiting yet.
    const lagging = new Proxy(store, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (typeof value !== 'function') return value;
        if (prop !== 'listLeasesByType') return value.bind(target);
        return async () => ({ items: [] });
      },
    }) as Store;
    await processUpdate(engineWith({ store: lagging }), takeFor(queue, h2.id));
    // A freed slot woke the oldest waiter, a, and that wake-up is delivered twice at once (SQS
    // delivers at least once; before wake-ups were claimed, two slots freed at once did this).
    const first: UpdateMessage = { kind: 'lease', id: a.id, reason: 'wake: slot 1', wake: true };
    const second: UpdateMessage = { kind: 'lease', id: a.id, reason: 'wake: slot 1', wake: true };

    // The second wake-up is served while the first one plans: the first one's write is stale.
    let raced = false;
    const racing = new Proxy(store, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (typeof value !== 'function') return value;
        if (prop !== 'listLiveResources') return value.bind(target);
        return async (...args: unknown[]) => {
          const answer = await value.apply(target, args);
          if (!raced) {
            raced = true;
            await processUpdate(engine, second);
          }
          return answer;
        };
      },
    }) as Store;
    const sentBefore = queue.sent.length;
    const outcome = await processUpdate(engineWith({ store: racing }), first);
    expect(outcome).toMatchObject({ outcome: { action: 'stale' } });
    expect((await leaseNow(store, a.id)).status).toBe('active');
    const passed = queue.sent.slice(sentBefore).filter((m) => m.kind === 'lease' && m.id === b.id);
    expect(passed).toHaveLength(1);
    await processUpdate(engine, takeFor(queue, b.id));
    expect((await leaseNow(store, b.id)).status).toBe('active');
  });

  it('a request snapshot whose hold looks lapsed is not trusted: a renewal since then keeps the lease', async () => {
    const { engine, store, queue, clock } = await testSystem();
    await syntheticPool(engine, { limits: { maxResources: 1, idleTtlSeconds: 3600 } });
    const lease = await requestLease(engine, {
      type: 'host',
      owner: ci.principal,
      holdSeconds: 5,
    });
    const msg = takeFor(queue, lease.id);
    expect(msg.lease?.heldUntil).toBeDefined();
    // The first message waits in the queue past the hold; the holder renewed meanwhile (a
    // renewal does not bump the version, so no condition would catch the stale snapshot).
    clock.advance(4_000);
    await renewLease(engine, lease.id, ci);
    clock.advance(3_000);
    await processUpdate(engine, msg);
    expect((await leaseNow(store, lease.id)).status).toBe('active');
  });
});
