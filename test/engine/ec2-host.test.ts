/**
 * ec2-host on the real engine and store (DynamoDB Local), EC2/SSM played by the shared stateful
 * fake on the test clock: spot interruptions through the worker's event mapping, no capacity
 * anywhere (the lease waits, no launch storm), on-demand per lease, a crash between the launch
 * and the write recording it, and the sweep's two-phase orphan rule.
 */
import { RunInstancesCommand } from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { makeEc2HostBlueprint } from '../../lambdas/blueprints/ec2-host/index.ts';
import { ORPHAN_GRACE_MS } from '../../lambdas/blueprints/ec2-host/inventory.ts';
import { BlueprintRegistry } from '../../lambdas/core/blueprint.ts';
import { InjectedCrash } from '../../lambdas/core/errors.ts';
import type { Lease, UpdateMessage } from '../../lambdas/core/model.ts';
import type { Store, TxWrite } from '../../lambdas/core/ports.ts';
import {
  createBlueprint,
  handleHostEvent,
  releaseLease,
  requestLease,
  runSweep,
} from '../../lambdas/core/use-cases.ts';
import { hostEventOf } from '../../lambdas/handlers/worker.ts';
import { FakeAws, type FakeAwsOptions } from '../support/aws-fake/index.ts';
import type { TestClock } from '../support/manual-queue.ts';
import { leaseNow, type TestSystem, testSystem } from '../support/system.ts';

const DEPLOYMENT = 'drydock-engine-test';
const ENV = {
  DRYDOCK_DEPLOYMENT: DEPLOYMENT,
  DRYDOCK_INSTANCE_PROFILE_ARN: 'arn:aws:iam::123456789012:instance-profile/drydock-hosts',
  DRYDOCK_COMMAND_LOG_GROUP: '/drydock/test/commands',
  DRYDOCK_EC2_HOST_RECHECK_SECONDS: '1',
};
const ci = { principal: 'ci' };

async function ec2System(
  config: Record<string, unknown> = {},
  limits: Record<string, unknown> = {},
  fakeOptions: Partial<FakeAwsOptions> = {},
): Promise<TestSystem & { fake: FakeAws }> {
  let clock: TestClock | undefined;
  const fake = new FakeAws({ ...fakeOptions, clock: { now: () => clock?.now() ?? Date.now() } });
  const registry = new BlueprintRegistry().register(makeEc2HostBlueprint({ env: ENV }));
  const system = await testSystem({}, { registry, clients: fake.clients() });
  clock = system.clock;
  await createBlueprint(system.engine, {
    id: 'spot-builders',
    type: 'ec2-host',
    resourceType: 'host',
    limits: { maxResources: 1, leasesPerResource: 1, idleGraceSeconds: 0, ...limits },
    config: {
      instanceTypes: ['m5.large', 'm6i.large'],
      subnetIds: ['subnet-0aaa', 'subnet-0bbb'],
      ...config,
    },
  });
  return { ...system, fake };
}

async function drainUntil(system: TestSystem, check: () => Promise<boolean>, maxSteps = 500) {
  await system.queue.drain(system.engine, { maxSteps, until: check });
  expect(await check()).toBe(true);
}

const instanceOfLease = async (system: TestSystem, lease: Lease) => {
  const { resourceId } = await leaseNow(system.store, lease.id);
  return (await system.store.getResource(resourceId as string))?.data.instanceId as string;
};

const launchCalls = (fake: FakeAws) => fake.sent.filter((s) => s.operation === 'RunInstances');

describe('ec2-host on the engine', () => {
  it('an interruption warning breaks the active lease with the reason in one update; the waiting lease gets a new host', async () => {
    const system = await ec2System();
    const a = await requestLease(system.engine, { type: 'host', owner: 'ci' });
    await drainUntil(system, async () => (await leaseNow(system.store, a.id)).status === 'active');
    const first = await instanceOfLease(system, a);
    const b = await requestLease(system.engine, { type: 'host', owner: 'ci' });
    await system.queue.drain(system.engine, {
      maxSteps: 50,
      until: async () => (await leaseNow(system.store, b.id)).waitReason !== undefined,
    });
    expect((await leaseNow(system.store, b.id)).status).toBe('pending');

    const at = new Date(system.fake.interrupt(first)).toISOString();
    const event = hostEventOf({
      source: 'aws.ec2',
      id: 'evt-1',
      time: at,
      region: 'eu-west-1',
      'detail-type': 'EC2 Spot Instance Interruption Warning',
      detail: { 'instance-id': first, 'instance-action': 'terminate' },
    });
    expect(await handleHostEvent(system.engine, event)).toMatchObject({ action: 'broken' });
    // The lease's own next update breaks it (one worker update).
    const delivered = system.queue.delivered.length;
    await drainUntil(system, async () => (await leaseNow(system.store, a.id)).status !== 'active');
    const aUpdates = system.queue.delivered
      .slice(delivered)
      .filter((m) => m.kind === 'lease' && m.id === a.id);
    expect(aUpdates).toHaveLength(1);
    const broken = await leaseNow(system.store, a.id);
    expect(broken.endReason).toContain(`spot instance ${first} interrupted by EC2 at ${at}`);

    await drainUntil(system, async () => (await leaseNow(system.store, b.id)).status === 'active');
    const second = await instanceOfLease(system, b);
    expect(second).not.toBe(first);
    expect(system.fake.launched().find((i) => i.id === first)?.state).toMatch(
      /shutting-down|terminated/,
    );
    // An event for an instance nobody holds is dropped.
    expect(
      await handleHostEvent(system.engine, {
        instanceId: 'i-0ffffffffffffffff',
        kind: 'interruption',
        at,
      }),
    ).toMatchObject({ action: 'ignored' });
  });

  it('a rebalance recommendation takes no new leases on the host and keeps the active one', async () => {
    const system = await ec2System({}, { maxResources: 2, leasesPerResource: 2 });
    const a = await requestLease(system.engine, { type: 'host', owner: 'ci' });
    await drainUntil(system, async () => (await leaseNow(system.store, a.id)).status === 'active');
    const first = await instanceOfLease(system, a);
    await handleHostEvent(system.engine, {
      instanceId: first,
      kind: 'rebalance',
      at: new Date(system.clock.now()).toISOString(),
    });
    const b = await requestLease(system.engine, { type: 'host', owner: 'ci' });
    await drainUntil(system, async () => (await leaseNow(system.store, b.id)).status === 'active');
    expect(await instanceOfLease(system, b)).not.toBe(first);
    expect((await leaseNow(system.store, a.id)).status).toBe('active');
    // Released, the retiring host is reclaimed (by the next sweep at the latest) and terminated.
    await releaseLease(system.engine, a.id, ci);
    await system.queue.drain(system.engine, { maxSteps: 200 });
    await runSweep(system.engine);
    await system.queue.drain(system.engine, { maxSteps: 200 });
    expect(system.fake.launched().find((i) => i.id === first)?.state).toMatch(
      /shutting-down|terminated/,
    );
  });

  it('spot only with no capacity anywhere: the lease waits with the reason and the blueprint does not storm EC2', async () => {
    const system = await ec2System({ capacity: 'spot' });
    system.fake.noCapacity({ market: 'spot' });
    const lease = await requestLease(system.engine, { type: 'host', owner: 'ci' });
    const start = system.clock.now();
    await system.queue.drain(system.engine, {
      maxSteps: 2_000,
      until: async () => system.clock.now() - start > 10 * 60_000,
    });
    const waiting = await leaseNow(system.store, lease.id);
    expect(waiting.status).toBe('pending');
    expect(waiting.waitReason).toMatch(
      /no EC2 capacity for its last launch \(tried m5\.large spot in subnet-0aaa: InsufficientInstanceCapacity;|backing off .*no capacity/,
    );
    // 4 attempts per launch; at most one launch a minute (capacity memory), fewer once the
    // circuit breaker opens: ten minutes make at most 11 launches, not one per lease update.
    const calls = launchCalls(system.fake).length;
    expect(calls).toBeGreaterThanOrEqual(4);
    expect(calls).toBeLessThanOrEqual(4 * 11);
    expect(system.fake.launched()).toEqual([]);
    const bp = await system.store.getBlueprint('spot-builders');
    expect(bp?.health.failureCount).toBeGreaterThan(0);
  });

  it('capacity=on-demand gets an on-demand host although spot exists; on a spot-only blueprint it breaks at once', async () => {
    const system = await ec2System();
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
    expect((await system.store.getResource(resourceId as string))?.attributes.capacity).toBe(
      'on-demand',
    );
    expect(system.fake.launched().map((i) => i.market)).toEqual(['on-demand']);

    const spotOnly = await ec2System({ capacity: 'spot' });
    const refused = await requestLease(spotOnly.engine, {
      type: 'host',
      owner: 'ci',
      attributes: { capacity: 'on-demand' },
    });
    await spotOnly.queue.drain(spotOnly.engine, { maxSteps: 20 });
    const broken = await leaseNow(spotOnly.store, refused.id);
    expect(broken.endedAs ?? broken.status).toBe('broken');
    expect(broken.endReason).toContain(
      "blueprint 'spot-builders' its capacity mode is 'spot', so it never launches on-demand instances",
    );
    expect(launchCalls(spotOnly.fake)).toEqual([]);
  });

  it('a crash between the launch call and the write recording it: the next run finds and uses the instance', async () => {
    const system = await ec2System();
    let crashed = false;
    // The write that records the instance id (it takes the binding lock) never happens once.
    const store: Store = Object.create(system.store);
    store.transact = async (writes: TxWrite[]) => {
      const records = writes.some(
        (w) => w.op === 'takeSlotLock' && w.lock.key.startsWith('binding:'),
      );
      if (records && !crashed) {
        crashed = true;
        throw new InjectedCrash('after RunInstances, before recording the instance id');
      }
      return system.store.transact(writes);
    };
    const engine = system.engineWith({ store });
    const lease = await requestLease(engine, { type: 'host', owner: 'ci' });
    await system.queue.drain(engine, {
      maxSteps: 200,
      until: async () => (await leaseNow(system.store, lease.id)).status === 'active',
      onError: (err) => (err instanceof InjectedCrash ? 'redeliver' : 'throw'),
    });
    expect(crashed).toBe(true);
    expect((await leaseNow(system.store, lease.id)).status).toBe('active');
    expect(system.fake.launched()).toHaveLength(1);
    expect(await instanceOfLease(system, lease)).toBe(system.fake.launched()[0]?.id);
    // Every launch call that succeeded returned that one instance (ClientToken or tag lookup).
    expect(launchCalls(system.fake).every((c) => c.outcome === 'ok')).toBe(true);
  });

  it('a failing readiness command breaks the resource naming the step, terminates the instance, counts on the breaker; the lease waits again', async () => {
    const system = await ec2System({ readinessCommand: 'test -e /ready' });
    system.fake.rule({ match: /test -e \/ready/, stderr: 'not ready\n', exitCode: 3 });
    const lease = await requestLease(system.engine, { type: 'host', owner: 'ci' });
    await system.queue.drain(system.engine, {
      maxSteps: 100,
      until: async () =>
        system.fake.launched().some((i) => i.state !== 'pending' && i.state !== 'running'),
    });
    const [host] = system.fake.launched();
    expect(host?.state).toMatch(/shutting-down|terminated/);
    const resourceId = host?.tags['drydock:resource'] as string;
    const resource = await system.store.getResource(resourceId);
    expect(resource?.endReason).toMatch(
      /^activation failed: step readiness: `test -e \/ready` on instance i-\w+ exited with 3; stderr: not ready/,
    );
    expect((await system.store.getBlueprint('spot-builders'))?.health.failureCount).toBe(1);
    expect((await leaseNow(system.store, lease.id)).status).not.toBe('broken');
  });

  it('the setup deadline breaks a host whose SSM agent never comes online, and its instance is terminated', async () => {
    // The agent registers only after ten minutes: the host waits in wait-ssm past its deadline.
    const system = await ec2System(
      {},
      { setupTimeoutSeconds: 60 },
      { fleet: { ssmOnlineAfterMs: 10 * 60_000 } },
    );
    const lease = await requestLease(system.engine, { type: 'host', owner: 'ci' });
    const host = () => system.fake.launched()[0];
    await system.queue.drain(system.engine, {
      maxSteps: 300,
      until: async () => /shutting-down|terminated/.test(host()?.state ?? ''),
    });
    expect(host()?.state).toMatch(/shutting-down|terminated/);
    const resource = await system.store.getResource(host()?.tags['drydock:resource'] as string);
    expect(resource?.endReason).toBe('setup did not finish within 60s');
    expect((await leaseNow(system.store, lease.id)).status).toBe('pending');
  });

  it('a binding lock taken with the recording write: held by another owner, the resource breaks naming it and the lease gets another host', async () => {
    const system = await ec2System({}, { maxResources: 2 });
    // The fake numbers instances from 1: the first launch gets this id, whose binding is taken.
    const taken = 'binding:i-00000000000000001';
    await system.store.transact([
      {
        op: 'takeSlotLock',
        lock: {
          key: taken,
          ownerKind: 'resource',
          ownerId: 'res-someone-else',
          createdAt: new Date(system.clock.now()).toISOString(),
        },
      },
    ]);
    const lease = await requestLease(system.engine, { type: 'host', owner: 'ci' });
    await drainUntil(
      system,
      async () => (await leaseNow(system.store, lease.id)).status === 'active',
    );
    const first = system.fake.launched()[0];
    const broken = await system.store.getResource(first?.tags['drydock:resource'] as string);
    expect(broken?.endReason).toBe(
      `activation failed: slot lock ${taken} is held by another owner`,
    );
    expect(broken?.data.instanceId).toBeUndefined();
    expect(await instanceOfLease(system, lease)).toBe('i-00000000000000002');
    const [lock] = await system.store.getSlotLocks([taken]);
    expect(lock?.ownerId).toBe('res-someone-else');
  });

  it('capacity fallback on the engine: type 2 in subnet 2, and the resource log says what was tried', async () => {
    const system = await ec2System();
    system.fake.noCapacity({ instanceType: 'm5.large', market: 'spot' });
    system.fake.noCapacity({ instanceType: 'm6i.large', subnetId: 'subnet-0aaa', market: 'spot' });
    const lease = await requestLease(system.engine, { type: 'host', owner: 'ci' });
    await drainUntil(
      system,
      async () => (await leaseNow(system.store, lease.id)).status === 'active',
    );
    expect(system.fake.launched().map((i) => [i.instanceType, i.subnetId, i.market])).toEqual([
      ['m6i.large', 'subnet-0bbb', 'spot'],
    ]);
    const { resourceId } = await leaseNow(system.store, lease.id);
    const log = (await system.store.listLogs(resourceId as string, { limit: 100 })).map(
      (e) => e.message,
    );
    expect(log).toContainEqual(
      expect.stringMatching(
        /^setting up: launched instance i-\w+ \(m6i\.large spot in subnet-0bbb\) after trying m5\.large spot in subnet-0aaa: InsufficientInstanceCapacity; m5\.large spot in subnet-0bbb: InsufficientInstanceCapacity; m6i\.large spot in subnet-0aaa: InsufficientInstanceCapacity$/,
      ),
    );
  });

  it('a host terminated behind our back with no event: the sweep finds it, its lease breaks naming it', async () => {
    const system = await ec2System();
    const lease = await requestLease(system.engine, { type: 'host', owner: 'ci' });
    await drainUntil(
      system,
      async () => (await leaseNow(system.store, lease.id)).status === 'active',
    );
    const id = await instanceOfLease(system, lease);
    system.fake.interrupt(id); // the event is lost: only the sweep can notice
    system.clock.advance(125_000);
    const report = await runSweep(system.engine);
    expect(report.vanishedHosts).toBe(1);
    await drainUntil(
      system,
      async () => (await leaseNow(system.store, lease.id)).status !== 'active',
    );
    expect((await leaseNow(system.store, lease.id)).endReason).toContain(`instance ${id} is`);
  });

  it('a state-change event to stopped breaks the host; running does nothing', async () => {
    const system = await ec2System();
    const lease = await requestLease(system.engine, { type: 'host', owner: 'ci' });
    await drainUntil(
      system,
      async () => (await leaseNow(system.store, lease.id)).status === 'active',
    );
    const id = await instanceOfLease(system, lease);
    const at = new Date(system.clock.now()).toISOString();
    expect(
      await handleHostEvent(system.engine, {
        instanceId: id,
        kind: 'state-change',
        state: 'running',
        at,
      }),
    ).toMatchObject({ action: 'none' });
    expect(
      await handleHostEvent(system.engine, {
        instanceId: id,
        kind: 'state-change',
        state: 'stopped',
        at,
      }),
    ).toMatchObject({ action: 'broken' });
    await drainUntil(
      system,
      async () => (await leaseNow(system.store, lease.id)).status !== 'active',
    );
    expect((await leaseNow(system.store, lease.id)).endReason).toContain(
      `instance ${id} is stopped`,
    );
  });

  it('teardown frees the binding and the pool slot only once EC2 confirms the termination; a failed call is retried by redelivery', async () => {
    const system = await ec2System({}, { reclaimOnRelease: true });
    const lease = await requestLease(system.engine, { type: 'host', owner: 'ci' });
    await drainUntil(
      system,
      async () => (await leaseNow(system.store, lease.id)).status === 'active',
    );
    const id = await instanceOfLease(system, lease);
    system.fake.throttle('TerminateInstances', 2);
    await releaseLease(system.engine, lease.id, ci);
    // The first refusal: the update fails (SQS would redeliver it); nothing was freed.
    let refused: UpdateMessage | undefined;
    await system.queue
      .drain(system.engine, {
        maxSteps: 100,
        onError: (_err, msg) => {
          refused = msg;
          return 'throw';
        },
      })
      .catch((err: unknown) => expect(String(err)).toMatch(/throttled/));
    expect(refused?.kind).toBe('resource');
    expect(await system.store.getSlotLocks([`binding:${id}`])).toHaveLength(1);
    expect(system.fake.launched()[0]?.state).toBe('running');
    system.queue.redeliver(refused as UpdateMessage);
    await system.queue.drain(system.engine, { maxSteps: 100, onError: () => 'redeliver' });
    const terminates = system.fake.sent.filter((s) => s.operation === 'TerminateInstances');
    expect(terminates.map((t) => t.outcome)).toEqual([
      'RequestLimitExceeded',
      'RequestLimitExceeded',
      'ok',
    ]);
    expect(system.fake.launched()[0]?.state).toMatch(/shutting-down|terminated/);
    expect(await system.store.getSlotLocks([`binding:${id}`])).toEqual([]);
  });

  it('the sweep terminates an instance nobody recorded on its second sighting, not the first', async () => {
    const system = await ec2System();
    const lease = await requestLease(system.engine, { type: 'host', owner: 'ci' });
    await drainUntil(
      system,
      async () => (await leaseNow(system.store, lease.id)).status === 'active',
    );
    const bound = await instanceOfLease(system, lease);
    // What a crash after launch leaves when its resource is gone: tagged, bound to nobody.
    const out = await system.fake.ec2.send(
      new RunInstancesCommand({
        MinCount: 1,
        MaxCount: 1,
        ImageId: 'ami-0123',
        TagSpecifications: [
          {
            ResourceType: 'instance',
            Tags: [
              { Key: 'drydock:deployment', Value: DEPLOYMENT },
              { Key: 'drydock:blueprint', Value: 'spot-builders' },
              { Key: 'drydock:resource', Value: 'res-lost' },
            ],
          },
        ],
      }),
    );
    const orphan = out.Instances?.[0]?.InstanceId as string;
    system.clock.advance(3_000);
    const first = await runSweep(system.engine);
    expect(first.orphansTerminated).toBe(0);
    const stateOf = (id: string) => system.fake.launched().find((i) => i.id === id)?.state;
    expect(stateOf(orphan)).toBe('running');
    system.clock.advance(ORPHAN_GRACE_MS);
    const second = await runSweep(system.engine);
    expect(second.orphansTerminated).toBe(1);
    expect(stateOf(orphan)).toBe('shutting-down');
    expect(stateOf(bound)).toBe('running');
  });
});
