/**
 * static-host on the real engine and store (DynamoDB Local), with EC2/SSM/CloudWatch Logs played
 * by the shared stateful fake: the binding lock keeps an instance one resource at a time under
 * any number of leases, a host that goes offline breaks its lease and waiting leases go
 * elsewhere, and a host that leaves the pool is torn down by the sweep with nobody leasing it.
 */
import { describe, expect, it } from 'vitest';
import { makeStaticHostBlueprint } from '../../lambdas/blueprints/static-host/index.ts';
import { syntheticBlueprint } from '../../lambdas/blueprints/synthetic/index.ts';
import { BlueprintRegistry } from '../../lambdas/core/blueprint.ts';
import { startCommand } from '../../lambdas/core/commands.ts';
import type { Lease } from '../../lambdas/core/model.ts';
import {
  createBlueprint,
  releaseLease,
  requestLease,
  runSweep,
} from '../../lambdas/core/use-cases.ts';
import { FakeAws, type FakeAwsOptions } from '../support/aws-fake/index.ts';
import type { TestClock } from '../support/manual-queue.ts';
import { leaseNow, type TestSystem, testSystem } from '../support/system.ts';

const A = 'i-0aaaaaaaaaaaaaaaa';
const B = 'i-0bbbbbbbbbbbbbbbb';
const POOL = { 'drydock-pool': 'linux-build' };
const ci = { principal: 'ci' };

/**
 * An engine whose static-host plug-in talks to the fake. The fake's time is the test clock (which
 * the queue jumps over delays) plus real time, so the plug-in's bounded housekeeping waits (a
 * cleanup command, a health ping) see their commands end; those waits are shortened to 25 ms.
 */
async function staticHostSystem(
  instances: string[],
  config: Record<string, unknown> = {},
  limits: Record<string, unknown> = {},
  fakeOptions: Partial<FakeAwsOptions> = {},
): Promise<TestSystem & { fake: FakeAws }> {
  let clock: TestClock | undefined;
  const startedAt = performance.now();
  const fake = new FakeAws({
    ...fakeOptions,
    clock: { now: () => (clock?.now() ?? Date.now()) + Math.floor(performance.now() - startedAt) },
  });
  for (const id of instances) fake.addInstance({ id, tags: POOL });
  const registry = new BlueprintRegistry().register(syntheticBlueprint).register(
    makeStaticHostBlueprint({
      env: { DRYDOCK_COMMAND_LOG_GROUP: '/drydock/test/commands' },
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, Math.min(ms, 25))),
    }),
  );
  const system = await testSystem({}, { registry, clients: fake.clients() });
  clock = system.clock;
  await createBlueprint(system.engine, {
    id: 'linux-build',
    type: 'static-host',
    resourceType: 'host',
    limits: { maxResources: 6, leasesPerResource: 1, idleGraceSeconds: 0, ...limits },
    config: { instances: { tags: POOL }, ...config },
  });
  return { ...system, fake };
}

async function instanceOf(system: TestSystem, lease: Lease): Promise<string> {
  const { resourceId } = await leaseNow(system.store, lease.id);
  const resource = await system.store.getResource(resourceId as string);
  return resource?.data.instanceId as string;
}

/** Live (pending or active) static-host resources per instance: the binding rule says ≤ 1. */
async function liveByInstance(system: TestSystem): Promise<Map<string, string[]>> {
  const live = new Map<string, string[]>();
  for (const r of await system.store.listLiveResources('host')) {
    const id = r.data.instanceId as string;
    live.set(id, [...(live.get(id) ?? []), r.id]);
  }
  return live;
}

describe('static-host leases on the engine', () => {
  it('6 leases at once on 2 instances: never two live resources on one instance, all served in turn', async () => {
    const system = await staticHostSystem([A, B], {}, { reclaimOnRelease: true });
    const leases = await Promise.all(
      Array.from({ length: 6 }, () => requestLease(system.engine, { type: 'host', owner: 'ci' })),
    );
    const served = new Set<string>();
    const hostsUsed: string[] = [];
    let sawPoolWait = false;
    for (let round = 0; round < 6 && served.size < 6; round++) {
      let active: Lease[] = [];
      await system.queue.drain(system.engine, {
        maxSteps: 2_000,
        until: async () => {
          for (const [instance, ids] of await liveByInstance(system)) {
            expect(ids, `live resources on ${instance}`).toHaveLength(1);
          }
          const now = await Promise.all(leases.map((l) => leaseNow(system.store, l.id)));
          sawPoolWait ||= now.some((l) =>
            /all 2 instances of pool tags drydock-pool=linux-build are bound/.test(
              l.waitReason ?? '',
            ),
          );
          active = now.filter((l) => l.status === 'active' && !served.has(l.id));
          return active.length === Math.min(2, 6 - served.size);
        },
      });
      for (const lease of active) {
        hostsUsed.push(await instanceOf(system, lease));
        served.add(lease.id);
        await releaseLease(system.engine, lease.id, ci);
      }
    }
    expect(served.size).toBe(6);
    expect(new Set(hostsUsed)).toEqual(new Set([A, B]));
    expect(sawPoolWait).toBe(true);
    await system.queue.drain(system.engine, { maxSteps: 2_000 });
    expect(await liveByInstance(system)).toEqual(new Map());
  });

  it('a host that goes offline breaks its lease, naming it; a waiting lease is served elsewhere', async () => {
    const system = await staticHostSystem([A, B], {
      offlineGraceSeconds: 0,
      healthCheckEverySeconds: 30,
    });
    const first = await requestLease(system.engine, { type: 'host', owner: 'ci' });
    const second = await requestLease(system.engine, { type: 'host', owner: 'ci' });
    await system.queue.drain(system.engine, {
      until: async () =>
        (await leaseNow(system.store, first.id)).status === 'active' &&
        (await leaseNow(system.store, second.id)).status === 'active',
    });
    const waiting = await requestLease(system.engine, { type: 'host', owner: 'ci' });
    const lost = await instanceOf(system, first);
    const other = lost === A ? B : A;

    system.fake.setPing(lost, 'ConnectionLost');
    system.clock.advance(31_000);
    expect((await runSweep(system.engine)).periodicHealthChecks).toBeGreaterThanOrEqual(1);
    await system.queue.drain(system.engine, {
      until: async () => (await leaseNow(system.store, first.id)).status === 'destroyed',
    });
    const broken = await leaseNow(system.store, first.id);
    expect(broken.endedAs).toBe('broken');
    expect(broken.endReason).toContain(lost);
    // The offline host is not offered again; the waiting lease gets the other one when it frees.
    expect((await leaseNow(system.store, waiting.id)).status).toBe('pending');
    await releaseLease(system.engine, second.id, ci);
    await system.queue.drain(system.engine, {
      until: async () => (await leaseNow(system.store, waiting.id)).status === 'active',
    });
    expect(await instanceOf(system, waiting)).toBe(other);
  });

  it('a host whose pool tag is removed is torn down by the sweep, with no lease on it', async () => {
    const system = await staticHostSystem([A], { healthCheckEverySeconds: 30 });
    const lease = await requestLease(system.engine, { type: 'host', owner: 'ci' });
    await system.queue.drain(system.engine, {
      until: async () => (await leaseNow(system.store, lease.id)).status === 'active',
    });
    const { resourceId } = await leaseNow(system.store, lease.id);
    await releaseLease(system.engine, lease.id, ci);
    await system.queue.drain(system.engine, {
      until: async () => (await leaseNow(system.store, lease.id)).status === 'destroyed',
    });
    expect((await system.store.getResource(resourceId as string))?.status).toBe('active');

    system.fake.setTags(A, {});
    system.clock.advance(31_000);
    await runSweep(system.engine);
    await system.queue.drain(system.engine, {
      until: async () =>
        (await system.store.getResource(resourceId as string))?.status === 'destroyed',
    });
    const gone = await system.store.getResource(resourceId as string);
    expect(gone?.endReason).toMatch(new RegExp(`instance ${A} is no longer in pool`));
  });

  it('a command SSM still runs past its timeout is cancelled by the engine and reported timedOut', async () => {
    // The agent has not taken the command by its timeout (SSM says Pending): SSM's
    // executionTimeout has not started, so the engine's deadline is the one that stops it.
    const system = await staticHostSystem([A], {}, {}, { deliveryDelayMs: 600_000 });
    const lease = await requestLease(system.engine, { type: 'host', owner: 'ci' });
    await system.queue.drain(system.engine, {
      until: async () => (await leaseNow(system.store, lease.id)).status === 'active',
    });
    const command = await startCommand(
      system.engine,
      lease.id,
      { argv: ['make', 'test'], timeoutSeconds: 5 },
      ci,
    );
    const finished = async () =>
      (await system.store.getCommand(lease.id, command.id))?.status === 'finished';
    await system.queue.drain(system.engine, { until: finished });
    expect(await system.store.getCommand(lease.id, command.id)).toMatchObject({
      status: 'finished',
      result: { timedOut: true, exitCode: null },
    });
    expect(system.fake.sent.filter((s) => s.operation === 'CancelCommand')).toHaveLength(1);
  });
});
