/**
 * `ec2-host`: one EC2 instance per resource, launched for it (spot, on-demand, or spot with an
 * on-demand fallback), set up by the setup workflow, reached over SSM Run Command (the shared
 * interface in ../ssm/), and terminated when the resource is destroyed.
 *
 * Rooms: config.ts (schema, markets), launch.ts (RunInstances with ClientToken and capacity
 * fallback), capacity.ts (no-capacity memory: no launch storm), activation.ts (the setup step
 * machine), instances.ts (describe, terminate), inventory.ts (the sweep's orphan and vanished
 * host reconciliation).
 *
 * EC2 and SSM calls it makes: RunInstances (tags in TagSpecifications), DescribeInstances,
 * TerminateInstances; SendCommand, GetCommandInvocation, CancelCommand,
 * DescribeInstanceInformation; CloudWatch Logs GetLogEvents for command output.
 */
import type { BlueprintType } from '../../core/blueprint.ts';
import { TemporaryError, ValidationError } from '../../core/errors.ts';
import type { Resource } from '../../core/model.ts';
import { requireClient } from '../cloud-clients.ts';
import { pathSegment } from '../shared.ts';
import { ssmCommandInterface } from '../ssm/commands.ts';
import { commandFilesystem } from '../ssm/files.ts';
import { describeInstance } from '../ssm/instances.ts';
import { realSleep, type Sleep } from '../ssm/run.ts';
import { activateInstance } from './activation.ts';
import { noCapacityReason } from './capacity.ts';
import {
  type Ec2Host,
  type Ec2HostConfig,
  ec2HostConfigSchema,
  logGroupOf,
  marketsFor,
} from './config.ts';
import { describeById, stateOf, terminate } from './instances.ts';
import { reconcileInstances } from './inventory.ts';
import { findLaunched } from './launch.ts';

export { type Ec2HostConfig, ec2HostConfigSchema } from './config.ts';

/** How long after its launch an instance EC2 does not know may still be "not visible yet". */
const VISIBILITY_WINDOW_MS = 10 * 60_000;

export interface Ec2HostDeps {
  /** Where DRYDOCK_DEPLOYMENT, DRYDOCK_INSTANCE_PROFILE_ARN, DRYDOCK_SUBNET_IDS, DRYDOCK_SECURITY_GROUP_IDS, DRYDOCK_COMMAND_LOG_GROUP are read (at use). @default process.env */
  env?: Record<string, string | undefined>;
  /** How file transfers wait between polls. @default real time */
  sleep?: Sleep;
}

function instanceOf(resource: Resource): string {
  const id = resource.data.instanceId;
  if (typeof id !== 'string') {
    throw new ValidationError(`resource ${resource.id} has no instance yet (it is not active)`);
  }
  return id;
}

function leaseDir(blueprint: Ec2Host, leaseId: string): string {
  return `${blueprint.config.workRoot}/${pathSegment(leaseId, 'lease id')}`;
}

export function makeEc2HostBlueprint(deps: Ec2HostDeps = {}): BlueprintType<Ec2HostConfig> {
  const env = deps.env ?? process.env;
  const sleep = deps.sleep ?? realSleep;
  const commandsOn = (
    ctx: Parameters<NonNullable<BlueprintType<Ec2HostConfig>['command']>>[0],
    blueprint: Ec2Host,
    resource: Resource,
    leaseId: string,
  ) =>
    ssmCommandInterface({
      ssm: requireClient(ctx.clients, 'ssm'),
      logs: requireClient(ctx.clients, 'logs'),
      records: ctx.records,
      clock: ctx.clock,
      instanceId: instanceOf(resource),
      workDir: leaseDir(blueprint, leaseId),
      logGroupName: logGroupOf(blueprint, env),
    });

  return {
    type: 'ec2-host',
    description:
      'An EC2 instance per resource (spot or on-demand), launched and set up for it, commands over SSM Run Command, terminated when it is destroyed.',
    resourceTypes: ['host'],
    configSchema: ec2HostConfigSchema,

    // A boot takes minutes: always the setup workflow.
    activatesLater: () => true,

    needsLeaseActivation: () => false,

    // allocateResource sets the market it launches in (corrected after a fallback).
    producesAttributes: () => ['capacity'],

    cannotEverServe(blueprint, lease) {
      const wants = lease.attributes.capacity;
      if (wants === undefined) return undefined;
      if (wants !== 'spot' && wants !== 'on-demand') {
        return `capacity must be spot or on-demand (lease asks for '${wants}')`;
      }
      if (marketsFor(blueprint.config.capacity, wants).length === 0) {
        return `its capacity mode is '${blueprint.config.capacity}', so it never launches ${wants} instances (lease asks for capacity=${wants})`;
      }
      return undefined;
    },

    async canAllocateNow(ctx, blueprint) {
      const reason = await noCapacityReason(ctx, blueprint);
      return reason ? { ok: false, reason } : { ok: true };
    },

    async allocateResource(_ctx, blueprint, lease) {
      const markets = marketsFor(blueprint.config.capacity, lease.attributes.capacity);
      const [first] = markets;
      if (!first) {
        throw new ValidationError(
          `blueprint '${blueprint.id}' cannot launch capacity=${lease.attributes.capacity}`,
        );
      }
      // The attribute says what the resource will most likely get; the launch step corrects it
      // to what it really got (a spot-then-on-demand fallback) in the write recording the id.
      return { attributes: { capacity: first }, data: { phase: 'launch', markets } };
    },

    activateResource: (ctx, blueprint, resource) => activateInstance(ctx, blueprint, resource, env),

    async destroyResource(ctx, _blueprint, resource) {
      const ec2 = requireClient(ctx.clients, 'ec2');
      const recorded =
        typeof resource.data.instanceId === 'string' ? [resource.data.instanceId] : [];
      // A crash after RunInstances and before the record leaves an instance only its tags name.
      const tagged = (await findLaunched(ec2, resource.id)).map((i) => i.InstanceId ?? '');
      const ids = [...new Set([...recorded, ...tagged])].filter(Boolean);
      const { notGone, unknown } = await terminate(ec2, ids);
      const launchedAt = Number(resource.data.launchedAtMs ?? 0);
      const mayBeInvisible = ctx.clock.now() - launchedAt < VISIBILITY_WINDOW_MS;
      if (notGone.length > 0 && (!unknown || mayBeInvisible)) {
        // Thrown, so the update is redelivered; the binding and pool slot stay held meanwhile.
        throw new TemporaryError(
          `instance ${notGone.join(', ')} of resource ${resource.id} is not shutting down yet; termination will be confirmed on retry`,
        );
      }
    },

    async healthCheck(ctx, _blueprint, resource) {
      const instanceId = instanceOf(resource);
      const instance = await describeById(requireClient(ctx.clients, 'ec2'), instanceId);
      const state = stateOf(instance);
      if (state !== 'running') {
        return {
          healthy: false,
          reason: `instance ${instanceId} is ${instance ? state : 'gone (EC2 does not know it)'}`,
        };
      }
      const info = await describeInstance(requireClient(ctx.clients, 'ssm'), instanceId);
      if (info?.pingStatus !== 'Online') {
        return {
          healthy: false,
          reason: `instance ${instanceId}'s SSM agent is ${info?.pingStatus ?? 'not registered'}`,
        };
      }
      return { healthy: true };
    },

    reconcileInventory: (ctx, blueprint, state) => reconcileInstances(ctx, blueprint, state, env),

    command: (ctx, blueprint, resource, lease) => commandsOn(ctx, blueprint, resource, lease.id),

    filesystem: (ctx, blueprint, resource, lease) =>
      commandFilesystem({
        commands: commandsOn(ctx, blueprint, resource, lease.id),
        workDir: leaseDir(blueprint, lease.id),
        clock: ctx.clock,
        sleep,
        timeoutSeconds: 600,
      }),
  };
}

export const ec2HostBlueprint = makeEc2HostBlueprint();
