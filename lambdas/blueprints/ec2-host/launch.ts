/**
 * Launching a resource's instance, idempotently and with capacity fallback.
 *
 * One RunInstances (not CreateFleet: one instance, one market, one subnet per call keeps the
 * fallback order ours and its log exact) per attempt over markets × instance types × subnets, in
 * the configured order. Each attempt has its own ClientToken, `<hash of resource id>-<index>`:
 * EC2 refuses one token with different parameters (IdempotentParameterMismatch), and a retried
 * attempt with the same parameters gets the instance the first call launched, never a second.
 *
 * Before launching, the instances tagged `drydock:resource=<id>` are looked up: a worker that
 * crashed after RunInstances and before recording the id finds the instance here (or, if EC2 does
 * not list it yet, its retried attempt gets it back through the ClientToken).
 *
 * Capacity errors move on to the next attempt; any other error fails the launch. When every
 * attempt was refused for capacity, NoCapacityError says what was tried.
 */
import { createHash } from 'node:crypto';
import {
  DescribeInstancesCommand,
  type EC2Client,
  type Instance,
  RunInstancesCommand,
  type RunInstancesCommandInput,
} from '@aws-sdk/client-ec2';
import { DrydockError, TemporaryError } from '../../core/errors.ts';
import { errorName, isTemporary } from '../ssm/errors.ts';
import {
  DEFAULT_IMAGE,
  type Ec2Host,
  instanceProfileOf,
  type Market,
  securityGroupsOf,
  subnetsOf,
} from './config.ts';

/**
 * Codes that mean "not here, try the next type / subnet / market" (EC2 error codes reference:
 * capacity, spot limits and price, a type not offered in the subnet's AZ).
 */
export const CAPACITY_CODES = new Set([
  'InsufficientInstanceCapacity',
  'InsufficientCapacity',
  'InsufficientHostCapacity',
  'InsufficientReservedInstanceCapacity',
  'SpotMaxPriceTooLow',
  'MaxSpotInstanceCountExceeded',
  'InstanceLimitExceeded',
  'VcpuLimitExceeded',
  'Unsupported',
  'InvalidParameterCombination',
]);

export interface Attempt {
  market: Market;
  instanceType: string;
  subnetId: string;
}

export interface Tried extends Attempt {
  code: string;
}

/** Every attempt, in order: markets, then types, then subnets (one per AZ). */
export function attemptsFor(
  blueprint: Ec2Host,
  markets: Market[],
  env: Record<string, string | undefined>,
): Attempt[] {
  const subnets = subnetsOf(blueprint, env);
  return markets.flatMap((market) =>
    blueprint.config.instanceTypes.flatMap((instanceType) =>
      subnets.map((subnetId) => ({ market, instanceType, subnetId })),
    ),
  );
}

export function describeAttempt(a: Attempt): string {
  return `${a.instanceType} ${a.market} in ${a.subnetId}`;
}

export function describeTried(tried: Tried[]): string {
  return tried.map((t) => `${describeAttempt(t)}: ${t.code}`).join('; ');
}

/** ClientToken of one attempt (≤ 64 ASCII characters, as EC2 requires). */
export function clientToken(resourceId: string, index: number): string {
  return `dd${createHash('sha256').update(resourceId).digest('hex').slice(0, 40)}-${index}`;
}

export class NoCapacityError extends TemporaryError {
  constructor(readonly tried: Tried[]) {
    super(`no capacity: tried ${describeTried(tried)}`, { context: { tried } });
  }
}

/** The tags every instance carries, set in the launch call itself. */
export function instanceTags(
  blueprint: Ec2Host,
  resourceId: string,
  env: Record<string, string | undefined>,
): Record<string, string> {
  return {
    ...blueprint.config.tags,
    ...(env.DRYDOCK_DEPLOYMENT ? { 'drydock:deployment': env.DRYDOCK_DEPLOYMENT } : {}),
    'drydock:resource': resourceId,
    'drydock:blueprint': blueprint.id,
  };
}

export function runInstancesInput(
  blueprint: Ec2Host,
  resourceId: string,
  attempt: Attempt,
  index: number,
  env: Record<string, string | undefined>,
): RunInstancesCommandInput {
  const { config } = blueprint;
  const tags = Object.entries(instanceTags(blueprint, resourceId, env)).map(([Key, Value]) => ({
    Key,
    Value,
  }));
  const template = config.launchTemplate;
  const securityGroupIds = securityGroupsOf(blueprint, env);
  return {
    MinCount: 1,
    MaxCount: 1,
    ClientToken: clientToken(resourceId, index),
    InstanceType: attempt.instanceType as RunInstancesCommandInput['InstanceType'],
    SubnetId: attempt.subnetId,
    IamInstanceProfile: { Arn: instanceProfileOf(blueprint, env) },
    ...(template
      ? {
          LaunchTemplate: {
            ...(template.id ? { LaunchTemplateId: template.id } : {}),
            ...(template.name ? { LaunchTemplateName: template.name } : {}),
            ...(template.version ? { Version: template.version } : {}),
          },
        }
      : { ImageId: config.imageId ?? DEFAULT_IMAGE }),
    ...(securityGroupIds ? { SecurityGroupIds: securityGroupIds } : {}),
    ...(config.rootVolumeGiB
      ? {
          BlockDeviceMappings: [
            // The usual root device of Linux AMIs; a launch template may name its own.
            { DeviceName: '/dev/xvda', Ebs: { VolumeSize: config.rootVolumeGiB } },
          ],
        }
      : {}),
    ...(attempt.market === 'spot'
      ? {
          InstanceMarketOptions: {
            MarketType: 'spot',
            SpotOptions: {
              SpotInstanceType: 'one-time',
              InstanceInterruptionBehavior: 'terminate',
              ...(config.maxSpotPrice ? { MaxPrice: config.maxSpotPrice } : {}),
            },
          },
        }
      : {}),
    // Never stopped: a host that shuts itself down is gone, and EC2 reclaims it.
    InstanceInitiatedShutdownBehavior: 'terminate',
    // Every resource the call creates carries the tags: IAM conditions on aws:RequestTag apply
    // to each of them (instance, volumes, network interface), and the bill reads them too.
    TagSpecifications: (['instance', 'volume', 'network-interface'] as const).map((type) => ({
      ResourceType: type,
      Tags: tags,
    })),
  };
}

/** Instances tagged for this resource that are not (being) terminated. */
export async function findLaunched(ec2: EC2Client, resourceId: string): Promise<Instance[]> {
  const out = await ec2
    .send(
      new DescribeInstancesCommand({
        Filters: [
          { Name: 'tag:drydock:resource', Values: [resourceId] },
          { Name: 'instance-state-name', Values: ['pending', 'running'] },
        ],
      }),
    )
    .catch((err) => {
      throw translateEc2Error(err, 'DescribeInstances', resourceId);
    });
  return (out.Reservations ?? []).flatMap((r) => r.Instances ?? []);
}

export interface Launched {
  instanceId: string;
  attempt: Attempt;
  tried: Tried[];
}

/**
 * Try the attempts from `from` on (earlier ones were refused on an earlier step); each refusal
 * is added to `tried`. The caller records the result.
 */
export async function launch(
  ec2: EC2Client,
  blueprint: Ec2Host,
  resourceId: string,
  attempts: Attempt[],
  env: Record<string, string | undefined>,
): Promise<Launched> {
  const tried: Tried[] = [];
  for (const [index, attempt] of attempts.entries()) {
    try {
      const out = await ec2.send(
        new RunInstancesCommand(runInstancesInput(blueprint, resourceId, attempt, index, env)),
      );
      const instanceId = out.Instances?.[0]?.InstanceId;
      if (!instanceId) {
        throw new DrydockError(
          'cloud_error',
          `RunInstances returned no instance (${describeAttempt(attempt)})`,
        );
      }
      return { instanceId, attempt, tried };
    } catch (err) {
      const code = errorName(err);
      if (!CAPACITY_CODES.has(code))
        throw translateEc2Error(err, `RunInstances (${describeAttempt(attempt)})`, resourceId);
      tried.push({ ...attempt, code });
    }
  }
  throw new NoCapacityError(tried);
}

/** An EC2 SDK error as a domain error: throttling is temporary; otherwise name the code. */
export function translateEc2Error(err: unknown, operation: string, subject: string): Error {
  if (err instanceof DrydockError) return err;
  const name = errorName(err);
  if (isTemporary(err)) {
    return new TemporaryError(`${operation} for ${subject} was throttled (${name})`, {
      cause: err,
    });
  }
  const message = (err as Error)?.message ?? String(err);
  return new DrydockError(
    'cloud_error',
    `${operation} for ${subject} failed: ${name}: ${message}`,
    {
      cause: err,
      context: { operation, awsError: name },
    },
  );
}
