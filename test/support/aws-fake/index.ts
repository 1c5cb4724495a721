/**
 * A stateful fake of the EC2, SSM and CloudWatch Logs APIs a static-host plug-in uses, shared by
 * every test that needs AWS without AWS (no emulator for these services runs here). The clients
 * are the real SDK clients with `aws-sdk-client-mock` installed on them, so the plug-in code is
 * the code that runs on AWS; one model answers all three, on the injected clock.
 *
 * Module map: instances.ts (registrations, ping history), ssm-instances.ts and ec2.ts (the two
 * views of them), fleet.ts (instances launched and terminated through EC2), rules.ts (scripted commands), invocation.ts (a command's status over time),
 * commands.ts (Run Command and its CloudWatch output), logs.ts (CloudWatch Logs), errors.ts,
 * throttling.ts, pagination.ts.
 */
import {
  CloudWatchLogsClient,
  CreateLogGroupCommand,
  FilterLogEventsCommand,
  GetLogEventsCommand,
} from '@aws-sdk/client-cloudwatch-logs';
import {
  DescribeInstancesCommand,
  DescribeTagsCommand,
  EC2Client,
  RunInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import {
  CancelCommandCommand,
  DescribeInstanceInformationCommand,
  GetCommandInvocationCommand,
  ListCommandsCommand,
  SendCommandCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import type { CloudClients } from '../../../lambdas/core/blueprint.ts';
import { CommandStore, logStreamName } from './commands.ts';
import { describeInstances, describeTags } from './ec2.ts';
import { ec2Errors, logsErrors, ssmErrors } from './errors.ts';
import { type CapacityRule, Fleet, type FleetTimings, type LaunchedInstance } from './fleet.ts';
import { InstanceRegistry, type PingStatus, type Platform } from './instances.ts';
import { LogStore } from './logs.ts';
import type { CommandRule, StreamName } from './rules.ts';
import { describeInstanceInformation } from './ssm-instances.ts';
import { Throttles } from './throttling.ts';

export { logStreamName } from './commands.ts';
export type { CapacityRule, LaunchedInstance, LaunchedState, Market } from './fleet.ts';
export type { PingStatus, Platform } from './instances.ts';
export type { CommandRule } from './rules.ts';

export interface FakeAwsOptions {
  clock: { now(): number };
  /** @default 'eu-west-1' */
  region?: string;
  /** GetCommandInvocation says InvocationDoesNotExist for this long after SendCommand. @default 500 */
  invocationVisibleAfterMs?: number;
  /** From SendCommand until the agent has the command (Pending meanwhile). @default 100 */
  deliveryDelayMs?: number;
  /** From CancelCommand until the agent has killed a running script (Cancelling meanwhile). @default 200 */
  cancelDelayMs?: number;
  /** DescribeInstanceInformation's page size when MaxResults is not given. @default 10 */
  describePageSize?: number;
  /** Launched instances' lifecycle (see fleet.ts for the defaults). */
  fleet?: Partial<FleetTimings>;
}

export interface SentRequest {
  operation: string;
  input: unknown;
  at: number;
  outcome: string;
}

export interface FakeCall {
  operation: string;
  at: number;
  throttled: boolean;
  outcome: string;
}

const SSM_OPERATIONS = [
  'SendCommand',
  'GetCommandInvocation',
  'CancelCommand',
  'DescribeInstanceInformation',
  'ListCommands',
];
const EC2_OPERATIONS = ['DescribeInstances', 'DescribeTags', 'RunInstances', 'TerminateInstances'];
const LOGS_OPERATIONS = ['GetLogEvents', 'FilterLogEvents', 'CreateLogGroup'];

export class FakeAws {
  /** Real SDK clients (EC2Client, SSMClient, CloudWatchLogsClient) with aws-sdk-client-mock installed on them. */
  readonly ec2: EC2Client;
  readonly ssm: SSMClient;
  readonly logs: CloudWatchLogsClient;
  /**
   * What was sent (for assertions): every SendCommand, CancelCommand, RunInstances and
   * TerminateInstances call, refused ones included; `outcome` is 'ok' or the error's name ('InvalidInstanceId', 'ThrottlingException').
   */
  readonly sent: SentRequest[] = [];
  /** Every call of every operation, in order (for "no busy polling" assertions). */
  readonly calls: FakeCall[] = [];

  private readonly clock: { now(): number };
  private readonly instances: InstanceRegistry;
  private readonly fleet: Fleet;
  private readonly logStore = new LogStore();
  private readonly commands: CommandStore;
  private readonly rules: CommandRule[] = [];
  private readonly throttles = new Throttles([
    ...SSM_OPERATIONS,
    ...EC2_OPERATIONS,
    ...LOGS_OPERATIONS,
  ]);
  private readonly pageSize: number;

  constructor(options: FakeAwsOptions) {
    this.clock = options.clock;
    this.pageSize = options.describePageSize ?? 10;
    this.instances = new InstanceRegistry(this.clock);
    this.fleet = new Fleet(this.clock, this.instances, {
      visibleAfterMs: 100,
      runningAfterMs: 2_000,
      ssmOnlineAfterMs: 3_000,
      terminateAfterMs: 1_000,
      ...options.fleet,
    });
    this.commands = new CommandStore(this.clock, this.instances, this.logStore, this.rules, {
      invocationVisibleAfterMs: options.invocationVisibleAfterMs ?? 500,
      deliveryDelayMs: options.deliveryDelayMs ?? 100,
      cancelDelayMs: options.cancelDelayMs ?? 200,
    });
    // Dummy credentials: the mock replaces `send`, so nothing is signed or sent; they only stop
    // the SDK from looking for real ones if a middleware ever asks.
    const config = {
      region: options.region ?? 'eu-west-1',
      credentials: { accessKeyId: 'FAKE', secretAccessKey: 'FAKE' },
    };
    this.ec2 = new EC2Client(config);
    this.ssm = new SSMClient(config);
    this.logs = new CloudWatchLogsClient(config);
    this.installSsm();
    this.installEc2();
    this.installLogs();
  }

  /** `{ ec2, ssm, logs }` for BlueprintContext.clients / makeEngine({ clients }). */
  clients(): CloudClients {
    return { ec2: this.ec2, ssm: this.ssm, logs: this.logs };
  }

  /** A managed instance (EC2 `i-…` or hybrid `mi-…`). Defaults: platform 'Linux', ping 'Online', tags {}. */
  addInstance(i: {
    id: string;
    tags?: Record<string, string>;
    platform?: Platform;
    ping?: PingStatus;
  }): void {
    this.settle();
    this.instances.add(i);
  }

  setPing(id: string, ping: PingStatus): void {
    this.settle();
    this.instances.require(id, 'setPing').setPing(ping, this.clock.now());
  }

  setTags(id: string, tags: Record<string, string>): void {
    this.instances.require(id, 'setTags').tags = { ...tags };
  }

  /** Gone from SSM (and EC2 for i-…); its running commands are never heard of again. */
  deregister(id: string): void {
    this.settle();
    this.instances.deregister(id);
  }

  /** Scripted command behaviour; the first matching rule wins; an unmatched script exits 0 with no output. */
  rule(r: CommandRule): void {
    this.rules.push(r);
  }

  /** The next `n` calls of `operation` (e.g. 'SendCommand', 'GetLogEvents') fail with the service's throttling error. */
  throttle(operation: string, n = 1): void {
    this.throttles.add(operation, n);
  }

  /** RunInstances refuses launches matching this rule with its error code (scripted capacity). */
  noCapacity(rule: CapacityRule): void {
    this.fleet.noCapacity(rule);
  }

  clearCapacityRules(): void {
    this.fleet.clearCapacityRules();
  }

  /** A spot interruption notice for a launched instance; returns its time. */
  interrupt(id: string): number {
    this.settle();
    const at = this.fleet.interrupt(id);
    return at;
  }

  /** Instances launched through RunInstances, with their state now (for assertions). */
  launched(): Array<LaunchedInstance & { state: string }> {
    this.settle();
    return this.fleet.all().map((i) => ({ ...i, state: this.fleet.stateOf(i) }));
  }

  /** Pending or running launched instances tagged `drydock:deployment=<deployment>` now. */
  liveInstances(deployment: string): LaunchedInstance[] {
    return this.fleet.live(deployment);
  }

  /** The most launched instances of one deployment pending or running at the same time. */
  peakLiveInstances(deployment: string): number {
    return this.fleet.peakLive(deployment);
  }

  /** Commands by id with their reported state (for assertions). */
  command(
    commandId: string,
  ): { instanceId: string; status: string; statusDetails: string; script: string } | undefined {
    this.settle();
    return this.commands.describe(commandId);
  }

  /** The events of one log stream as CloudWatch Logs holds them now (for assertions). */
  logEvents(group: string, stream: string): Array<{ timestamp: number; message: string }> {
    this.settle();
    return this.logStore.events(group, stream);
  }

  /** The stream name SSM uses for one stream of one invocation's output. */
  streamName(commandId: string, instanceId: string, stream: StreamName): string {
    return logStreamName(commandId, instanceId, stream);
  }

  /**
   * Brings what the services have recorded up to "now" before anything changes or is read:
   * output a command printed before its instance went offline must reach the logs before the
   * ping change hides what follows.
   */
  private settle(): void {
    this.fleet.settle();
    this.commands.syncLogs();
  }

  /**
   * Every fake call: recorded (with its input when `sentInput` is given), maybe throttled, then
   * answered from a settled model; the record ends with the outcome, so a test can tell sends
   * the service accepted from refused ones.
   */
  private async answer<T>(
    operation: string,
    throttled: () => Error,
    respond: () => T,
    sentInput?: unknown,
  ): Promise<T> {
    const at = this.clock.now();
    const isThrottled = this.throttles.take(operation);
    const call: FakeCall = { operation, at, throttled: isThrottled, outcome: 'ok' };
    this.calls.push(call);
    const sent: SentRequest | undefined =
      sentInput === undefined
        ? undefined
        : { operation, input: structuredClone(sentInput), at, outcome: 'ok' };
    if (sent) this.sent.push(sent);
    try {
      if (isThrottled) throw throttled();
      this.settle();
      return respond();
    } catch (err) {
      const name = err instanceof Error ? err.name : 'Error';
      call.outcome = name;
      if (sent) sent.outcome = name;
      throw err;
    }
  }

  private installSsm(): void {
    const ssm = mockClient(this.ssm);
    ssm.onAnyCommand().callsFake(unsupported('SSM'));
    ssm
      .on(SendCommandCommand)
      .callsFake((input) =>
        this.answer(
          'SendCommand',
          ssmErrors.throttling,
          () => ({ Command: this.commands.send(input), $metadata: { httpStatusCode: 200 } }),
          input,
        ),
      );
    ssm.on(CancelCommandCommand).callsFake((input) =>
      this.answer(
        'CancelCommand',
        ssmErrors.throttling,
        () => {
          this.commands.cancel(input);
          return { $metadata: { httpStatusCode: 200 } };
        },
        input,
      ),
    );
    ssm
      .on(GetCommandInvocationCommand)
      .callsFake((input) =>
        this.answer('GetCommandInvocation', ssmErrors.throttling, () =>
          this.commands.getInvocation(input),
        ),
      );
    ssm
      .on(ListCommandsCommand)
      .callsFake((input) =>
        this.answer('ListCommands', ssmErrors.throttling, () => this.commands.list(input)),
      );
    ssm
      .on(DescribeInstanceInformationCommand)
      .callsFake((input) =>
        this.answer('DescribeInstanceInformation', ssmErrors.throttling, () =>
          describeInstanceInformation(this.instances, input, this.pageSize),
        ),
      );
  }

  private installEc2(): void {
    const ec2 = mockClient(this.ec2);
    ec2.onAnyCommand().callsFake(unsupported('EC2'));
    ec2
      .on(DescribeInstancesCommand)
      .callsFake((input) =>
        this.answer('DescribeInstances', ec2Errors.throttling, () =>
          describeInstances(this.instances, input, this.fleet),
        ),
      );
    ec2
      .on(RunInstancesCommand)
      .callsFake((input) =>
        this.answer(
          'RunInstances',
          ec2Errors.throttling,
          () => this.fleet.runInstances(input),
          input,
        ),
      );
    ec2
      .on(TerminateInstancesCommand)
      .callsFake((input) =>
        this.answer(
          'TerminateInstances',
          ec2Errors.throttling,
          () => this.fleet.terminateInstances(input),
          input,
        ),
      );
    ec2
      .on(DescribeTagsCommand)
      .callsFake((input) =>
        this.answer('DescribeTags', ec2Errors.throttling, () =>
          describeTags(this.instances, input),
        ),
      );
  }

  private installLogs(): void {
    const logs = mockClient(this.logs);
    logs.onAnyCommand().callsFake(unsupported('CloudWatch Logs'));
    logs
      .on(GetLogEventsCommand)
      .callsFake((input) =>
        this.answer('GetLogEvents', logsErrors.throttling, () => this.logStore.getLogEvents(input)),
      );
    logs
      .on(FilterLogEventsCommand)
      .callsFake((input) =>
        this.answer('FilterLogEvents', logsErrors.throttling, () =>
          this.logStore.filterLogEvents(input),
        ),
      );
    logs.on(CreateLogGroupCommand).callsFake((input) =>
      this.answer('CreateLogGroup', logsErrors.throttling, () => {
        this.logStore.createGroup(input.logGroupName);
        return { $metadata: { httpStatusCode: 200 } };
      }),
    );
  }
}

/** A command the fake does not model fails loudly instead of resolving to undefined. */
function unsupported(service: string) {
  return async (input: unknown): Promise<never> => {
    throw new Error(
      `FakeAws: this ${service} command is not modelled (input ${JSON.stringify(input)}); add it to test/support/aws-fake`,
    );
  };
}
