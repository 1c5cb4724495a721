/**
 * IAM against the ec2-host plug-in's REAL calls: each function's part of the plug-in (setup:
 * activateResource; worker: health, commands, destroy; sweep: reconcileInventory) runs over the
 * shared AWS fake, the fake records every operation it was sent, and the synthesized template
 * must allow each of them (plus what the calls imply: CreateTags through TagSpecifications,
 * ssm:GetParameters for a `resolve:ssm:` image, iam:PassRole for the instance profile) to that
 * function's role, and no EC2 action beyond them.
 */
import type { RunInstancesCommandInput } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeEc2HostBlueprint } from '../../lambdas/blueprints/ec2-host/index.ts';
import type { ActivationStep, ConfiguredBlueprint } from '../../lambdas/core/blueprint.ts';
import type { Resource } from '../../lambdas/core/model.ts';
import {
  configuredBlueprint,
  makeLease,
  makeResource,
  type TestContext,
  testContext,
} from '../blueprints/support.ts';
import { FakeAws } from '../support/aws-fake/index.ts';
import { json, logicalId, ref, statementsOfRole, synth } from './support.ts';

const ENV = {
  DRYDOCK_DEPLOYMENT: 'Drydock',
  DRYDOCK_INSTANCE_PROFILE_ARN: 'arn:aws:iam::123456789012:instance-profile/drydock-hosts',
  DRYDOCK_COMMAND_LOG_GROUP: '/drydock/Drydock/commands',
  DRYDOCK_SUBNET_IDS: 'subnet-0aaa,subnet-0bbb',
  DRYDOCK_SECURITY_GROUP_IDS: 'sg-0abc',
  DRYDOCK_EC2_HOST_RECHECK_SECONDS: '1',
};
const plugin = makeEc2HostBlueprint({ env: ENV, sleep: async () => {} });
type Bp = ConfiguredBlueprint<ReturnType<typeof plugin.configSchema.parse>>;

const SERVICE_OF: Record<string, string> = {
  DescribeInstances: 'ec2',
  RunInstances: 'ec2',
  TerminateInstances: 'ec2',
  DescribeTags: 'ec2',
  SendCommand: 'ssm',
  GetCommandInvocation: 'ssm',
  CancelCommand: 'ssm',
  DescribeInstanceInformation: 'ssm',
  ListCommands: 'ssm',
  GetLogEvents: 'logs',
  FilterLogEvents: 'logs',
  CreateLogGroup: 'logs',
};

/** The IAM actions the fake saw, and those the calls imply. */
function actionsOf(fake: FakeAws, from: number): string[] {
  const actions = fake.calls.slice(from).map((c) => `${SERVICE_OF[c.operation]}:${c.operation}`);
  for (const sent of fake.sent) {
    if (sent.operation !== 'RunInstances') continue;
    const input = sent.input as RunInstancesCommandInput;
    if (input.TagSpecifications?.length) actions.push('ec2:CreateTags');
    if (input.ImageId?.startsWith('resolve:ssm:')) actions.push('ssm:GetParameters');
    if (input.IamInstanceProfile) actions.push('iam:PassRole');
  }
  return [...new Set(actions)].sort();
}

async function activate(ctx: TestContext, bp: Bp, r: Resource): Promise<Resource> {
  for (let i = 0; i < 50; i++) {
    const s: ActivationStep = await plugin.activateResource(ctx, bp, r);
    if (s.state === 'active') return { ...r, status: 'active', data: { ...r.data, ...s.data } };
    r = {
      ...r,
      data: { ...r.data, ...s.data },
      attributes: { ...r.attributes, ...s.attributes },
      slotLocks: [...new Set([...r.slotLocks, ...(s.slotLocks ?? [])])],
    };
    ctx.clock.advance(s.checkAgainSeconds * 1000);
  }
  throw new Error('still pending after 50 steps');
}

describe("IAM covers the ec2-host plug-in's real calls, per function", () => {
  const { stack, template } = synth();
  const used: Record<'setup' | 'worker' | 'sweep', string[]> = { setup: [], worker: [], sweep: [] };
  let ctx: TestContext;

  beforeAll(async () => {
    ctx = await testContext();
    const fake = new FakeAws({ clock: ctx.clock });
    ctx.clients = fake.clients();
    fake.rule({ match: /cloud-init status --wait/, stdout: 'status: done\n' });
    fake.rule({ match: /make test/, stdout: 'ok\n', durationMs: 60_000 });
    const bp = configuredBlueprint(plugin, {}) as Bp;

    // setup: the whole activation (launch, boot, agent, readiness with output).
    const allocated = await plugin.allocateResource(ctx, bp, makeLease());
    let resource = makeResource(bp, { data: allocated.data ?? {} });
    resource = await activate(ctx, bp, resource);
    used.setup = actionsOf(fake, 0);

    // worker: health, a lease command started, polled, cancelled; teardown.
    let from = fake.calls.length;
    fake.sent.length = 0;
    expect(await plugin.healthCheck(ctx, bp, resource)).toEqual({ healthy: true });
    const commands = await plugin.command?.(ctx, bp, resource, makeLease());
    const handle = await commands!.start('cmd-1', {
      kind: 'script',
      script: 'make test',
      text: 'make test',
      timeoutSeconds: 600,
    });
    ctx.clock.advance(2_000);
    await commands!.poll(handle, { stdout: 0, stderr: 0 });
    await commands!.cancel(handle);
    await plugin.destroyResource(ctx, bp, resource);
    used.worker = actionsOf(fake, from);

    // sweep: one inventory page.
    from = fake.calls.length;
    await plugin.reconcileInventory?.(ctx, bp, undefined);
    used.sweep = actionsOf(fake, from);
  });
  afterAll(async () => {
    await ctx?.cleanup();
  });

  const roles = {
    setup: stack.setupFunction.role,
    worker: stack.workerFunction.role,
    sweep: stack.sweepFunction.role,
  };
  const granted = (fn: keyof typeof roles) =>
    new Set(statementsOfRole(template, roles[fn]).flatMap((s) => s.Action));

  it('the plug-in really made the calls (the test would notice a new one)', () => {
    expect(used.setup).toEqual(
      expect.arrayContaining([
        'ec2:RunInstances',
        'ec2:CreateTags',
        'ec2:DescribeInstances',
        'ssm:GetParameters',
        'iam:PassRole',
        'ssm:DescribeInstanceInformation',
        'ssm:SendCommand',
        'ssm:GetCommandInvocation',
        'logs:GetLogEvents',
      ]),
    );
    expect(used.worker).toEqual(
      expect.arrayContaining(['ec2:TerminateInstances', 'ssm:SendCommand', 'ssm:CancelCommand']),
    );
    expect(used.sweep).toEqual(['ec2:DescribeInstances']);
  });

  for (const fn of ['setup', 'worker', 'sweep'] as const) {
    it(`${fn}: every call it makes is allowed, and no EC2 action beyond them`, () => {
      const allowed = granted(fn);
      for (const action of used[fn]) expect(allowed.has(action), `${fn} ${action}`).toBe(true);
      // Teardown after a failed setup step, and the sweep's orphans: terminate everywhere.
      const ec2Needed = new Set([
        ...used[fn].filter((a) => a.startsWith('ec2:')),
        'ec2:DescribeInstances',
        'ec2:TerminateInstances',
      ]);
      const ec2Granted = [...allowed].filter((a) => a.startsWith('ec2:')).sort();
      expect(ec2Granted).toEqual([...ec2Needed].sort());
      const ssmLogs = [...allowed].filter((a) => /^(ssm|logs):/.test(a) && !isOwnLogging(a));
      if (fn === 'sweep') expect(ssmLogs).toEqual([]); // reconcile needs neither
    });
  }

  it('command output is read from the group the functions are told about, and only there', () => {
    const group = stack.hostControl.commandLogGroup;
    for (const fn of ['setup', 'worker'] as const) {
      const reads = statementsOfRole(template, roles[fn]).filter((s) =>
        s.Action.includes('logs:GetLogEvents'),
      );
      expect(reads.flatMap((s) => s.Resource).map(json), fn).toEqual([
        json({ 'Fn::GetAtt': [logicalId(group), 'Arn'] }),
      ]);
      const fnConstruct = fn === 'setup' ? stack.setupFunction : stack.workerFunction;
      const variables =
        template.findResources('AWS::Lambda::Function')[logicalId(fnConstruct)]?.Properties
          .Environment.Variables;
      expect(variables.DRYDOCK_COMMAND_LOG_GROUP, fn).toEqual(ref(group));
    }
  });
});

/** The function's own log writing (its Lambda log group), not host access. */
function isOwnLogging(action: string): boolean {
  return action === 'logs:CreateLogStream' || action === 'logs:PutLogEvents';
}
