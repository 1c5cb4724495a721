/**
 * A runtime that knows its queue is new (the local runtime starting) re-drives everything in a
 * transitional state at once, instead of waiting for each object's stranded-state bound.
 */
import { describe, expect, it } from 'vitest';
import { requestLease, runSweep } from '../../lambdas/core/use-cases.ts';
import { leaseNow, syntheticPool, testSystem } from '../support/system.ts';

const ci = { principal: 'arn:aws:iam::123456789012:role/ci' };

describe('runSweep with allInFlight', () => {
  it('re-drives leases and resources whose messages are gone, before their sweepAt', async () => {
    const { engine, store, queue } = await testSystem();
    await syntheticPool(engine, {
      limits: { maxResources: 1 },
      config: { activation: { delaySeconds: 5 } },
    });
    const booting = await requestLease(engine, { type: 'host', owner: ci.principal });
    await queue.drain(engine, {
      until: async () => (await leaseNow(store, booting.id)).status === 'acquired',
    });
    const waiting = await requestLease(engine, { type: 'host', owner: ci.principal });
    // A restart: every queued message is lost, nothing is due yet.
    while (queue.take()) {
      // dropped
    }
    const ordinary = await runSweep(engine);
    expect(ordinary.redrivenLeases + ordinary.redrivenResources).toBe(0);
    expect(queue.size).toBe(0);

    const atStart = await runSweep(engine, { allInFlight: true });
    expect(atStart.redrivenLeases).toBe(2); // the acquired one and the pending one
    expect(atStart.redrivenResources).toBe(1); // the booting host
    await queue.drain(engine, {
      until: async () => (await leaseNow(store, booting.id)).status === 'active',
    });
    expect((await leaseNow(store, booting.id)).status).toBe('active');
    // The waiting lease was looked at again too (it had never been, its message was lost).
    expect((await leaseNow(store, waiting.id)).waitReason).toMatch(
      /^blueprint 'pool' is at its limit of 1 host(: 1 booting|, all leased)$/,
    );
  });
});
