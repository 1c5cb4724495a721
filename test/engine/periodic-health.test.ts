/**
 * Periodic health of hosts nobody reports on (issue 9: "the sweep finds such hosts even with no
 * lease on them"). A plug-in with `healthCheckEverySeconds` has its active resources checked by
 * the sweep's resource updates, leased or not: unhealthy breaks the resource (and its active
 * lease) with the plug-in's reason; healthy records `lastHealthCheckAt`. The sweep decides
 * from what it already lists, and the resource update from what it already reads: no DynamoDB
 * read is added. Real DynamoDB Local; a test-only plug-in whose health flips.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { BlueprintType, HealthResult } from '../../lambdas/core/blueprint.ts';
import { TemporaryError } from '../../lambdas/core/errors.ts';
import {
  createBlueprint,
  processUpdate,
  releaseLease,
  requestLease,
  runSweep,
} from '../../lambdas/core/use-cases.ts';
import { countingStore as counting } from '../support/recording.ts';
import { leaseNow, testSystem } from '../support/system.ts';

const ci = { principal: 'ci' };
const EVERY_SECONDS = 300;

/** A host whose health the test sets; checked every EVERY_SECONDS. */
function flippingHost(state: { health: HealthResult | 'throttled'; checks: number }) {
  const type: BlueprintType<{ everySeconds?: number }> = {
    type: 'flipping-test',
    description: 'A host whose health the test flips (test only)',
    resourceTypes: ['flipping'],
    configSchema: z.object({ everySeconds: z.number().optional() }).strict(),
    async allocateResource() {
      return { data: { instanceId: 'i-0abc' } };
    },
    async activateResource() {
      return { state: 'active' };
    },
    async destroyResource() {},
    async healthCheck() {
      state.checks++;
      if (state.health === 'throttled') throw new TemporaryError('Rate exceeded');
      return state.health;
    },
    healthCheckEverySeconds: (bp) => bp.config.everySeconds,
  };
  return type;
}

async function setup(config: { everySeconds?: number } = { everySeconds: EVERY_SECONDS }) {
  const state: { health: HealthResult | 'throttled'; checks: number } = {
    health: { healthy: true },
    checks: 0,
  };
  const system = await testSystem({}, { plugins: [flippingHost(state)] });
  await createBlueprint(system.engine, {
    id: 'flipping',
    type: 'flipping-test',
    resourceType: 'flipping',
    limits: { maxResources: 2, idleTtlSeconds: 86_400, idleGraceSeconds: 0 },
    config,
  });
  const lease = await requestLease(system.engine, { type: 'flipping', owner: ci.principal });
  await system.queue.drain(system.engine);
  const active = await leaseNow(system.store, lease.id);
  expect(active.status).toBe('active');
  return { ...system, state, lease, resourceId: active.resourceId as string };
}

const reads = (calls: string[]) => calls.filter((c) => /^(get|list|count)/.test(c));

describe('periodic health of hosts nobody leases', () => {
  it('the sweep checks an idle host once its interval passed, and records the pass', async () => {
    const { engine, store, queue, clock, state, lease, resourceId } = await setup();
    await releaseLease(engine, lease.id, ci);
    await queue.drain(engine);
    const checksBefore = state.checks;

    clock.advance((EVERY_SECONDS - 100) * 1000);
    expect((await runSweep(engine)).periodicHealthChecks).toBe(0); // not yet
    clock.advance(100_000);
    expect((await runSweep(engine)).periodicHealthChecks).toBe(1);
    const sweptAt = clock.now();
    await queue.drain(engine);
    expect(state.checks).toBe(checksBefore + 1);
    const checked = await store.getResource(resourceId);
    expect(checked?.status).toBe('active');
    expect(Date.parse(checked?.lastHealthCheckAt ?? '')).toBeGreaterThanOrEqual(sweptAt);

    // Counted from the pass: not due again until another interval.
    expect((await runSweep(engine)).periodicHealthChecks).toBe(0);
    clock.advance(EVERY_SECONDS * 1000);
    expect((await runSweep(engine)).periodicHealthChecks).toBe(1);
  });

  it('an unhealthy idle host is broken and torn down with the reason', async () => {
    const { engine, store, queue, clock, state, lease, resourceId } = await setup();
    await releaseLease(engine, lease.id, ci);
    await queue.drain(engine);

    state.health = { healthy: false, reason: 'instance i-0abc lost its pool tag' };
    clock.advance(EVERY_SECONDS * 1000);
    await runSweep(engine);
    await queue.drain(engine);
    expect(await store.getResource(resourceId)).toMatchObject({
      status: 'destroyed',
      endReason: 'failed its periodic health check: instance i-0abc lost its pool tag',
    });
  });

  it('a leased host that goes unhealthy breaks its active lease with the reason', async () => {
    const { engine, store, queue, clock, state, lease, resourceId } = await setup();
    state.health = { healthy: false, reason: 'instance i-0abc is offline (ConnectionLost)' };
    clock.advance(EVERY_SECONDS * 1000);
    expect((await runSweep(engine)).periodicHealthChecks).toBe(1);
    await queue.drain(engine);
    const broken = await leaseNow(store, lease.id);
    expect(broken.status).toBe('destroyed');
    expect(broken.endReason).toContain('instance i-0abc is offline (ConnectionLost)');
    expect((await store.getResource(resourceId))?.status).toBe('destroyed');
  });

  it('a throttled check decides nothing: the host stays, and the next sweep asks again', async () => {
    const { engine, store, queue, clock, state, resourceId } = await setup();
    state.health = 'throttled';
    clock.advance(EVERY_SECONDS * 1000);
    await runSweep(engine);
    await queue.drain(engine);
    const after = await store.getResource(resourceId);
    expect(after?.status).toBe('active');
    expect(after?.lastHealthCheckAt).toBeUndefined();
    expect((await runSweep(engine)).periodicHealthChecks).toBe(1);
  });

  it('blueprints without an interval are never checked unasked', async () => {
    const { engine, queue, clock, state, lease } = await setup({});
    await releaseLease(engine, lease.id, ci);
    await queue.drain(engine);
    const checksBefore = state.checks;
    clock.advance(10 * EVERY_SECONDS * 1000);
    expect((await runSweep(engine)).periodicHealthChecks).toBe(0);
    await queue.drain(engine);
    expect(state.checks).toBe(checksBefore);
  });

  it('adds no DynamoDB read: the sweep decides from its listings, the update from its own read', async () => {
    const { engine, queue, clock, resourceId, engineWith } = await setup();
    // Past the slot locks' grace (the sweep then reads their owners, due or not), not yet due.
    clock.advance(100_000);
    const sweepStore = counting(engine.store);
    await runSweep(engineWith({ store: sweepStore.store }));
    const sweepReadsNotDue = reads(sweepStore.calls);

    // The same resource update, not due and then due: the same reads, one write more.
    const notDue = counting(engine.store);
    await processUpdate(engineWith({ store: notDue.store }), {
      kind: 'resource',
      id: resourceId,
      reason: 'test',
    });
    clock.advance((EVERY_SECONDS - 100) * 1000);
    const dueSweep = counting(engine.store);
    expect((await runSweep(engineWith({ store: dueSweep.store }))).periodicHealthChecks).toBe(1);
    expect(reads(dueSweep.calls)).toEqual(sweepReadsNotDue);
    queue.take(); // the sweep's message, delivered here by hand
    const due = counting(engine.store);
    await processUpdate(engineWith({ store: due.store }), {
      kind: 'resource',
      id: resourceId,
      reason: 'sweep: periodic health check',
    });
    expect(reads(due.calls)).toEqual(reads(notDue.calls));
    expect(due.calls.filter((c) => c === 'transact').length).toBe(
      notDue.calls.filter((c) => c === 'transact').length + 1,
    );
  });
});
