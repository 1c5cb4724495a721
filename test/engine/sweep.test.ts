/**
 * The sweep: TTL expiry, idle reclaim, orphaned slot locks, and the slot locks it must leave
 * alone. Each case drives the engine to the state the sweep should act on, moves the virtual
 * clock past the bound, and checks what the holder or operator would see.
 */
import { describe, expect, it } from 'vitest';
import { readLogs, releaseLease, requestLease, runSweep } from '../../lambdas/core/use-cases.ts';
import { leaseNow, syntheticPool, testSystem } from '../support/system.ts';

const ci = { principal: 'ci' };

describe('sweep', () => {
  it('releases a lease past its TTL and tells the holder why', async () => {
    const { engine, store, queue, clock } = await testSystem();
    await syntheticPool(engine);
    const lease = await requestLease(engine, { type: 'host', owner: ci.principal, ttlSeconds: 90 });
    await queue.drain(engine);
    expect((await leaseNow(store, lease.id)).status).toBe('active');

    clock.advance(60_000);
    expect((await runSweep(engine)).expiredLeases).toBe(0); // not yet
    clock.advance(31_000);
    expect((await runSweep(engine)).expiredLeases).toBe(1);
    await queue.drain(engine);
    const expired = await leaseNow(store, lease.id);
    expect(expired.status).toBe('destroyed');
    expect(expired.endReason).toBe('expired after its TTL of 90s');
    expect((await readLogs(engine, lease.id)).map((e) => e.type)).toContain('lease.expired');
  });

  it('reclaims a resource idle past its blueprint idle TTL, and not before', async () => {
    const { engine, store, queue, clock } = await testSystem();
    await syntheticPool(engine, { limits: { idleTtlSeconds: 300 } });
    const lease = await requestLease(engine, { type: 'host', owner: ci.principal });
    await queue.drain(engine);
    const hostId = (await leaseNow(store, lease.id)).resourceId!;
    await releaseLease(engine, lease.id, ci);
    await queue.drain(engine);

    clock.advance(200_000);
    expect((await runSweep(engine)).resourcesToReclaimOrCheck).toBe(0);
    clock.advance(101_000);
    expect((await runSweep(engine)).resourcesToReclaimOrCheck).toBe(1);
    await queue.drain(engine);
    const host = (await store.getResource(hostId))!;
    expect(host.status).toBe('destroyed');
    expect(host.endReason).toMatch(/^idle for 30\ds \(idle TTL 300s\)$/);
    expect((await store.listSlotLocks()).items).toEqual([]);
  });

  it('frees a slot lock whose owner is gone and keeps the ones still held', async () => {
    const { engine, store, queue, clock } = await testSystem();
    await syntheticPool(engine);
    const lease = await requestLease(engine, { type: 'host', owner: ci.principal });
    await queue.drain(engine);
    const held = (await store.listSlotLocks()).items.map((l) => l.key).sort();
    expect(held).toHaveLength(2); // the host's pool slot and the lease's slot on it

    // A lock left behind by an owner that no longer exists (e.g. a row deleted by hand).
    const at = new Date(clock.now()).toISOString();
    await store.transact([
      {
        op: 'takeSlotLock',
        lock: {
          key: 'blueprint:pool:slot:9',
          ownerKind: 'resource',
          ownerId: 'res-gone',
          createdAt: at,
        },
      },
    ]);
    expect((await runSweep(engine)).locksFreed).toBe(0); // too fresh to judge
    clock.advance(61_000);
    expect((await runSweep(engine)).locksFreed).toBe(1);
    expect((await store.listSlotLocks()).items.map((l) => l.key).sort()).toEqual(held);
    expect((await readLogs(engine, 'res-gone'))[0]?.message).toBe(
      'sweep freed orphaned slot lock blueprint:pool:slot:9 (owner missing)',
    );
    expect((await leaseNow(store, lease.id)).status).toBe('active');
  });
});
