/**
 * A lease that joins a resource still booting for another lease, in the instant the resource
 * becomes active. The activation wakes the leases whose slot locks it reads (wakeLeasesOf); a
 * lock committed just after that read gets no wake-up, and the joining lease's own update holds
 * the plan's copy of the resource, still pending. It must not wait for a wake-up that never
 * comes (until the sweep's strand, minutes later): it looks once more and activates.
 */
import { describe, expect, it } from 'vitest';
import { processUpdate, requestLease } from '../../lambdas/core/use-cases.ts';
import { raceAfter, takeFor } from '../support/recording.ts';
import { leaseNow, syntheticPool, testSystem } from '../support/system.ts';

const ci = { principal: 'ci' };

describe('joining a booting resource', () => {
  it('a lease whose plan saw the resource pending, committed after its activation, activates at once', async () => {
    const { engine, store, queue, clock, engineWith } = await testSystem();
    await syntheticPool(engine, {
      limits: { maxResources: 1, leasesPerResource: 2, idleTtlSeconds: 3600 },
      config: { activation: { delaySeconds: 20 } },
    });
    const first = await requestLease(engine, { type: 'host', owner: ci.principal });
    await processUpdate(engine, takeFor(queue, first.id));
    const booting = await leaseNow(store, first.id);
    expect(booting.status).toBe('acquired');
    const resourceId = booting.resourceId as string;
    expect((await store.getResource(resourceId))?.status).toBe('pending');

    const second = await requestLease(engine, { type: 'host', owner: ci.principal });
    // Right after the second lease planned (the resource pending, with room), the boot ends:
    // the resource's update activates it and wakes the leases it finds (only the first).
    const racing = raceAfter(store, 'listLiveResources', async () => {
      clock.advance(21_000);
      await processUpdate(engine, takeFor(queue, resourceId));
      expect((await store.getResource(resourceId))?.status).toBe('active');
    });
    const sentBefore = queue.sent.length;
    await processUpdate(engineWith({ store: racing }), takeFor(queue, second.id));

    // No wake-up was sent for it, and none is needed: its own update activated it.
    const wakes = queue.sent.slice(sentBefore).filter((m) => m.id === second.id);
    expect(wakes).toEqual([]);
    expect(await leaseNow(store, second.id)).toMatchObject({ status: 'active', resourceId });
  });
});
