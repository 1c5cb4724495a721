/**
 * The AWS fake itself, driven only through SDK commands as a plug-in drives it. Each behaviour
 * here is one a plug-in relies on; the AWS documentation each follows is cited in the module
 * that implements it (test/support/aws-fake/).
 */
import {
  FilterLogEventsCommand,
  GetLogEventsCommand,
  ThrottlingException as LogsThrottlingException,
  ResourceNotFoundException,
} from '@aws-sdk/client-cloudwatch-logs';
import {
  DescribeInstancesCommand,
  DescribeTagsCommand,
  EC2ServiceException,
} from '@aws-sdk/client-ec2';
import {
  CancelCommandCommand,
  DescribeInstanceInformationCommand,
  GetCommandInvocationCommand,
  type GetCommandInvocationCommandOutput,
  InvalidDocument,
  InvalidInstanceId,
  InvalidNextToken,
  InvocationDoesNotExist,
  paginateDescribeInstanceInformation,
  SendCommandCommand,
  type SendCommandCommandInput,
  ThrottlingException,
} from '@aws-sdk/client-ssm';
import { describe, expect, it } from 'vitest';
import { FakeAws, type FakeAwsOptions } from './aws-fake/index.ts';

const START = Date.parse('2030-01-01T00:00:00.000Z');
const LOG_GROUP = '/drydock/test/command-output';

function setup(options: Partial<FakeAwsOptions> = {}) {
  let now = START;
  const clock = { now: () => now };
  const aws = new FakeAws({ clock, ...options });
  return {
    aws,
    advance(ms: number) {
      now += ms;
    },
  };
}

function runShell(
  instanceId: string,
  lines: string[],
  extra: Partial<SendCommandCommandInput> = {},
) {
  return new SendCommandCommand({
    DocumentName: 'AWS-RunShellScript',
    InstanceIds: [instanceId],
    Parameters: { commands: lines, workingDirectory: ['/srv/drydock'], executionTimeout: ['60'] },
    CloudWatchOutputConfig: { CloudWatchLogGroupName: LOG_GROUP, CloudWatchOutputEnabled: true },
    ...extra,
  });
}

async function send(
  aws: FakeAws,
  instanceId: string,
  lines: string[],
  extra: Partial<SendCommandCommandInput> = {},
) {
  const { Command } = await aws.ssm.send(runShell(instanceId, lines, extra));
  return Command!.CommandId!;
}

function invocation(
  aws: FakeAws,
  commandId: string,
  instanceId: string,
): Promise<GetCommandInvocationCommandOutput> {
  return aws.ssm.send(
    new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: instanceId }),
  );
}

describe('managed instances (DescribeInstanceInformation)', () => {
  it('filters by instance id, ping status, platform and tag, ANDed, values ORed', async () => {
    const { aws } = setup();
    aws.addInstance({ id: 'i-0aaaaaaaaaaaaaaa1', tags: { 'drydock-pool': 'linux-build' } });
    aws.addInstance({
      id: 'i-0aaaaaaaaaaaaaaa2',
      tags: { 'drydock-pool': 'linux-build' },
      ping: 'ConnectionLost',
    });
    aws.addInstance({ id: 'mi-0bbbbbbbbbbbbbbb1', tags: { 'drydock-pool': 'other' } });
    aws.addInstance({
      id: 'i-0aaaaaaaaaaaaaaa3',
      platform: 'Windows',
      tags: { 'drydock-pool': 'linux-build' },
    });

    const list = async (Filters: Array<{ Key: string; Values: string[] }>) =>
      (
        await aws.ssm.send(new DescribeInstanceInformationCommand({ Filters }))
      ).InstanceInformationList!.map((i) => i.InstanceId);

    expect(await list([{ Key: 'tag:drydock-pool', Values: ['linux-build'] }])).toEqual([
      'i-0aaaaaaaaaaaaaaa1',
      'i-0aaaaaaaaaaaaaaa2',
      'i-0aaaaaaaaaaaaaaa3',
    ]);
    expect(
      await list([
        { Key: 'tag:drydock-pool', Values: ['linux-build'] },
        { Key: 'PingStatus', Values: ['Online'] },
        { Key: 'PlatformTypes', Values: ['Linux'] },
      ]),
    ).toEqual(['i-0aaaaaaaaaaaaaaa1']);
    expect(
      await list([{ Key: 'InstanceIds', Values: ['mi-0bbbbbbbbbbbbbbb1', 'i-0aaaaaaaaaaaaaaa2'] }]),
    ).toEqual(['i-0aaaaaaaaaaaaaaa2', 'mi-0bbbbbbbbbbbbbbb1']);
    expect(await list([{ Key: 'InstanceIds', Values: ['i-0ffffffffffffffff'] }])).toEqual([]);

    const [hybrid] = (
      await aws.ssm.send(
        new DescribeInstanceInformationCommand({
          Filters: [{ Key: 'InstanceIds', Values: ['mi-0bbbbbbbbbbbbbbb1'] }],
        }),
      )
    ).InstanceInformationList!;
    expect(hybrid).toMatchObject({
      PingStatus: 'Online',
      PlatformType: 'Linux',
      ResourceType: 'ManagedInstance',
    });
  });

  it('pages with MaxResults and NextToken, and refuses a token it did not issue', async () => {
    const { aws } = setup();
    const ids = Array.from({ length: 12 }, (_, n) => `i-0${String(n).padStart(16, '0')}`);
    for (const id of ids) aws.addInstance({ id });

    const seen: string[] = [];
    let NextToken: string | undefined;
    let pages = 0;
    do {
      const page = await aws.ssm.send(
        new DescribeInstanceInformationCommand({ MaxResults: 5, NextToken }),
      );
      seen.push(...page.InstanceInformationList!.map((i) => i.InstanceId!));
      NextToken = page.NextToken;
      pages++;
    } while (NextToken);
    expect(pages).toBe(3);
    expect(seen).toEqual(ids);

    // The SDK's own paginator works against the fake as against the service.
    const viaPaginator: string[] = [];
    for await (const page of paginateDescribeInstanceInformation(
      { client: aws.ssm, pageSize: 5 },
      {},
    )) {
      viaPaginator.push(...page.InstanceInformationList!.map((i) => i.InstanceId!));
    }
    expect(viaPaginator).toEqual(ids);

    // Without MaxResults a page holds 10: a caller that ignores NextToken misses instances.
    const first = await aws.ssm.send(new DescribeInstanceInformationCommand({}));
    expect(first.InstanceInformationList).toHaveLength(10);
    expect(first.NextToken).toBeDefined();

    await expect(
      aws.ssm.send(new DescribeInstanceInformationCommand({ NextToken: 'made-up' })),
    ).rejects.toBeInstanceOf(InvalidNextToken);
    await expect(
      aws.ssm.send(new DescribeInstanceInformationCommand({ MaxResults: 51 })),
    ).rejects.toMatchObject({
      name: 'ValidationException',
    });
  });

  it('shows instances going offline and back, and forgets deregistered ones', async () => {
    const { aws, advance } = setup();
    aws.addInstance({ id: 'i-0aaaaaaaaaaaaaaa1' });
    const ping = async () =>
      (await aws.ssm.send(new DescribeInstanceInformationCommand({}))).InstanceInformationList!.map(
        (i) => `${i.InstanceId}:${i.PingStatus}`,
      );
    expect(await ping()).toEqual(['i-0aaaaaaaaaaaaaaa1:Online']);
    advance(1000);
    aws.setPing('i-0aaaaaaaaaaaaaaa1', 'ConnectionLost');
    expect(await ping()).toEqual(['i-0aaaaaaaaaaaaaaa1:ConnectionLost']);
    advance(1000);
    aws.setPing('i-0aaaaaaaaaaaaaaa1', 'Online');
    expect(await ping()).toEqual(['i-0aaaaaaaaaaaaaaa1:Online']);
    aws.deregister('i-0aaaaaaaaaaaaaaa1');
    expect(await ping()).toEqual([]);
  });
});

describe('EC2 view of the instances', () => {
  it('finds i-… instances by tag (DescribeInstances, DescribeTags); hybrid nodes are not EC2', async () => {
    const { aws } = setup();
    aws.addInstance({
      id: 'i-0aaaaaaaaaaaaaaa1',
      tags: { 'drydock-pool': 'linux-build', Name: 'one' },
    });
    aws.addInstance({ id: 'i-0aaaaaaaaaaaaaaa2', tags: { 'drydock-pool': 'other' } });
    aws.addInstance({ id: 'mi-0bbbbbbbbbbbbbbb1', tags: { 'drydock-pool': 'linux-build' } });

    const described = await aws.ec2.send(
      new DescribeInstancesCommand({
        Filters: [{ Name: 'tag:drydock-pool', Values: ['linux-build'] }],
      }),
    );
    const instances = described.Reservations!.flatMap((r) => r.Instances!);
    expect(instances.map((i) => i.InstanceId)).toEqual(['i-0aaaaaaaaaaaaaaa1']);
    expect(instances[0]).toMatchObject({ State: { Name: 'running' } });
    expect(instances[0]!.Tags).toContainEqual({ Key: 'Name', Value: 'one' });

    const tags = await aws.ec2.send(
      new DescribeTagsCommand({
        Filters: [
          { Name: 'resource-type', Values: ['instance'] },
          { Name: 'key', Values: ['drydock-pool'] },
        ],
      }),
    );
    expect(tags.Tags!.map((t) => `${t.ResourceId}=${t.Value}`)).toEqual([
      'i-0aaaaaaaaaaaaaaa1=linux-build',
      'i-0aaaaaaaaaaaaaaa2=other',
    ]);

    aws.setTags('i-0aaaaaaaaaaaaaaa1', { Name: 'one' });
    const after = await aws.ec2.send(
      new DescribeInstancesCommand({
        Filters: [{ Name: 'tag:drydock-pool', Values: ['linux-build'] }],
      }),
    );
    expect(after.Reservations).toEqual([]);

    aws.deregister('i-0aaaaaaaaaaaaaaa2');
    const gone = aws.ec2.send(
      new DescribeInstancesCommand({ InstanceIds: ['i-0aaaaaaaaaaaaaaa2'] }),
    );
    await expect(gone).rejects.toBeInstanceOf(EC2ServiceException);
    await expect(gone).rejects.toMatchObject({ name: 'InvalidInstanceID.NotFound' });
  });
});

describe('SendCommand', () => {
  it('runs AWS-RunShellScript only, on registered Online instances, and records what was sent', async () => {
    const { aws, advance } = setup();
    aws.addInstance({ id: 'i-0aaaaaaaaaaaaaaa1' });
    aws.addInstance({ id: 'i-0aaaaaaaaaaaaaaa2', ping: 'ConnectionLost' });
    aws.addInstance({ id: 'i-0aaaaaaaaaaaaaaa3' });
    aws.deregister('i-0aaaaaaaaaaaaaaa3');

    const { Command } = await aws.ssm.send(runShell('i-0aaaaaaaaaaaaaaa1', ['echo hello']));
    expect(Command).toMatchObject({
      DocumentName: 'AWS-RunShellScript',
      Status: 'Pending',
      InstanceIds: ['i-0aaaaaaaaaaaaaaa1'],
    });
    expect(Command!.CommandId).toMatch(/^[0-9a-f-]{36}$/);
    expect(aws.command(Command!.CommandId!)).toMatchObject({
      instanceId: 'i-0aaaaaaaaaaaaaaa1',
      script: 'echo hello',
    });

    await expect(
      aws.ssm.send(
        runShell('i-0aaaaaaaaaaaaaaa1', ['x'], { DocumentName: 'AWS-RunPowerShellScript' }),
      ),
    ).rejects.toBeInstanceOf(InvalidDocument);
    for (const id of ['i-0aaaaaaaaaaaaaaa2', 'i-0aaaaaaaaaaaaaaa3', 'i-0ffffffffffffffff']) {
      const refused = aws.ssm.send(runShell(id, ['echo hello']));
      await expect(refused).rejects.toBeInstanceOf(InvalidInstanceId);
      await expect(refused).rejects.toMatchObject({
        $metadata: { httpStatusCode: 400 },
        $fault: 'client',
      });
    }
    advance(5);
    await expect(
      aws.ssm.send(
        runShell('i-0aaaaaaaaaaaaaaa1', ['x'], {
          Parameters: { commands: ['x'], executionTimeout: ['0'] },
        }),
      ),
    ).rejects.toMatchObject({ name: 'InvalidParameters' });

    expect(aws.sent.filter((s) => s.operation === 'SendCommand').map((s) => s.outcome)).toEqual([
      'ok',
      'InvalidDocument',
      'InvalidInstanceId',
      'InvalidInstanceId',
      'InvalidInstanceId',
      'InvalidParameters',
    ]);
    expect(aws.sent[0]).toMatchObject({
      at: START,
      input: {
        DocumentName: 'AWS-RunShellScript',
        InstanceIds: ['i-0aaaaaaaaaaaaaaa1'],
        Parameters: {
          commands: ['echo hello'],
          workingDirectory: ['/srv/drydock'],
          executionTimeout: ['60'],
        },
      },
    });
  });
});

describe('GetCommandInvocation', () => {
  it('does not know an invocation right after SendCommand (eventual consistency)', async () => {
    const { aws, advance } = setup({ invocationVisibleAfterMs: 800 });
    aws.addInstance({ id: 'i-0aaaaaaaaaaaaaaa1' });
    const id = await send(aws, 'i-0aaaaaaaaaaaaaaa1', ['true']);
    await expect(invocation(aws, id, 'i-0aaaaaaaaaaaaaaa1')).rejects.toBeInstanceOf(
      InvocationDoesNotExist,
    );
    advance(799);
    await expect(invocation(aws, id, 'i-0aaaaaaaaaaaaaaa1')).rejects.toBeInstanceOf(
      InvocationDoesNotExist,
    );
    advance(1);
    expect((await invocation(aws, id, 'i-0aaaaaaaaaaaaaaa1')).Status).toBe('Success');
    await expect(invocation(aws, id, 'i-0aaaaaaaaaaaaaaa2')).rejects.toBeInstanceOf(
      InvocationDoesNotExist,
    );
    await expect(invocation(aws, 'not-a-command-id', 'i-0aaaaaaaaaaaaaaa1')).rejects.toMatchObject({
      name: 'InvalidCommandId',
    });
  });

  it('moves Pending → InProgress → Success over fake time, output only once finished', async () => {
    const { aws, advance } = setup({ invocationVisibleAfterMs: 0, deliveryDelayMs: 100 });
    aws.addInstance({ id: 'i-0aaaaaaaaaaaaaaa1' });
    aws.rule({
      match: /make test/,
      stdout: 'building\n',
      chunks: [
        { afterMs: 1000, stdout: 'testing\n' },
        { afterMs: 2000, stderr: 'warning: slow\n' },
      ],
      durationMs: 3000,
    });
    const id = await send(aws, 'i-0aaaaaaaaaaaaaaa1', ['cd repo', 'make test']);

    expect(await invocation(aws, id, 'i-0aaaaaaaaaaaaaaa1')).toMatchObject({
      Status: 'Pending',
      StatusDetails: 'Pending',
      ResponseCode: -1,
      ExecutionStartDateTime: '',
    });
    advance(100);
    const running = await invocation(aws, id, 'i-0aaaaaaaaaaaaaaa1');
    expect(running).toMatchObject({
      Status: 'InProgress',
      StatusDetails: 'InProgress',
      ResponseCode: -1,
      StandardOutputContent: '',
      ExecutionStartDateTime: new Date(START + 100).toISOString(),
    });
    advance(2999);
    expect((await invocation(aws, id, 'i-0aaaaaaaaaaaaaaa1')).Status).toBe('InProgress');
    advance(1);
    expect(await invocation(aws, id, 'i-0aaaaaaaaaaaaaaa1')).toMatchObject({
      Status: 'Success',
      StatusDetails: 'Success',
      ResponseCode: 0,
      StandardOutputContent: 'building\ntesting\n',
      StandardErrorContent: 'warning: slow\n',
      StandardOutputUrl: '',
      StandardErrorUrl: '',
      PluginName: 'aws:runShellScript',
      ExecutionEndDateTime: new Date(START + 3100).toISOString(),
      CloudWatchOutputConfig: { CloudWatchLogGroupName: LOG_GROUP, CloudWatchOutputEnabled: true },
    });
    expect(aws.command(id)).toMatchObject({ status: 'Success' });
  });

  it('reports a non-zero exit as Failed with its exit code', async () => {
    const { aws, advance } = setup({ invocationVisibleAfterMs: 0 });
    aws.addInstance({ id: 'i-0aaaaaaaaaaaaaaa1' });
    aws.rule({ match: /^false$/m, exitCode: 2, stderr: 'nope\n', durationMs: 10 });
    const id = await send(aws, 'i-0aaaaaaaaaaaaaaa1', ['false']);
    advance(1000);
    expect(await invocation(aws, id, 'i-0aaaaaaaaaaaaaaa1')).toMatchObject({
      Status: 'Failed',
      StatusDetails: 'Failed',
      ResponseCode: 2,
      StandardErrorContent: 'nope\n',
    });
  });

  it('cuts StandardOutputContent at 24,000 and StandardErrorContent at 8,000 characters', async () => {
    const { aws, advance } = setup({ invocationVisibleAfterMs: 0 });
    aws.addInstance({ id: 'i-0aaaaaaaaaaaaaaa1' });
    const stdout = 'o'.repeat(40_000);
    const stderr = 'e'.repeat(9_000);
    aws.rule({ match: /big/, stdout, stderr });
    const id = await send(aws, 'i-0aaaaaaaaaaaaaaa1', ['big']);
    advance(1000);
    const result = await invocation(aws, id, 'i-0aaaaaaaaaaaaaaa1');
    expect(result.StandardOutputContent).toHaveLength(24_000);
    expect(result.StandardOutputContent!.startsWith('o'.repeat(23_000))).toBe(true);
    expect(result.StandardOutputContent!.endsWith('\n---Output truncated---')).toBe(true);
    expect(result.StandardErrorContent).toHaveLength(8_000);
  });

  it('times a command out at executionTimeout (TimedOut, Execution Timed Out, no content)', async () => {
    const { aws, advance } = setup({ invocationVisibleAfterMs: 0, deliveryDelayMs: 0 });
    aws.addInstance({ id: 'i-0aaaaaaaaaaaaaaa1' });
    aws.rule({
      match: /sleep/,
      chunks: [{ afterMs: 500, stdout: 'started\n' }],
      durationMs: 3_600_000,
    });
    const id = await send(aws, 'i-0aaaaaaaaaaaaaaa1', ['sleep 3600'], {
      Parameters: { commands: ['sleep 3600'], executionTimeout: ['2'] },
    });
    advance(1999);
    expect((await invocation(aws, id, 'i-0aaaaaaaaaaaaaaa1')).Status).toBe('InProgress');
    advance(1);
    expect(await invocation(aws, id, 'i-0aaaaaaaaaaaaaaa1')).toMatchObject({
      Status: 'TimedOut',
      StatusDetails: 'Execution Timed Out',
      ResponseCode: 137,
      StandardOutputContent: '',
    });
  });
});

describe('CancelCommand', () => {
  it('cancels a running command: Cancelling, then Cancelled', async () => {
    const { aws, advance } = setup({
      invocationVisibleAfterMs: 0,
      deliveryDelayMs: 0,
      cancelDelayMs: 200,
    });
    aws.addInstance({ id: 'i-0aaaaaaaaaaaaaaa1' });
    aws.rule({ match: /long/, durationMs: 60_000 });
    const id = await send(aws, 'i-0aaaaaaaaaaaaaaa1', ['long']);
    advance(1000);
    await aws.ssm.send(
      new CancelCommandCommand({ CommandId: id, InstanceIds: ['i-0aaaaaaaaaaaaaaa1'] }),
    );
    expect((await invocation(aws, id, 'i-0aaaaaaaaaaaaaaa1')).Status).toBe('Cancelling');
    advance(200);
    expect(await invocation(aws, id, 'i-0aaaaaaaaaaaaaaa1')).toMatchObject({
      Status: 'Cancelled',
      StatusDetails: 'Cancelled',
      ResponseCode: 137,
    });
    expect(aws.sent.map((s) => s.operation)).toEqual(['SendCommand', 'CancelCommand']);
  });

  it('cancels a command not yet delivered at once, with ResponseCode -1', async () => {
    const { aws } = setup({ invocationVisibleAfterMs: 0, deliveryDelayMs: 1000 });
    aws.addInstance({ id: 'i-0aaaaaaaaaaaaaaa1' });
    const id = await send(aws, 'i-0aaaaaaaaaaaaaaa1', ['long']);
    await aws.ssm.send(new CancelCommandCommand({ CommandId: id }));
    expect(await invocation(aws, id, 'i-0aaaaaaaaaaaaaaa1')).toMatchObject({
      Status: 'Cancelled',
      ResponseCode: -1,
    });
  });

  it('loses the race to a command that finishes first: it stays finished', async () => {
    const { aws, advance } = setup({
      invocationVisibleAfterMs: 0,
      deliveryDelayMs: 0,
      cancelDelayMs: 500,
    });
    aws.addInstance({ id: 'i-0aaaaaaaaaaaaaaa1' });
    aws.rule({ match: /quick/, stdout: 'done\n', durationMs: 1200 });
    const id = await send(aws, 'i-0aaaaaaaaaaaaaaa1', ['quick']);
    advance(1000);
    await aws.ssm.send(new CancelCommandCommand({ CommandId: id }));
    expect((await invocation(aws, id, 'i-0aaaaaaaaaaaaaaa1')).Status).toBe('Cancelling');
    advance(500);
    expect(await invocation(aws, id, 'i-0aaaaaaaaaaaaaaa1')).toMatchObject({
      Status: 'Success',
      ResponseCode: 0,
      StandardOutputContent: 'done\n',
    });

    // Cancelling a command that has already ended changes nothing.
    await aws.ssm.send(new CancelCommandCommand({ CommandId: id }));
    advance(1000);
    expect((await invocation(aws, id, 'i-0aaaaaaaaaaaaaaa1')).Status).toBe('Success');
    await expect(
      aws.ssm.send(new CancelCommandCommand({ CommandId: 'nope' })),
    ).rejects.toMatchObject({
      name: 'InvalidCommandId',
    });
  });
});

describe('an instance that goes away', () => {
  it('Delayed while unreachable at delivery, delivered when it is back', async () => {
    const { aws, advance } = setup({ invocationVisibleAfterMs: 0, deliveryDelayMs: 100 });
    aws.addInstance({ id: 'i-0aaaaaaaaaaaaaaa1' });
    aws.rule({ match: /work/, durationMs: 1000 });
    const id = await send(aws, 'i-0aaaaaaaaaaaaaaa1', ['work']);
    advance(50);
    aws.setPing('i-0aaaaaaaaaaaaaaa1', 'ConnectionLost');
    advance(5000);
    expect((await invocation(aws, id, 'i-0aaaaaaaaaaaaaaa1')).Status).toBe('Delayed');
    aws.setPing('i-0aaaaaaaaaaaaaaa1', 'Online');
    expect(await invocation(aws, id, 'i-0aaaaaaaaaaaaaaa1')).toMatchObject({
      Status: 'InProgress',
      ExecutionStartDateTime: new Date(START + 5050).toISOString(),
    });
    advance(1000);
    expect((await invocation(aws, id, 'i-0aaaaaaaaaaaaaaa1')).Status).toBe('Success');
  });

  it('Undeliverable when deregistered before delivery', async () => {
    const { aws, advance } = setup({ invocationVisibleAfterMs: 0, deliveryDelayMs: 100 });
    aws.addInstance({ id: 'i-0aaaaaaaaaaaaaaa1' });
    const id = await send(aws, 'i-0aaaaaaaaaaaaaaa1', ['work']);
    advance(50);
    aws.deregister('i-0aaaaaaaaaaaaaaa1');
    expect(await invocation(aws, id, 'i-0aaaaaaaaaaaaaaa1')).toMatchObject({
      Status: 'Failed',
      StatusDetails: 'Undeliverable',
      ResponseCode: -1,
    });
  });

  it('Delivery Timed Out when it stays unreachable until the command expires', async () => {
    const { aws, advance } = setup({ invocationVisibleAfterMs: 0, deliveryDelayMs: 100 });
    aws.addInstance({ id: 'i-0aaaaaaaaaaaaaaa1' });
    const id = await send(aws, 'i-0aaaaaaaaaaaaaaa1', ['work'], {
      TimeoutSeconds: 30,
      Parameters: { commands: ['work'], executionTimeout: ['10'] },
    });
    aws.setPing('i-0aaaaaaaaaaaaaaa1', 'ConnectionLost');
    advance(39_999);
    expect((await invocation(aws, id, 'i-0aaaaaaaaaaaaaaa1')).Status).toBe('Delayed');
    advance(1);
    expect(await invocation(aws, id, 'i-0aaaaaaaaaaaaaaa1')).toMatchObject({
      Status: 'TimedOut',
      StatusDetails: 'Delivery Timed Out',
      ResponseCode: -1,
    });
  });

  it('an agent that loses its connection mid-command reports the result when it is back', async () => {
    const { aws, advance } = setup({ invocationVisibleAfterMs: 0, deliveryDelayMs: 0 });
    aws.addInstance({ id: 'i-0aaaaaaaaaaaaaaa1' });
    aws.rule({
      match: /work/,
      stdout: 'a\n',
      chunks: [{ afterMs: 2000, stdout: 'b\n' }],
      durationMs: 3000,
    });
    const id = await send(aws, 'i-0aaaaaaaaaaaaaaa1', ['work']);
    advance(1000);
    aws.setPing('i-0aaaaaaaaaaaaaaa1', 'ConnectionLost');
    advance(5000);
    expect((await invocation(aws, id, 'i-0aaaaaaaaaaaaaaa1')).Status).toBe('InProgress');
    aws.setPing('i-0aaaaaaaaaaaaaaa1', 'Online');
    expect(await invocation(aws, id, 'i-0aaaaaaaaaaaaaaa1')).toMatchObject({
      Status: 'Success',
      StandardOutputContent: 'a\nb\n',
    });
  });

  it('a command on an instance deregistered mid-command expires as Delivery Timed Out', async () => {
    const { aws, advance } = setup({ invocationVisibleAfterMs: 0, deliveryDelayMs: 0 });
    aws.addInstance({ id: 'i-0aaaaaaaaaaaaaaa1' });
    aws.rule({ match: /work/, durationMs: 5000 });
    const id = await send(aws, 'i-0aaaaaaaaaaaaaaa1', ['work'], {
      TimeoutSeconds: 30,
      Parameters: { commands: ['work'], executionTimeout: ['10'] },
    });
    advance(1000);
    aws.deregister('i-0aaaaaaaaaaaaaaa1');
    advance(10_000);
    expect((await invocation(aws, id, 'i-0aaaaaaaaaaaaaaa1')).Status).toBe('InProgress');
    advance(29_000);
    expect(await invocation(aws, id, 'i-0aaaaaaaaaaaaaaa1')).toMatchObject({
      Status: 'TimedOut',
      StatusDetails: 'Delivery Timed Out',
    });
  });
});

describe('throttling on demand', () => {
  it('fails the next n calls of an operation with the service’s own throttling error', async () => {
    const { aws } = setup({ invocationVisibleAfterMs: 0 });
    aws.addInstance({ id: 'i-0aaaaaaaaaaaaaaa1' });
    aws.throttle('SendCommand', 2);
    aws.throttle('DescribeInstances');
    aws.throttle('GetLogEvents');
    for (let n = 0; n < 2; n++) {
      const refused = send(aws, 'i-0aaaaaaaaaaaaaaa1', ['true']);
      await expect(refused).rejects.toBeInstanceOf(ThrottlingException);
      await expect(refused).rejects.toMatchObject({
        name: 'ThrottlingException',
        $metadata: { httpStatusCode: 400 },
      });
    }
    const id = await send(aws, 'i-0aaaaaaaaaaaaaaa1', ['true']);
    expect(id).toBeDefined();
    await expect(aws.ec2.send(new DescribeInstancesCommand({}))).rejects.toMatchObject({
      name: 'RequestLimitExceeded',
      $metadata: { httpStatusCode: 503 },
    });
    await expect(
      aws.logs.send(new GetLogEventsCommand({ logGroupName: LOG_GROUP, logStreamName: 'x' })),
    ).rejects.toBeInstanceOf(LogsThrottlingException);
    expect(aws.calls.filter((c) => c.throttled).map((c) => c.operation)).toEqual([
      'SendCommand',
      'SendCommand',
      'DescribeInstances',
      'GetLogEvents',
    ]);
    expect(() => aws.throttle('SendCommandz')).toThrow(/unknown operation/);
  });

  it('fails loudly on an operation it does not model', async () => {
    const { aws } = setup();
    // (ListCommands is modelled now, for the command interface's crashed-start check.)
    const { ListCommandInvocationsCommand } = await import('@aws-sdk/client-ssm');
    await expect(aws.ssm.send(new ListCommandInvocationsCommand({}))).rejects.toThrow(
      /not modelled/,
    );
  });
});

describe('command output in CloudWatch Logs', () => {
  async function readAll(aws: FakeAws, stream: string, nextToken?: string) {
    const page = await aws.logs.send(
      new GetLogEventsCommand({
        logGroupName: LOG_GROUP,
        logStreamName: stream,
        startFromHead: true,
        nextToken,
      }),
    );
    return {
      messages: page.events!.map((e) => e.message),
      events: page.events!,
      token: page.nextForwardToken!,
    };
  }

  it('streams the output as it is printed into <CommandId>/<InstanceId>/aws-runShellScript/stdout', async () => {
    const { aws, advance } = setup({ invocationVisibleAfterMs: 0, deliveryDelayMs: 100 });
    aws.addInstance({ id: 'i-0aaaaaaaaaaaaaaa1' });
    aws.rule({
      match: /make/,
      stdout: 'one\n',
      chunks: [
        { afterMs: 1000, stdout: 'two\n', stderr: 'oops\n' },
        { afterMs: 2000, stdout: 'three\n' },
      ],
    });
    const id = await send(aws, 'i-0aaaaaaaaaaaaaaa1', ['make']);
    const stdout = `${id}/i-0aaaaaaaaaaaaaaa1/aws-runShellScript/stdout`;
    expect(aws.streamName(id, 'i-0aaaaaaaaaaaaaaa1', 'stdout')).toBe(stdout);

    // Nothing printed yet: the group exists, the stream does not.
    const early = readAll(aws, stdout);
    await expect(early).rejects.toBeInstanceOf(ResourceNotFoundException);
    await expect(early).rejects.toMatchObject({
      message: 'The specified log stream does not exist.',
    });

    advance(100);
    const first = await readAll(aws, stdout);
    expect(first.messages).toEqual(['one\n']);
    expect(first.events[0]!.timestamp).toBe(START + 100);

    // Nothing new: the same forward token comes back.
    const again = await readAll(aws, stdout, first.token);
    expect(again.messages).toEqual([]);
    expect(again.token).toBe(first.token);

    advance(1000);
    const second = await readAll(aws, stdout, first.token);
    expect(second.messages).toEqual(['two\n']);
    expect(second.events[0]!.timestamp).toBe(START + 1100);
    advance(1000);
    expect((await readAll(aws, stdout, second.token)).messages).toEqual(['three\n']);
    expect(
      (await readAll(aws, `${id}/i-0aaaaaaaaaaaaaaa1/aws-runShellScript/stderr`)).messages,
    ).toEqual(['oops\n']);

    // Without startFromHead, GetLogEvents returns the newest events.
    const newest = await aws.logs.send(
      new GetLogEventsCommand({ logGroupName: LOG_GROUP, logStreamName: stdout, limit: 2 }),
    );
    expect(newest.events!.map((e) => e.message)).toEqual(['two\n', 'three\n']);
    const older = await aws.logs.send(
      new GetLogEventsCommand({
        logGroupName: LOG_GROUP,
        logStreamName: stdout,
        nextToken: newest.nextBackwardToken,
      }),
    );
    expect(older.events!.map((e) => e.message)).toEqual(['one\n']);
  });

  it('holds the whole of a 40,000-character output, in order, beyond the 24,000 of GetCommandInvocation', async () => {
    const { aws, advance } = setup({ invocationVisibleAfterMs: 0, deliveryDelayMs: 0 });
    aws.addInstance({ id: 'i-0aaaaaaaaaaaaaaa1' });
    const pieces = Array.from(
      { length: 40 },
      (_, n) => `${String(n).padStart(3, '0')}${'x'.repeat(996)}\n`,
    );
    aws.rule({
      match: /cat big/,
      chunks: pieces.map((stdout, n) => ({ afterMs: n * 10, stdout })),
    });
    const id = await send(aws, 'i-0aaaaaaaaaaaaaaa1', ['cat big']);
    advance(1000);
    const result = await invocation(aws, id, 'i-0aaaaaaaaaaaaaaa1');
    expect(result.Status).toBe('Success');
    expect(result.StandardOutputContent).toHaveLength(24_000);

    const stream = aws.streamName(id, 'i-0aaaaaaaaaaaaaaa1', 'stdout');
    let text = '';
    let token: string | undefined;
    for (;;) {
      const page = await aws.logs.send(
        new GetLogEventsCommand({
          logGroupName: LOG_GROUP,
          logStreamName: stream,
          startFromHead: true,
          nextToken: token,
          limit: 7,
        }),
      );
      text += page.events!.map((e) => e.message).join('');
      if (page.nextForwardToken === token) break;
      token = page.nextForwardToken;
    }
    expect(text).toBe(pieces.join(''));
    expect(text).toHaveLength(40_000);
  });

  it('keeps what a timed-out or cancelled command printed before it was stopped', async () => {
    const { aws, advance } = setup({
      invocationVisibleAfterMs: 0,
      deliveryDelayMs: 0,
      cancelDelayMs: 100,
    });
    aws.addInstance({ id: 'i-0aaaaaaaaaaaaaaa1' });
    aws.rule({
      match: /forever/,
      chunks: [
        { afterMs: 500, stdout: 'before\n' },
        { afterMs: 5000, stdout: 'after\n' },
      ],
      durationMs: 10_000,
    });
    const timedOut = await send(aws, 'i-0aaaaaaaaaaaaaaa1', ['forever'], {
      Parameters: { commands: ['forever'], executionTimeout: ['1'] },
    });
    const cancelled = await send(aws, 'i-0aaaaaaaaaaaaaaa1', ['forever']);
    advance(1000);
    await aws.ssm.send(new CancelCommandCommand({ CommandId: cancelled }));
    advance(60_000);
    for (const id of [timedOut, cancelled]) {
      expect(
        aws
          .logEvents(LOG_GROUP, aws.streamName(id, 'i-0aaaaaaaaaaaaaaa1', 'stdout'))
          .map((e) => e.message),
      ).toEqual(['before\n']);
    }
    expect((await invocation(aws, timedOut, 'i-0aaaaaaaaaaaaaaa1')).Status).toBe('TimedOut');
    expect((await invocation(aws, cancelled, 'i-0aaaaaaaaaaaaaaa1')).Status).toBe('Cancelled');
  });

  it('receives output printed while the instance was offline once it is back, stamped when printed', async () => {
    const { aws, advance } = setup({ invocationVisibleAfterMs: 0, deliveryDelayMs: 0 });
    aws.addInstance({ id: 'i-0aaaaaaaaaaaaaaa1' });
    aws.rule({
      match: /work/,
      stdout: 'a\n',
      chunks: [{ afterMs: 2000, stdout: 'b\n' }],
      durationMs: 3000,
    });
    const id = await send(aws, 'i-0aaaaaaaaaaaaaaa1', ['work']);
    const stream = aws.streamName(id, 'i-0aaaaaaaaaaaaaaa1', 'stdout');
    advance(1000);
    aws.setPing('i-0aaaaaaaaaaaaaaa1', 'ConnectionLost');
    advance(5000);
    expect((await readAll(aws, stream)).messages).toEqual(['a\n']);
    aws.setPing('i-0aaaaaaaaaaaaaaa1', 'Online');
    const all = await readAll(aws, stream);
    expect(all.messages).toEqual(['a\n', 'b\n']);
    expect(all.events.map((e) => e.timestamp)).toEqual([START, START + 2000]);
  });

  it('filters the events of a command across its streams (FilterLogEvents)', async () => {
    const { aws, advance } = setup({ invocationVisibleAfterMs: 0, deliveryDelayMs: 0 });
    aws.addInstance({ id: 'i-0aaaaaaaaaaaaaaa1' });
    aws.rule({
      match: /build/,
      stdout: 'compiling\n',
      chunks: [
        { afterMs: 10, stderr: 'error: boom\n' },
        { afterMs: 20, stdout: 'error summary\n' },
      ],
    });
    const id = await send(aws, 'i-0aaaaaaaaaaaaaaa1', ['build']);
    await send(aws, 'i-0aaaaaaaaaaaaaaa1', ['build']);
    advance(100);
    const all = await aws.logs.send(
      new FilterLogEventsCommand({ logGroupName: LOG_GROUP, logStreamNamePrefix: `${id}/` }),
    );
    expect(all.events!.map((e) => e.message)).toEqual([
      'compiling\n',
      'error: boom\n',
      'error summary\n',
    ]);
    expect(all.events![1]!.logStreamName).toBe(aws.streamName(id, 'i-0aaaaaaaaaaaaaaa1', 'stderr'));
    const errors = await aws.logs.send(
      new FilterLogEventsCommand({
        logGroupName: LOG_GROUP,
        logStreamNamePrefix: `${id}/`,
        filterPattern: 'error',
      }),
    );
    expect(errors.events).toHaveLength(2);
    const paged = await aws.logs.send(
      new FilterLogEventsCommand({ logGroupName: LOG_GROUP, limit: 4 }),
    );
    expect(paged.events).toHaveLength(4);
    const rest = await aws.logs.send(
      new FilterLogEventsCommand({ logGroupName: LOG_GROUP, limit: 4, nextToken: paged.nextToken }),
    );
    expect(rest.events).toHaveLength(2);
    expect(rest.nextToken).toBeUndefined();
  });

  it('sends nothing to CloudWatch Logs when output is not enabled, and knows no such group', async () => {
    const { aws, advance } = setup({ invocationVisibleAfterMs: 0 });
    aws.addInstance({ id: 'i-0aaaaaaaaaaaaaaa1' });
    aws.rule({ match: /echo/, stdout: 'hi\n' });
    const id = await send(aws, 'i-0aaaaaaaaaaaaaaa1', ['echo hi'], {
      CloudWatchOutputConfig: undefined,
    });
    advance(1000);
    expect(await invocation(aws, id, 'i-0aaaaaaaaaaaaaaa1')).toMatchObject({
      StandardOutputContent: 'hi\n',
      CloudWatchOutputConfig: { CloudWatchOutputEnabled: false },
    });
    await expect(
      aws.logs.send(
        new GetLogEventsCommand({
          logGroupName: LOG_GROUP,
          logStreamName: aws.streamName(id, 'i-0aaaaaaaaaaaaaaa1', 'stdout'),
        }),
      ),
    ).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
      message: 'The specified log group does not exist.',
    });
  });
});
