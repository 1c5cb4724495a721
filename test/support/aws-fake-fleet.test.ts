/**
 * The AWS fake's launched instances (aws-fake/fleet.ts), driven through SDK commands as the
 * ec2-host plug-in drives them: visibility window, lifecycle, SSM registration, scripted
 * capacity with EC2's error codes, termination, spot interruption notices, the live peak.
 */
import {
  DescribeInstancesCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { DescribeInstanceInformationCommand } from '@aws-sdk/client-ssm';
import { describe, expect, it } from 'vitest';
import { FakeAws } from './aws-fake/index.ts';

const START = Date.parse('2030-01-01T00:00:00.000Z');

function setup() {
  let now = START;
  const aws = new FakeAws({ clock: { now: () => now } });
  return {
    aws,
    advance(ms: number) {
      now += ms;
    },
  };
}

describe('launched instances (RunInstances, TerminateInstances)', () => {
  const launch = (tags: Record<string, string> = {}, extra: Record<string, unknown> = {}) =>
    new RunInstancesCommand({
      MinCount: 1,
      MaxCount: 1,
      ImageId: 'ami-0123',
      InstanceType: 'm5.large',
      SubnetId: 'subnet-0aaa',
      TagSpecifications: [
        {
          ResourceType: 'instance',
          Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
        },
      ],
      ...extra,
    });

  it('is invisible for a moment, pending, then running and registered with SSM', async () => {
    const { aws, advance } = setup();
    const out = await aws.ec2.send(launch({ 'drydock:deployment': 'd1' }));
    const id = out.Instances?.[0]?.InstanceId as string;
    expect(out.Instances?.[0]?.State?.Name).toBe('pending');
    await expect(
      aws.ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] })),
    ).rejects.toMatchObject({ name: 'InvalidInstanceID.NotFound' });
    advance(100);
    const seen = await aws.ec2.send(
      new DescribeInstancesCommand({
        Filters: [
          { Name: 'tag:drydock:deployment', Values: ['d1'] },
          { Name: 'instance-state-name', Values: ['pending'] },
        ],
      }),
    );
    expect(seen.Reservations?.[0]?.Instances?.[0]?.InstanceId).toBe(id);
    advance(1_900);
    const running = await aws.ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
    expect(running.Reservations?.[0]?.Instances?.[0]?.State?.Name).toBe('running');
    const info = () =>
      aws.ssm.send(
        new DescribeInstanceInformationCommand({
          Filters: [{ Key: 'InstanceIds', Values: [id] }],
        }),
      );
    expect((await info()).InstanceInformationList).toEqual([]);
    advance(3_000);
    expect((await info()).InstanceInformationList?.[0]?.PingStatus).toBe('Online');
  });

  it('refuses launches by scripted capacity with the real codes, and counts the peak of live instances', async () => {
    const { aws, advance } = setup();
    aws.noCapacity({ instanceType: 'm5.large', market: 'spot', code: 'SpotMaxPriceTooLow' });
    const spot = { InstanceMarketOptions: { MarketType: 'spot' as const } };
    await expect(aws.ec2.send(launch({}, spot))).rejects.toMatchObject({
      name: 'SpotMaxPriceTooLow',
    });
    const a = await aws.ec2.send(launch({ 'drydock:deployment': 'd1' }));
    const b = await aws.ec2.send(launch({ 'drydock:deployment': 'd1' }));
    expect(aws.liveInstances('d1')).toHaveLength(2);
    const ids = [a, b].map((o) => o.Instances?.[0]?.InstanceId as string);
    const out = await aws.ec2.send(new TerminateInstancesCommand({ InstanceIds: ids }));
    expect(out.TerminatingInstances?.map((t) => t.CurrentState?.Name)).toEqual([
      'shutting-down',
      'shutting-down',
    ]);
    advance(1_000);
    expect(aws.launched().map((i) => i.state)).toEqual(['terminated', 'terminated']);
    await aws.ec2.send(launch({ 'drydock:deployment': 'd1' }));
    expect(aws.liveInstances('d1')).toHaveLength(1);
    expect(aws.peakLiveInstances('d1')).toBe(2);
    expect(aws.sent.filter((s) => s.operation === 'RunInstances').map((s) => s.outcome)).toEqual([
      'SpotMaxPriceTooLow',
      'ok',
      'ok',
      'ok',
    ]);
  });

  it('interrupt: a spot instance shuts down two minutes after the notice', async () => {
    const { aws, advance } = setup();
    const out = await aws.ec2.send(launch({}, { InstanceMarketOptions: { MarketType: 'spot' } }));
    const id = out.Instances?.[0]?.InstanceId as string;
    advance(5_000);
    aws.interrupt(id);
    advance(119_000);
    expect(aws.launched()[0]?.state).toBe('running');
    advance(1_000);
    expect(aws.launched()[0]?.state).toBe('shutting-down');
  });
});
