/**
 * Order and brevity (issue 16, point 4): a lease's log comes back in the order things
 * happened, a reason names its root cause once, and one failure is one event.
 */
import { describe, expect, it } from 'vitest';
import { advanceResourceSetup } from '../../lambdas/core/resource-update.ts';
import { readLogs, releaseLease, requestLease } from '../../lambdas/core/use-cases.ts';
import { runCommandToEnd } from '../support/commands.ts';
import { leaseNow, syntheticPool, testSystem } from '../support/system.ts';

const ci = { principal: 'arn:aws:iam::123456789012:role/ci' };

describe('log order', () => {
  it('"acquired" comes before "active" when both are written in one transaction', async () => {
    const { engine, store, queue } = await testSystem();
    await syntheticPool(engine, { limits: { maxResources: 1, idleTtlSeconds: 3600 } });
    for (let i = 0; i < 6; i++) {
      const lease = await requestLease(engine, { type: 'host', owner: ci.principal });
      await queue.drain(engine, {
        until: async () => (await leaseNow(store, lease.id)).status === 'active',
      });
      const types = (await readLogs(engine, lease.id)).map((e) => e.type);
      expect(types.slice(0, 3)).toEqual(['lease.queued', 'lease.acquired', 'lease.activated']);
      await releaseLease(engine, lease.id, ci);
      await queue.drain(engine);
    }
  });

  it("sorts a step after the step it follows, even when that one's clock ran ahead", async () => {
    const { engine } = await testSystem();
    const ahead = new Date(engine.now() + 5_000).toISOString();
    const before = engine.iso();
    const event = engine.log('lease-x', 'lease.activated', 'active', undefined, ahead);
    // `at` stays the true time (the real clock may tick between these calls).
    expect(event.at >= before && event.at <= engine.iso()).toBe(true);
    expect(event.seq.startsWith(`${new Date(Date.parse(ahead) + 1).toISOString()}#`)).toBe(true);
    const first = engine.log('lease-x', 'lease.acquired', 'a');
    const second = engine.log('lease-x', 'lease.activated', 'b');
    expect(first.seq < second.seq).toBe(true);
  });
});

describe('brevity', () => {
  it('a lease broken by a vanished host names the cause once', async () => {
    const { engine, store, queue } = await testSystem();
    await syntheticPool(engine, {
      limits: { maxResources: 1 },
      config: { vanish: { afterCommands: 1 } },
    });
    const lease = await requestLease(engine, { type: 'host', owner: ci.principal });
    await queue.drain(engine);
    await runCommandToEnd(engine, lease.id, { argv: ['echo', 'first'] }, ci);
    await expect(
      runCommandToEnd(engine, lease.id, { argv: ['echo', 'second'] }, ci),
    ).rejects.toThrow(/vanished/);
    await queue.drain(engine);
    const ended = await leaseNow(store, lease.id);
    expect(ended.endReason).toMatch(/broke: failed its health check: .*vanished/);
    expect(ended.endReason!.match(/vanished/g)).toHaveLength(1);
    expect(ended.endReason).not.toMatch(/suspect since/);
  });

  it('an activation failure seen by two updates of one resource is one allocation-failed event', async () => {
    const { engine, store, queue } = await testSystem({ breakerThreshold: 100 });
    await syntheticPool(engine, {
      limits: { maxResources: 1 },
      config: { activation: { failTimes: 100, failMessage: 'cloud-init exploded' } },
    });
    const lease = await requestLease(engine, { type: 'host', owner: ci.principal });
    await queue.drain(engine, {
      until: async () => (await leaseNow(store, lease.id)).requeues >= 1,
    });
    const requeued = (await readLogs(engine, lease.id)).find((e) => e.type === 'lease.requeued');
    const host = (await store.getResource(requeued!.data!.resourceId as string))!;
    expect(['broken', 'destroyed']).toContain(host.status);
    // A second driver of the same setup, with the view it read before the first one broke it.
    const step = await advanceResourceSetup(engine, { ...host, status: 'pending', version: 0 });
    expect(step.state).toBe('broken');

    const failures = (await readLogs(engine, 'pool')).filter(
      (e) => e.type === 'blueprint.allocation-failed' && e.data?.subjectId === host.id,
    );
    expect(failures).toHaveLength(1);
    expect(failures[0]!.message).toMatch(/cloud-init exploded/);
  });
});
