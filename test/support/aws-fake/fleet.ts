/**
 * Instances the fake launches itself (RunInstances) and terminates (TerminateInstances), as the
 * EC2 API reference documents them:
 *
 *  - RunInstances (docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RunInstances.html) with a
 *    `ClientToken`: the same token with the same parameters returns the instance the first call
 *    launched; the same token with different parameters is `IdempotentParameterMismatch`
 *    ("Ensuring idempotency in Amazon EC2 API requests"). A refused launch (no capacity)
 *    consumes no token. Tags come from `TagSpecifications` (ResourceType `instance`) only.
 *  - Capacity is scripted per (instance type, subnet, market): a matching rule refuses the launch
 *    with its error code (`InsufficientInstanceCapacity`, `Unsupported`,
 *    `SpotMaxPriceTooLow`, `MaxSpotInstanceCountExceeded`, …). No rule: capacity.
 *  - Lifecycle on the injected clock: `pending` → `running` after `runningAfterMs`; the SSM agent
 *    registers (ping Online) `ssmOnlineAfterMs` later; TerminateInstances → `shutting-down` →
 *    `terminated` after `terminateAfterMs` (deregistered from SSM at once).
 *  - Eventual consistency: DescribeInstances does not know an instance for `visibleAfterMs`
 *    after the launch (`InvalidInstanceID.NotFound` by id, absent from filtered listings).
 *  - `interrupt(id)`: the spot interruption notice; EC2 stops the instance two minutes later
 *    (here: `shutting-down` then `terminated`, the `terminate` interruption behaviour).
 */
import type {
  Instance,
  RunInstancesCommandInput,
  RunInstancesCommandOutput,
  TerminateInstancesCommandInput,
  TerminateInstancesCommandOutput,
} from '@aws-sdk/client-ec2';
import { ec2Errors } from './errors.ts';
import type { InstanceRegistry } from './instances.ts';

export type Market = 'spot' | 'on-demand';
export type LaunchedState = 'pending' | 'running' | 'shutting-down' | 'terminated';

export interface FleetTimings {
  /** @default 100 */
  visibleAfterMs: number;
  /** @default 2_000 */
  runningAfterMs: number;
  /** @default 3_000 */
  ssmOnlineAfterMs: number;
  /** @default 1_000 */
  terminateAfterMs: number;
}

export interface CapacityRule {
  instanceType?: string;
  subnetId?: string;
  market?: Market;
  /** @default 'InsufficientInstanceCapacity' */
  code?: string;
}

/** The two-minute notice EC2 gives before it reclaims a spot instance. */
export const INTERRUPTION_NOTICE_MS = 120_000;

export interface LaunchedInstance {
  id: string;
  instanceType: string;
  subnetId: string;
  market: Market;
  tags: Record<string, string>;
  launchedAt: number;
  /** When shutting-down begins (TerminateInstances, or the end of an interruption notice). */
  terminatingAt?: number;
  interruptedAt?: number;
  /** Registered with SSM (the fake's InstanceRegistry) yet. */
  ssmRegistered: boolean;
  ssmDeregistered: boolean;
}

export class Fleet {
  private readonly launched = new Map<string, LaunchedInstance>();
  private readonly tokens = new Map<string, { params: string; instanceId: string }>();
  private readonly capacity: CapacityRule[] = [];
  private next = 1;
  private peaks = new Map<string, number>();

  constructor(
    private readonly clock: { now(): number },
    private readonly registry: InstanceRegistry,
    private readonly timings: FleetTimings,
  ) {}

  noCapacity(rule: CapacityRule): void {
    this.capacity.push(rule);
  }

  clearCapacityRules(): void {
    this.capacity.length = 0;
  }

  has(id: string): boolean {
    return this.launched.has(id);
  }

  get(id: string): LaunchedInstance | undefined {
    return this.launched.get(id);
  }

  all(): LaunchedInstance[] {
    return [...this.launched.values()];
  }

  stateOf(i: LaunchedInstance, now = this.clock.now()): LaunchedState {
    if (i.terminatingAt !== undefined && now >= i.terminatingAt) {
      return now >= i.terminatingAt + this.timings.terminateAfterMs
        ? 'terminated'
        : 'shutting-down';
    }
    return now >= i.launchedAt + this.timings.runningAfterMs ? 'running' : 'pending';
  }

  visible(i: LaunchedInstance, now = this.clock.now()): boolean {
    return now >= i.launchedAt + this.timings.visibleAfterMs;
  }

  /** Pending or running instances carrying `drydock:deployment=<deployment>` now. */
  live(deployment: string): LaunchedInstance[] {
    return this.all().filter(
      (i) =>
        i.tags['drydock:deployment'] === deployment &&
        ['pending', 'running'].includes(this.stateOf(i)),
    );
  }

  /** The most instances of one deployment that were pending or running at once. */
  peakLive(deployment: string): number {
    return this.peaks.get(deployment) ?? 0;
  }

  /** Brings SSM registrations up to now (the agent registers once running, leaves on shutdown). */
  settle(): void {
    const now = this.clock.now();
    for (const i of this.launched.values()) {
      const state = this.stateOf(i, now);
      const online = i.launchedAt + this.timings.runningAfterMs + this.timings.ssmOnlineAfterMs;
      if (!i.ssmRegistered && state === 'running' && now >= online) {
        this.registry.add({ id: i.id, tags: i.tags });
        i.ssmRegistered = true;
      }
      if (i.ssmRegistered && !i.ssmDeregistered && state !== 'running' && state !== 'pending') {
        this.registry.deregister(i.id);
        i.ssmDeregistered = true;
      }
    }
  }

  runInstances(input: RunInstancesCommandInput): RunInstancesCommandOutput {
    if (input.MinCount !== 1 || input.MaxCount !== 1) {
      throw ec2Errors.invalidParameterValue(
        'the fake launches exactly one instance (MinCount = MaxCount = 1)',
      );
    }
    const { ClientToken, ...rest } = input;
    const params = JSON.stringify(rest);
    if (ClientToken !== undefined) {
      const known = this.tokens.get(ClientToken);
      if (known && known.params !== params) {
        throw ec2Errors.code(
          'IdempotentParameterMismatch',
          `The client token '${ClientToken}' was already used with different parameters`,
        );
      }
      if (known) return this.reservation(this.launched.get(known.instanceId) as LaunchedInstance);
    }
    const instanceType = input.InstanceType ?? 'm5.large';
    const subnetId = input.SubnetId ?? 'subnet-default';
    const market: Market =
      input.InstanceMarketOptions?.MarketType === 'spot' ? 'spot' : 'on-demand';
    const refused = this.capacity.find(
      (r) =>
        (r.instanceType === undefined || r.instanceType === instanceType) &&
        (r.subnetId === undefined || r.subnetId === subnetId) &&
        (r.market === undefined || r.market === market),
    );
    if (refused) {
      const code = refused.code ?? 'InsufficientInstanceCapacity';
      throw ec2Errors.code(
        code,
        `${code}: no ${market} capacity for ${instanceType} in ${subnetId} (scripted)`,
      );
    }
    const tags: Record<string, string> = {};
    for (const spec of input.TagSpecifications ?? []) {
      if (spec.ResourceType !== 'instance') continue;
      for (const t of spec.Tags ?? []) tags[t.Key ?? ''] = t.Value ?? '';
    }
    const id = `i-0${(this.next++).toString(16).padStart(16, '0')}`;
    const instance: LaunchedInstance = {
      id,
      instanceType,
      subnetId,
      market,
      tags,
      launchedAt: this.clock.now(),
      ssmRegistered: false,
      ssmDeregistered: false,
    };
    this.launched.set(id, instance);
    if (ClientToken !== undefined) this.tokens.set(ClientToken, { params, instanceId: id });
    const deployment = tags['drydock:deployment'];
    if (deployment !== undefined) {
      this.peaks.set(deployment, Math.max(this.peakLive(deployment), this.live(deployment).length));
    }
    return this.reservation(instance);
  }

  terminateInstances(input: TerminateInstancesCommandInput): TerminateInstancesCommandOutput {
    const ids = input.InstanceIds ?? [];
    const missing = ids.filter((id) => !this.launched.has(id));
    if (missing.length > 0) throw ec2Errors.instanceNotFound(missing);
    const now = this.clock.now();
    return {
      TerminatingInstances: ids.map((id) => {
        const i = this.launched.get(id) as LaunchedInstance;
        const previous = this.stateOf(i, now);
        if (i.terminatingAt === undefined || i.terminatingAt > now) i.terminatingAt = now;
        return {
          InstanceId: id,
          PreviousState: { Name: previous },
          CurrentState: { Name: this.stateOf(i, now) },
        };
      }),
      $metadata: { httpStatusCode: 200 },
    };
  }

  /** The interruption notice; returns its time (the event's `time`). */
  interrupt(id: string): number {
    const i = this.launched.get(id);
    if (!i) throw new Error(`FakeAws.interrupt: no launched instance '${id}'`);
    if (i.market !== 'spot') throw new Error(`FakeAws.interrupt: '${id}' is not a spot instance`);
    const now = this.clock.now();
    i.interruptedAt = now;
    if (i.terminatingAt === undefined) i.terminatingAt = now + INTERRUPTION_NOTICE_MS;
    return now;
  }

  describe(i: LaunchedInstance): Instance {
    const state = this.stateOf(i);
    const codes: Record<LaunchedState, number> = {
      pending: 0,
      running: 16,
      'shutting-down': 32,
      terminated: 48,
    };
    return {
      InstanceId: i.id,
      InstanceType: i.instanceType as Instance['InstanceType'],
      SubnetId: i.subnetId,
      State: { Name: state, Code: codes[state] },
      Tags: Object.entries(i.tags).map(([Key, Value]) => ({ Key, Value })),
      PlatformDetails: 'Linux/UNIX',
      LaunchTime: new Date(i.launchedAt),
      ...(i.market === 'spot' ? { InstanceLifecycle: 'spot' as const } : {}),
    };
  }

  private reservation(i: LaunchedInstance): RunInstancesCommandOutput {
    return {
      ReservationId: `r-${i.id.slice(2)}`,
      Instances: [this.describe(i)],
      $metadata: { httpStatusCode: 200 },
    };
  }
}
