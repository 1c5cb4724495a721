/**
 * A lease acquired on a host that is still booting says so in its own log (issue 16, point 3):
 * between "acquired" and "active" the holder reads the resource's setup progress.
 */
import { describe, expect, it } from 'vitest';
import { readLogs, requestLease } from '../../lambdas/core/use-cases.ts';
import { leaseNow, syntheticPool, testSystem } from '../support/system.ts';

const ci = { principal: 'arn:aws:iam::123456789012:role/ci' };

describe("a lease's log while its host boots", () => {
  it('carries the boot progress line, between acquired and active', async () => {
    const { engine, store, queue } = await testSystem();
    await syntheticPool(engine, { config: { activation: { delaySeconds: 5 } } });
    const lease = await requestLease(engine, { type: 'host', owner: ci.principal });
    await queue.drain(engine, {
      until: async () => (await leaseNow(store, lease.id)).status === 'active',
    });
    const host = (await leaseNow(store, lease.id)).resourceId!;
    const logs = await readLogs(engine, lease.id);
    const types = logs.map((e) => e.type);
    const progress = logs.filter((e) => e.type === 'lease.setup-progress');
    expect(progress.length).toBeGreaterThanOrEqual(1);
    expect(progress[0]!.message).toMatch(
      new RegExp(`^setting up host ${host}: host \\S+ is booting; ready in about [1-5]s$`),
    );
    expect(progress[0]!.data).toEqual({ resourceId: host });
    const acquired = types.indexOf('lease.acquired');
    const first = types.indexOf('lease.setup-progress');
    const active = types.indexOf('lease.activated');
    expect(acquired).toBeGreaterThanOrEqual(0);
    expect(acquired).toBeLessThan(first);
    expect(first).toBeLessThan(active);
    // The resource's own log has the same words.
    const own = (await readLogs(engine, host)).filter((e) => e.type === 'resource.setup-waiting');
    expect(own.map((e) => e.message.replace(/^setting up: /, ''))).toEqual(
      progress.map((e) => e.message.replace(/^setting up host \S+: /, '')),
    );
  });
});
