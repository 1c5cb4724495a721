/**
 * Warm pools (`minIdle`) on an ec2-host blueprint: the real engine and store (DynamoDB Local),
 * the real plug-in, EC2/SSM played by the shared stateful fake on the test clock. The pre-warms
 * are plug-in allocations without a lease (the warm request, owner `drydock:warm-pool`): they
 * launch with the blueprint's default capacity through the setup path (launch, boot, SSM agent,
 * readiness), and a lease then takes one without a launch. Launches are counted from the
 * fake's RunInstances calls, never from what the engine believes.
 */
import { describe, expect, it } from 'vitest';
import { makeEc2HostBlueprint } from '../../lambdas/blueprints/ec2-host/index.ts';
import { BlueprintRegistry } from '../../lambdas/core/blueprint.ts';
import type { Resource } from '../../lambdas/core/model.ts';
import { createBlueprint, readLogs, requestLease } from '../../lambdas/core/use-cases.ts';
import { FakeAws } from '../support/aws-fake/index.ts';
import type { TestClock } from '../support/manual-queue.ts';
import { leaseNow, type TestSystem, testSystem } from '../support/system.ts';

const DEPLOYMENT = 'drydock-warm-test';
const ENV = {
  DRYDOCK_DEPLOYMENT: DEPLOYMENT,
  DRYDOCK_INSTANCE_PROFILE_ARN: 'arn:aws:iam::123456789012:instance-profile/drydock-hosts',
  DRYDOCK_COMMAND_LOG_GROUP: '/drydock/test/commands',
  DRYDOCK_SUBNET_IDS: 'subnet-0aaa,subnet-0bbb',
  DRYDOCK_EC2_HOST_RECHECK_SECONDS: '1',
};

async function warmSystem(): Promise<TestSystem & { fake: FakeAws }> {
  let clock: TestClock | undefined;
  const fake = new FakeAws({ clock: { now: () => clock?.now() ?? Date.now() } });
  const registry = new BlueprintRegistry().register(makeEc2HostBlueprint({ env: ENV }));
  const system = await testSystem({}, { registry, clients: fake.clients() });
  clock = system.clock;
  return { ...system, fake };
}

const launched = (fake: FakeAws) =>
  fake.sent.filter((s) => s.operation === 'RunInstances' && s.outcome === 'ok');

async function hosts(system: TestSystem): Promise<Resource[]> {
  return (await system.store.listLiveResources('host')).filter((r) => r.blueprintId === 'warm');
}

async function idleActive(system: TestSystem): Promise<Resource[]> {
  return (await hosts(system)).filter((r) => r.status === 'active' && r.leaseCount === 0);
}

async function drainUntil(system: TestSystem, check: () => Promise<boolean>) {
  await system.queue.drain(system.engine, { maxSteps: 500, until: check });
  expect(await check()).toBe(true);
}

describe('warm pools on ec2-host', () => {
  it('minIdle 2: pre-warms launch spot instances through the setup path; a lease activates on one without a launch; the pool tops back up within the cap', async () => {
    const system = await warmSystem();
    const { fake } = system;
    await createBlueprint(system.engine, {
      id: 'warm',
      type: 'ec2-host',
      resourceType: 'host',
      limits: { maxResources: 3, minIdle: 2, leasesPerResource: 1, idleTtlSeconds: 3600 },
      config: { instanceTypes: ['m7i.large'] },
    });

    // The create-time top-up: two instances, launched and set up without any lease.
    await drainUntil(system, async () => (await idleActive(system)).length === 2);
    const warm = await idleActive(system);
    expect(launched(fake)).toHaveLength(2);
    for (const r of warm) {
      const instanceId = r.data.instanceId as string;
      // The plug-in's default capacity (spot-then-on-demand: spot first), really got.
      expect(r.attributes.capacity).toBe('spot');
      expect(r.slotLocks).toContain(`binding:${instanceId}`);
      expect(fake.launched().find((i) => i.id === instanceId)).toMatchObject({
        state: 'running',
        market: 'spot',
        tags: { 'drydock:deployment': DEPLOYMENT, 'drydock:resource': r.id },
      });
      const log = (await readLogs(system.engine, r.id)).map((e) => e.type);
      expect(log).toEqual(expect.arrayContaining(['resource.allocated', 'resource.activated']));
    }
    // Each readiness command ran once, on a pre-warmed host, before any lease existed.
    const readiness = fake.sent.filter((s) => s.operation === 'SendCommand');
    expect(readiness).toHaveLength(2);

    const lease = await requestLease(system.engine, { type: 'host', owner: 'ci' });
    await drainUntil(
      system,
      async () => (await leaseNow(system.store, lease.id)).status === 'active',
    );
    const { resourceId } = await leaseNow(system.store, lease.id);
    expect(warm.map((r) => r.id)).toContain(resourceId);

    // The acquisition lowered the idle count: one more launch, and never above the cap.
    await drainUntil(system, async () => (await idleActive(system)).length === 2);
    expect(launched(fake)).toHaveLength(3);
    expect(await hosts(system)).toHaveLength(3);
    expect(fake.peakLiveInstances(DEPLOYMENT)).toBe(3);
    // The lease's activation itself launched nothing: the third launch is for a new resource.
    const third = launched(fake)[2];
    expect(JSON.stringify(third?.input)).not.toContain(`"Value":"${resourceId}"`);
  });

  it('a lease asking for on-demand does not take a spot warm host: it gets its own on-demand launch', async () => {
    const system = await warmSystem();
    const { fake } = system;
    await createBlueprint(system.engine, {
      id: 'warm',
      type: 'ec2-host',
      resourceType: 'host',
      limits: { maxResources: 3, minIdle: 1, leasesPerResource: 1, idleTtlSeconds: 3600 },
      config: { instanceTypes: ['m7i.large'] },
    });
    await drainUntil(system, async () => (await idleActive(system)).length === 1);
    const [warmHost] = await idleActive(system);

    const lease = await requestLease(system.engine, {
      type: 'host',
      owner: 'ci',
      attributes: { capacity: 'on-demand' },
    });
    await drainUntil(
      system,
      async () => (await leaseNow(system.store, lease.id)).status === 'active',
    );
    const { resourceId } = await leaseNow(system.store, lease.id);
    expect(resourceId).not.toBe(warmHost?.id);
    const host = await system.store.getResource(resourceId as string);
    expect(host?.attributes.capacity).toBe('on-demand');
    expect(fake.launched().find((i) => i.id === host?.data.instanceId)?.market).toBe('on-demand');
  });
});
