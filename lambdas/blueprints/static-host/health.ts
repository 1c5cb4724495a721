/**
 * A static host's health: still bound, still registered, still in the pool (tags still match, or
 * the id still listed), Online (or offline for less than the grace), and able to run `true`.
 * Every unhealthy reason names the instance. The only side effects are offline/online sightings
 * in the binding bill, from which the grace is measured.
 */
import type { BlueprintContext, HealthResult } from '../../core/blueprint.ts';
import { ResourceGoneError, TemporaryError } from '../../core/errors.ts';
import type { Resource } from '../../core/model.ts';
import { requireClient } from '../cloud-clients.ts';
import { describeInstance, describeInstances, type ManagedInstance } from '../ssm/instances.ts';
import { housekeeping, runToEnd, type Sleep, tail } from '../ssm/run.ts';
import { appendBinding, readBinding } from './bindings.ts';
import { deploymentTags, describePool, poolOf, type StaticHost } from './config.ts';
import { hostCommands } from './hosts.ts';

const PING_TIMEOUT_SECONDS = 30;

/**
 * The instance as SSM knows it, and whether it is still in the pool (carrying the deployment's
 * tag too, when there is one). The pool is asked once (its members carry their status); only an
 * instance missing from it is looked up alone, to say whether it was deregistered or left it.
 */
async function lookUp(
  ctx: BlueprintContext,
  blueprint: StaticHost,
  instanceId: string,
  required: Record<string, string>,
): Promise<{ instance: ManagedInstance | undefined; inPool: boolean }> {
  const ssm = requireClient(ctx.clients, 'ssm');
  const pool = poolOf(blueprint);
  if (!('ids' in pool) || pool.ids.includes(instanceId)) {
    // An id pool is narrowed to this instance: its listing says whether it carries the tags.
    const members = await describeInstances(
      ssm,
      'ids' in pool ? { ids: [instanceId] } : pool,
      required,
    );
    const member = members.find((m) => m.instanceId === instanceId);
    if (member) return { instance: member, inPool: true };
  }
  return { instance: await describeInstance(ssm, instanceId), inPool: false };
}

export async function checkHost(
  ctx: BlueprintContext,
  blueprint: StaticHost,
  resource: Resource,
  deps: { env: Record<string, string | undefined>; sleep: Sleep },
): Promise<HealthResult> {
  const binding = await readBinding(ctx, resource.id);
  if (binding.instanceId === undefined) {
    return { healthy: false, reason: `resource ${resource.id} is not bound to an instance` };
  }
  const instanceId = binding.instanceId;
  if (binding.released) {
    return {
      healthy: false,
      reason: `resource ${resource.id} was destroyed (instance ${instanceId} released)`,
    };
  }
  const required = deploymentTags(deps.env);
  const { instance, inPool } = await lookUp(ctx, blueprint, instanceId, required);
  if (!instance) {
    return { healthy: false, reason: `instance ${instanceId} is no longer registered with SSM` };
  }
  if (!inPool) {
    return {
      healthy: false,
      reason: `instance ${instanceId} is no longer in pool ${describePool(poolOf(blueprint), required)}`,
    };
  }
  if (instance.pingStatus !== 'Online') {
    const since = binding.offlineSinceMs ?? ctx.clock.now();
    if (binding.offlineSinceMs === undefined) {
      await appendBinding(ctx, resource.id, { event: 'offline', pingStatus: instance.pingStatus });
    }
    const offlineSeconds = Math.floor((ctx.clock.now() - since) / 1000);
    const grace = blueprint.config.offlineGraceSeconds;
    return offlineSeconds >= grace
      ? {
          healthy: false,
          reason: `instance ${instanceId} has been ${instance.pingStatus} for ${offlineSeconds}s (grace ${grace}s)`,
        }
      : { healthy: true };
  }
  if (binding.offlineSinceMs !== undefined)
    await appendBinding(ctx, resource.id, { event: 'online' });
  try {
    const commands = hostCommands(ctx, blueprint, resource, {
      // The work root: activation made it, and the ping leaves nothing behind.
      workDir: blueprint.config.workRoot,
      env: deps.env,
      asLeaseUser: false,
    });
    const ping = await runToEnd(commands, housekeeping('true', PING_TIMEOUT_SECONDS), {
      clock: ctx.clock,
      sleep: deps.sleep,
      what: `health ping of instance ${instanceId}`,
    });
    if (ping.exitCode !== 0) {
      return {
        healthy: false,
        reason: `instance ${instanceId} failed to run \`true\` (exit ${ping.exitCode ?? 'null'}${ping.timedOut ? ', timed out' : ''}): ${tail(ping.stderr, 300)}`,
      };
    }
  } catch (err) {
    // Throttling or a slow agent says nothing about the host: let the caller try again.
    if (err instanceof TemporaryError) throw err;
    if (err instanceof ResourceGoneError) {
      return {
        healthy: false,
        reason: `instance ${instanceId} cannot run commands: ${err.message}`,
      };
    }
    throw err;
  }
  return { healthy: true };
}
