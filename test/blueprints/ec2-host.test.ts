/**
 * ec2-host against the shared EC2/SSM fake: config, capacity fallback and its log, no capacity
 * anywhere (no launch storm), idempotent launch after a crash (tags, ClientToken), on-demand
 * per lease, termination confirmed on destroy, and the inventory's two-phase orphan rule.
 */
import { RunInstancesCommand } from '@aws-sdk/client-ec2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { makeEc2HostBlueprint } from '../../lambdas/blueprints/ec2-host/index.ts';
import { ORPHAN_GRACE_MS } from '../../lambdas/blueprints/ec2-host/inventory.ts';
import {
  attemptsFor,
  clientToken,
  runInstancesInput,
} from '../../lambdas/blueprints/ec2-host/launch.ts';
import type {
  ActivationStep,
  ConfiguredBlueprint,
  InventoryReport,
} from '../../lambdas/core/blueprint.ts';
import type { Resource } from '../../lambdas/core/model.ts';
import { FakeAws } from '../support/aws-fake/index.ts';
import {
  configuredBlueprint,
  makeLease,
  makeResource,
  type TestContext,
  testContext,
} from './support.ts';

const ENV = {
  DRYDOCK_DEPLOYMENT: 'drydock-test',
  DRYDOCK_INSTANCE_PROFILE_ARN: 'arn:aws:iam::123456789012:instance-profile/drydock-hosts',
  DRYDOCK_COMMAND_LOG_GROUP: '/drydock/test/commands',
  DRYDOCK_EC2_HOST_RECHECK_SECONDS: '1',
};
const SUBNETS = ['subnet-0aaa', 'subnet-0bbb'];
const TYPES = ['m5.large', 'm6i.large'];
const plugin = makeEc2HostBlueprint({ env: ENV, sleep: async () => {} });
type Bp = ConfiguredBlueprint<z.output<typeof plugin.configSchema>>;

let ctx: TestContext;
let fake: FakeAws;

beforeEach(async () => {
  ctx = await testContext();
  fake = new FakeAws({ clock: ctx.clock });
  ctx.clients = fake.clients();
});
afterEach(async () => {
  await ctx.cleanup();
});

function blueprint(config: Record<string, unknown> = {}): Bp {
  return configuredBlueprint(plugin, { instanceTypes: TYPES, subnetIds: SUBNETS, ...config });
}

async function newResource(bp: Bp, attributes: Record<string, string> = {}, id = 'res-1') {
  const template = await plugin.allocateResource(ctx, bp, makeLease({ attributes }));
  return makeResource(bp, {
    id,
    attributes: { ...template.attributes },
    data: template.data ?? {},
  });
}

/** One activation step applied as the engine applies it (data, attributes, slot locks). */
async function step(bp: Bp, r: Resource): Promise<{ step: ActivationStep; resource: Resource }> {
  const s = await plugin.activateResource(ctx, bp, r);
  const next: Resource = {
    ...r,
    data: { ...r.data, ...s.data },
    ...(s.state === 'pending'
      ? {
          attributes: { ...r.attributes, ...s.attributes },
          slotLocks: [...new Set([...r.slotLocks, ...(s.slotLocks ?? [])])],
        }
      : { status: 'active' as const }),
  };
  return { step: s, resource: next };
}

async function activate(bp: Bp, r: Resource): Promise<{ resource: Resource; messages: string[] }> {
  const messages: string[] = [];
  for (let i = 0; i < 50; i++) {
    const out = await step(bp, r);
    r = out.resource;
    if (out.step.state === 'active') return { resource: r, messages };
    messages.push(out.step.message);
    ctx.clock.advance(out.step.checkAgainSeconds * 1000);
  }
  throw new Error('still pending after 50 steps');
}

const runInstancesCalls = () => fake.sent.filter((s) => s.operation === 'RunInstances');

describe('ec2-host config', () => {
  it('refuses both a launch template and an AMI, and bad ids, by name', () => {
    const both = plugin.configSchema.safeParse({
      launchTemplate: { name: 'builders' },
      imageId: 'ami-0123',
    });
    expect(both.success).toBe(false);
    expect(z.prettifyError(both.error as z.ZodError)).toContain('launchTemplate or imageId');
    const neither = plugin.configSchema.safeParse({ launchTemplate: {} });
    expect(z.prettifyError(neither.error as z.ZodError)).toContain('exactly one of id or name');
    const subnet = plugin.configSchema.safeParse({ subnetIds: ['vpc-1'] });
    expect(z.prettifyError(subnet.error as z.ZodError)).toContain("'vpc-1' is not a subnet id");
    expect(plugin.configSchema.parse({})).toMatchObject({
      capacity: 'spot-then-on-demand',
      readinessCommand: 'cloud-init status --wait',
    });
  });

  it('says what to configure when no instance profile or subnets are known', async () => {
    const bare = makeEc2HostBlueprint({ env: {} });
    const bp = configuredBlueprint(bare, {});
    const r = makeResource(bp, {
      data: (await bare.allocateResource(ctx, bp, makeLease())).data ?? {},
    });
    await expect(bare.activateResource(ctx, bp, r)).rejects.toThrow(/DRYDOCK_SUBNET_IDS/);
    const withSubnets = configuredBlueprint(bare, { subnetIds: SUBNETS });
    await expect(bare.activateResource(ctx, withSubnets, r)).rejects.toThrow(
      /DRYDOCK_INSTANCE_PROFILE_ARN/,
    );
  });
});

describe('ec2-host without AWS', () => {
  it('is offered locally but fails clearly only when used: no EC2 client in this runtime', async () => {
    const bp = blueprint();
    const lease = makeLease();
    const template = await plugin.allocateResource(ctx, bp, lease); // decides only
    ctx.clients = {};
    const r = makeResource(bp, { data: template.data ?? {} });
    const err = await plugin.activateResource(ctx, bp, r).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(
      /needs the ec2 client, which this runtime does not provide/,
    );
  });
});

describe('ec2-host launch', () => {
  it('launches in one call with the tags, ClientToken and spot options; activates after boot and readiness', async () => {
    const bp = blueprint({ tags: { team: 'ci' }, maxSpotPrice: '0.05' });
    const { resource, messages } = await activate(bp, await newResource(bp));
    const [call] = runInstancesCalls();
    expect(runInstancesCalls()).toHaveLength(1);
    const input = call?.input as ConstructorParameters<typeof RunInstancesCommand>[0];
    expect(input.ClientToken).toBe(clientToken('res-1', 0));
    expect(input.InstanceMarketOptions?.SpotOptions?.MaxPrice).toBe('0.05');
    expect(input.TagSpecifications?.[0]?.Tags).toEqual(
      expect.arrayContaining([
        { Key: 'drydock:deployment', Value: 'drydock-test' },
        { Key: 'drydock:resource', Value: 'res-1' },
        { Key: 'drydock:blueprint', Value: bp.id },
        { Key: 'team', Value: 'ci' },
      ]),
    );
    expect(input.TagSpecifications?.map((t) => t.ResourceType)).toEqual([
      'instance',
      'volume',
      'network-interface',
    ]);
    const instanceId = resource.data.instanceId as string;
    expect(resource.slotLocks).toContain(`binding:${instanceId}`);
    expect(resource.attributes.capacity).toBe('spot');
    expect(messages.join('\n')).toMatch(/waiting for its SSM agent|readiness command running/);
    // The readiness command ran once over SSM, started under the resource's command id.
    const sends = fake.sent.filter((s) => s.operation === 'SendCommand');
    expect(sends).toHaveLength(1);
    expect(JSON.stringify(sends[0]?.input)).toContain('cloud-init status --wait');
    expect(await plugin.healthCheck(ctx, bp, resource)).toEqual({ healthy: true });
  });

  it("takes the stack's subnets and security group when the blueprint names none; its own win; a launch template keeps its groups", () => {
    const stackEnv = {
      ...ENV,
      DRYDOCK_SUBNET_IDS: 'subnet-0ccc, subnet-0ddd',
      DRYDOCK_SECURITY_GROUP_IDS: 'sg-0abc',
    };
    const attempt = { market: 'spot' as const, instanceType: 'm5.large', subnetId: 'subnet-0ccc' };
    const bare = configuredBlueprint(plugin, {});
    expect(attemptsFor(bare, ['spot'], stackEnv).map((a) => a.subnetId)).toEqual([
      'subnet-0ccc',
      'subnet-0ddd',
      'subnet-0ccc',
      'subnet-0ddd',
      'subnet-0ccc',
      'subnet-0ddd',
    ]);
    expect(runInstancesInput(bare, 'r', attempt, 0, stackEnv).SecurityGroupIds).toEqual([
      'sg-0abc',
    ]);
    const own = configuredBlueprint(plugin, { securityGroupIds: ['sg-0123'] });
    expect(runInstancesInput(own, 'r', attempt, 0, stackEnv).SecurityGroupIds).toEqual(['sg-0123']);
    const templated = configuredBlueprint(plugin, { launchTemplate: { id: 'lt-0abc' } });
    expect(
      runInstancesInput(templated, 'r', attempt, 0, stackEnv).SecurityGroupIds,
    ).toBeUndefined();
    expect(runInstancesInput(bare, 'r', attempt, 0, ENV).SecurityGroupIds).toBeUndefined();
  });

  it('falls back to type 2 in subnet 2 when type 1 has no spot capacity anywhere, and says what it tried', async () => {
    const bp = blueprint();
    fake.noCapacity({ instanceType: 'm5.large', market: 'spot' });
    fake.noCapacity({ instanceType: 'm6i.large', subnetId: 'subnet-0aaa', market: 'spot' });
    const { resource, messages } = await activate(bp, await newResource(bp));
    const [host] = fake.launched();
    expect(host).toMatchObject({
      instanceType: 'm6i.large',
      subnetId: 'subnet-0bbb',
      market: 'spot',
    });
    expect(resource.data).toMatchObject({ instanceType: 'm6i.large', subnetId: 'subnet-0bbb' });
    expect(messages[0]).toBe(
      `launched instance ${host?.id} (m6i.large spot in subnet-0bbb) after trying ` +
        'm5.large spot in subnet-0aaa: InsufficientInstanceCapacity; ' +
        'm5.large spot in subnet-0bbb: InsufficientInstanceCapacity; ' +
        'm6i.large spot in subnet-0aaa: InsufficientInstanceCapacity',
    );
    // Each attempt had its own token: one token with other parameters would be refused.
    const tokens = runInstancesCalls().map((c) => (c.input as { ClientToken: string }).ClientToken);
    expect(new Set(tokens).size).toBe(4);
  });

  it('spot-then-on-demand falls back to on-demand and the resource says so', async () => {
    const bp = blueprint();
    fake.noCapacity({ market: 'spot', code: 'MaxSpotInstanceCountExceeded' });
    const { resource } = await activate(bp, await newResource(bp));
    expect(resource.attributes.capacity).toBe('on-demand');
    expect(fake.launched()[0]?.market).toBe('on-demand');
  });

  it('spot only with no capacity anywhere: throws naming every attempt, then waits instead of launching again', async () => {
    const bp = blueprint({ capacity: 'spot' });
    fake.noCapacity({ market: 'spot' });
    const r = await newResource(bp);
    const err = await plugin.activateResource(ctx, bp, r).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(
      /^step launch: no capacity: tried m5\.large spot in subnet-0aaa: InsufficientInstanceCapacity; .*m6i\.large spot in subnet-0bbb: InsufficientInstanceCapacity$/,
    );
    expect(runInstancesCalls()).toHaveLength(4);
    const lease = makeLease({ id: 'lease-2' });
    const can = await plugin.canAllocateNow?.(ctx, bp, lease);
    expect(can).toMatchObject({ ok: false });
    expect(can && !can.ok && can.reason).toMatch(
      /no EC2 capacity for its last launch \(tried m5\.large spot/,
    );
    ctx.clock.advance(61_000);
    expect(await plugin.canAllocateNow?.(ctx, bp, lease)).toEqual({ ok: true });
    expect(fake.launched()).toHaveLength(0);
  });

  it('a retried launch step (crash before the id was recorded) reuses the instance: by ClientToken when EC2 does not list it yet, by tag afterwards', async () => {
    const bp = blueprint();
    const r = await newResource(bp);
    const first = await plugin.activateResource(ctx, bp, r);
    // Same data as before (nothing was recorded): at once (not yet visible) and later (by tag).
    const again = await plugin.activateResource(ctx, bp, r);
    ctx.clock.advance(5_000);
    const later = await plugin.activateResource(ctx, bp, r);
    const ids = [first, again, later].map((s) => s.data?.instanceId);
    expect(new Set(ids).size).toBe(1);
    expect(fake.launched()).toHaveLength(1);
    expect(later.state === 'pending' && later.message).toMatch(
      /found instance .* launched by an earlier step/,
    );
    // The two launch calls used one token and got one instance.
    expect(runInstancesCalls().map((c) => c.outcome)).toEqual(['ok', 'ok']);
  });

  it('throttling decides nothing: the step waits and tries again (no second instance)', async () => {
    const bp = blueprint();
    let r = await newResource(bp);
    fake.throttle('RunInstances');
    const throttled = await step(bp, r);
    expect(throttled.step).toMatchObject({ state: 'pending' });
    expect(throttled.step.state === 'pending' && throttled.step.message).toMatch(
      /^step launch: .*throttled \(RequestLimitExceeded\); trying again$/,
    );
    r = throttled.resource;
    r = (await step(bp, r)).resource;
    ctx.clock.advance(3_000);
    fake.throttle('DescribeInstances');
    const waiting = await step(bp, r);
    expect(waiting.step.state === 'pending' && waiting.step.message).toMatch(
      /^step wait-running: .*throttled/,
    );
    const { resource } = await activate(bp, waiting.resource);
    expect(fake.launched()).toHaveLength(1);
    expect(resource.status).toBe('active');
  });

  it('a launch EC2 refuses for another reason breaks naming the step and the code', async () => {
    const bp = blueprint();
    fake.noCapacity({ code: 'InvalidAMIID.NotFound' });
    const err = await plugin.activateResource(ctx, bp, await newResource(bp)).catch((e) => e);
    expect((err as Error).message).toMatch(
      /^step launch: RunInstances \(m5\.large spot in subnet-0aaa\) for res-1 failed: InvalidAMIID\.NotFound: /,
    );
    expect(runInstancesCalls()).toHaveLength(1); // not a capacity code: no fallback
  });

  it('the same ClientToken with other parameters is refused by EC2 (the fake models it)', async () => {
    const send = (type: string) =>
      fake.ec2.send(
        new RunInstancesCommand({
          MinCount: 1,
          MaxCount: 1,
          ClientToken: 'tok-1',
          InstanceType: type as 'm5.large',
          ImageId: 'ami-0123',
        }),
      );
    const a = await send('m5.large');
    const b = await send('m5.large');
    expect(b.Instances?.[0]?.InstanceId).toBe(a.Instances?.[0]?.InstanceId);
    await expect(send('m6i.large')).rejects.toMatchObject({ name: 'IdempotentParameterMismatch' });
  });
});

describe('ec2-host capacity per lease', () => {
  it('capacity=on-demand on spot-then-on-demand launches on-demand although spot exists', async () => {
    const bp = blueprint();
    expect(plugin.cannotEverServe?.(bp, makeLease({ attributes: { capacity: 'on-demand' } }))).toBe(
      undefined,
    );
    const r = await newResource(bp, { capacity: 'on-demand' });
    expect(r.attributes.capacity).toBe('on-demand');
    const { resource } = await activate(bp, r);
    expect(fake.launched().map((i) => i.market)).toEqual(['on-demand']);
    expect(resource.attributes.capacity).toBe('on-demand');
    const input = runInstancesCalls()[0]?.input as { InstanceMarketOptions?: unknown };
    expect(input.InstanceMarketOptions).toBeUndefined();
  });

  it('a spot-only blueprint can never serve capacity=on-demand, and says why', () => {
    const bp = blueprint({ capacity: 'spot' });
    expect(plugin.cannotEverServe?.(bp, makeLease({ attributes: { capacity: 'on-demand' } }))).toBe(
      "its capacity mode is 'spot', so it never launches on-demand instances (lease asks for capacity=on-demand)",
    );
  });
});

describe('ec2-host teardown', () => {
  it('terminates the instance and confirms it is shutting down; idempotent', async () => {
    const bp = blueprint();
    const { resource } = await activate(bp, await newResource(bp));
    await plugin.destroyResource(ctx, bp, resource);
    await plugin.destroyResource(ctx, bp, resource);
    expect(fake.launched().map((i) => i.state)).toEqual(['shutting-down']);
    ctx.clock.advance(2_000);
    expect(fake.launched().map((i) => i.state)).toEqual(['terminated']);
    const health = await plugin.healthCheck(ctx, bp, resource);
    expect(health).toEqual({
      healthy: false,
      reason: `instance ${resource.data.instanceId} is terminated`,
    });
  });

  it('destroy finds an instance launched but never recorded, by its tags', async () => {
    const bp = blueprint();
    const r = await newResource(bp);
    await plugin.activateResource(ctx, bp, r); // launched; the step's data is lost
    ctx.clock.advance(1_000);
    await plugin.destroyResource(ctx, bp, r);
    expect(fake.launched().map((i) => i.state)).toEqual(['shutting-down']);
  });
});

describe('ec2-host inventory', () => {
  it('an instance bound to no resource is terminated on its second sighting a grace period later, not the first', async () => {
    const bp = blueprint();
    const r = await newResource(bp);
    const { resource } = await activate(bp, r); // bound: its lock is held
    const orphan = await newResource(bp, {}, 'res-orphan');
    await plugin.activateResource(ctx, bp, orphan); // launched, never recorded
    ctx.clock.advance(5_000);
    const boundKey = `binding:${resource.data.instanceId}`;
    ctx.slotLocks = { held: async (keys) => keys.filter((k) => k === boundKey) };

    const first = (await plugin.reconcileInventory?.(ctx, bp, undefined)) as InventoryReport;
    const orphanId = fake.launched().find((i) => i.tags['drydock:resource'] === 'res-orphan')?.id;
    expect(first).toMatchObject({ sighted: [orphanId], terminated: [] });
    ctx.clock.advance(ORPHAN_GRACE_MS - 10_000);
    const early = (await plugin.reconcileInventory?.(ctx, bp, first.nextState)) as InventoryReport;
    expect(early.terminated).toEqual([]);
    ctx.clock.advance(10_000);
    const second = (await plugin.reconcileInventory?.(ctx, bp, early.nextState)) as InventoryReport;
    expect(second.terminated).toEqual([orphanId]);
    const states = Object.fromEntries(fake.launched().map((i) => [i.id, i.state]));
    expect(states[orphanId as string]).toBe('shutting-down');
    expect(states[resource.data.instanceId as string]).toBe('running');
  });

  it('does bounded work per call: one page of 100 instances, resumed from the cursor it returns', async () => {
    const bp = blueprint();
    for (let i = 0; i < 101; i++) {
      await fake.ec2.send(
        new RunInstancesCommand({
          MinCount: 1,
          MaxCount: 1,
          ImageId: 'ami-0123',
          TagSpecifications: [
            {
              ResourceType: 'instance',
              Tags: [
                { Key: 'drydock:deployment', Value: 'drydock-test' },
                { Key: 'drydock:blueprint', Value: bp.id },
              ],
            },
          ],
        }),
      );
    }
    ctx.clock.advance(1_000);
    const first = (await plugin.reconcileInventory?.(ctx, bp, undefined)) as InventoryReport;
    expect(first.sighted).toHaveLength(100);
    expect(first.nextState.cursor).toBeTypeOf('string');
    const rest = (await plugin.reconcileInventory?.(ctx, bp, first.nextState)) as InventoryReport;
    expect(rest.sighted).toHaveLength(1);
    expect(rest.nextState).toEqual({});
  });

  it('a bound instance that was terminated behind our back reports its resource suspect', async () => {
    const bp = blueprint();
    const { resource } = await activate(bp, await newResource(bp));
    const id = resource.data.instanceId as string;
    fake.interrupt(id);
    ctx.clock.advance(125_000);
    ctx.slotLocks = { held: async (keys) => keys.filter((k) => k === `binding:${id}`) };
    const report = (await plugin.reconcileInventory?.(ctx, bp, undefined)) as InventoryReport;
    expect(report.suspects).toEqual([
      { resourceId: 'res-1', reason: `instance ${id} is terminated` },
    ]);
  });
});
