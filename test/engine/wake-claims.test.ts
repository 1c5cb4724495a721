/**
 * Claimed wake-ups (lambdas/core/wake.ts, issue 14): each freed slot's wake-up is claimed on
 * the lease it wakes, once per wait, so two slots freed before the woken lease runs wake two
 * leases (oldest first) instead of the same one twice; and the wake-up carries the lease, so
 * the woken update plans without reading it.
 */
import { describe, expect, it } from 'vitest';
import { processUpdate, releaseLease, requestLease } from '../../lambdas/core/use-cases.ts';
import { countingStore as counting, takeFor } from '../support/recording.ts';
import { leaseNow, syntheticPool, testSystem } from '../support/system.ts';

const ci = { principal: 'arn:aws:iam::123456789012:role/ci' };

/** Two hosts held, two leases waiting for them after their own attempts. */
async function twoHeldTwoWaiting() {
  const system = await testSystem({ joinLine: false, releaseAtOnce: false });
  const { engine, queue } = system;
  await syntheticPool(engine, { limits: { maxResources: 2, idleTtlSeconds: 3600 } });
  const h1 = await requestLease(engine, { type: 'host', owner: ci.principal });
  const h2 = await requestLease(engine, { type: 'host', owner: ci.principal });
  await queue.drain(engine);
  const a = await requestLease(engine, { type: 'host', owner: ci.principal });
  const b = await requestLease(engine, { type: 'host', owner: ci.principal });
  await processUpdate(engine, takeFor(queue, a.id));
  await processUpdate(engine, takeFor(queue, b.id));
  return { ...system, h1, h2, a, b };
}

describe('claimed wake-ups', () => {
  it('two slots freed before the woken lease runs wake two leases, oldest first, each once', async () => {
    const { engine, store, queue, h1, h2, a, b } = await twoHeldTwoWaiting();
    await releaseLease(engine, h1.id, ci);
    await releaseLease(engine, h2.id, ci);
    const sentBefore = queue.sent.length;
    await processUpdate(engine, takeFor(queue, h1.id));
    await processUpdate(engine, takeFor(queue, h2.id));
    const wakes = queue.sent.slice(sentBefore).filter((m) => m.wake);
    expect(wakes.map((m) => m.id)).toEqual([a.id, b.id]);
    expect(await leaseNow(store, a.id)).toMatchObject({ waitSeq: 1, wokenSeq: 1 });
    expect(await leaseNow(store, b.id)).toMatchObject({ waitSeq: 1, wokenSeq: 1 });

    // Each wake-up serves its lease; neither update is stale.
    for (const wake of wakes) {
      const outcome = await processUpdate(engine, wake);
      expect(outcome).not.toMatchObject({ outcome: { action: 'stale' } });
    }
    expect((await leaseNow(store, a.id)).status).toBe('active');
    expect((await leaseNow(store, b.id)).status).toBe('active');
  });

  it('a lease woken for a wait is not woken again for it; once it waits again it can be', async () => {
    const { engine, store, queue, h1, a } = await twoHeldTwoWaiting();
    await releaseLease(engine, h1.id, ci);
    await processUpdate(engine, takeFor(queue, h1.id));
    const wake = queue.sent.filter((m) => m.wake).at(-1)!;
    expect(wake.id).toBe(a.id);
    // h1's host is taken before a's wake-up runs, by a lease that wants something else (so it
    // is not in a's line) and has its own first attempt.
    const other = await requestLease(engine, {
      type: 'host',
      owner: ci.principal,
      attributes: { platform: 'linux' },
    });
    await processUpdate(engine, takeFor(queue, other.id));
    expect((await leaseNow(store, other.id)).status).toBe('active');
    // a finds the pool full and waits again (waitSeq 2): a later freed slot may wake it.
    await processUpdate(engine, wake);
    expect(await leaseNow(store, a.id)).toMatchObject({ status: 'pending', waitSeq: 2 });
    await releaseLease(engine, other.id, ci);
    const sentBefore = queue.sent.length;
    await processUpdate(engine, takeFor(queue, other.id));
    expect(
      queue.sent
        .slice(sentBefore)
        .filter((m) => m.wake)
        .map((m) => m.id),
    ).toEqual([a.id]);
  });

  it('the wake-up carries the lease: the woken update plans without reading it', async () => {
    const { engine, store, queue, engineWith, h1, a } = await twoHeldTwoWaiting();
    await releaseLease(engine, h1.id, ci);
    await processUpdate(engine, takeFor(queue, h1.id));
    const wake = queue.sent.filter((m) => m.wake).at(-1)!;
    expect(wake.lease).toMatchObject({ id: a.id, status: 'pending', waitSeq: 1 });
    const { store: counted, calls } = counting(store);
    await processUpdate(engineWith({ store: counted }), wake);
    expect((await leaseNow(store, a.id)).status).toBe('active');
    expect(calls).not.toContain('getLease');
  });
});
