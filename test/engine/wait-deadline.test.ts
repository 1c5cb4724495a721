/**
 * waitTimeoutSeconds (issue 16, point 5): a lease not active by its deadline breaks with
 * "not active after Ns: <last wait reason>", enforced by its own update and the sweep, never
 * by anything sleeping.
 */
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../lambdas/core/errors.ts';
import { readLogs, requestLease, runSweep } from '../../lambdas/core/use-cases.ts';
import { sameStory } from '../../lambdas/core/wait-reasons.ts';
import { leaseNow, syntheticPool, testSystem } from '../support/system.ts';

const ci = { principal: 'arn:aws:iam::123456789012:role/ci' };

describe('waitTimeoutSeconds', () => {
  it('a lease with waitTimeoutSeconds 5 on an always-failing blueprint breaks within 15 s with its last wait reason', async () => {
    const { engine, store, queue, clock } = await testSystem({
      backoffBaseSeconds: 4,
      backoffCapSeconds: 30,
    });
    await syntheticPool(engine, {
      config: { allocation: { failTimes: 1000, failMessage: 'InsufficientInstanceCapacity' } },
    });
    const started = clock.now();
    const lease = await requestLease(engine, {
      type: 'host',
      owner: ci.principal,
      waitTimeoutSeconds: 5,
    });
    expect(lease.sweepAt).toBe(new Date(Date.parse(lease.requestedAt) + 5000).toISOString());
    await queue.drain(engine, {
      until: async () => (await leaseNow(store, lease.id)).status === 'destroyed',
    });
    const ended = await leaseNow(store, lease.id);
    expect(ended).toMatchObject({ status: 'destroyed', endedAs: 'broken' });
    expect(clock.now() - started).toBeLessThanOrEqual(15_000);
    expect(clock.now() - started).toBeGreaterThanOrEqual(5_000);

    const logs = await readLogs(engine, lease.id);
    const lastWait = logs.filter((e) => e.type === 'lease.waiting').at(-1);
    expect(lastWait?.data?.reason).toMatch(
      /failed to allocate a host \(InsufficientInstanceCapacity/,
    );
    // The exact reason of its last attempt (the log has the same story, maybe older numbers).
    expect(ended.endReason).toBe(`not active after 5s: ${ended.waitReason}`);
    expect(sameStory(ended.waitReason!, lastWait?.data?.reason as string)).toBe(true);
    expect(logs.find((e) => e.type === 'lease.broken')?.message).toBe(`broken: ${ended.endReason}`);
  });

  it('a lease acquired on a host still booting at its deadline is broken by the sweep; the host goes on', async () => {
    const { engine, store, queue, clock } = await testSystem();
    await syntheticPool(engine, { config: { activation: { delaySeconds: 60 } } });
    const lease = await requestLease(engine, {
      type: 'host',
      owner: ci.principal,
      waitTimeoutSeconds: 5,
    });
    await queue.drain(engine, {
      until: async () => (await leaseNow(store, lease.id)).status === 'acquired',
    });
    const acquired = await leaseNow(store, lease.id);
    expect(Date.parse(acquired.sweepAt!)).toBeLessThanOrEqual(Date.parse(lease.requestedAt) + 5000);

    clock.advance(5_000);
    expect((await runSweep(engine)).redrivenLeases).toBe(1);
    await queue.drain(engine, {
      until: async () => (await leaseNow(store, lease.id)).status === 'destroyed',
    });
    const ended = await leaseNow(store, lease.id);
    expect(ended.endReason).toBe(
      `not active after 5s: acquired on ${acquired.resourceId}, which is still being set up`,
    );
    expect((await store.getResource(acquired.resourceId!))!.status).not.toBe('broken');
  });

  it('a lease without one waits as before, and a bad value is refused saying what fits', async () => {
    const { engine } = await testSystem();
    await expect(
      requestLease(engine, { type: 'host', owner: ci.principal, waitTimeoutSeconds: 0 }),
    ).rejects.toThrow(ValidationError);
    await expect(
      requestLease(engine, { type: 'host', owner: ci.principal, waitTimeoutSeconds: 1.5 }),
    ).rejects.toThrow(/waitTimeoutSeconds must be a whole number from 1 to 604800/);
    const lease = await requestLease(engine, { type: 'host', owner: ci.principal });
    expect(lease.waitTimeoutSeconds).toBeUndefined();
  });
});
