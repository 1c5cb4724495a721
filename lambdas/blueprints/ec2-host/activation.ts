/**
 * Activating an ec2-host resource: a step machine over `resource.data.phase`, one short step per
 * call (the setup workflow or the resource's own re-enqueued updates call again after
 * `checkAgainSeconds`; no step waits on the host). The engine breaks the resource at its setup
 * deadline (`limits.setupTimeoutSeconds` from its creation) whatever the phase, and destroying it
 * terminates the instance.
 *
 * ```
 * launch         instance tagged drydock:resource=<id> already? use it (a crash after launch)
 *                else RunInstances over markets × types × subnets (launch.ts)
 *                ─▶ pending, data.instanceId, slot lock binding:<instanceId>, capacity attribute
 *                no capacity anywhere ─▶ throw NoCapacityError (the resource breaks, its lease
 *                waits; the blueprint waits out CAPACITY_RETRY_SECONDS, capacity.ts)
 * wait-running   DescribeInstances: NotFound (not visible yet) / pending ─▶ pending
 *                running ─▶ wait-ssm;  shutting-down / terminated ─▶ throw with EC2's reason
 * wait-ssm       DescribeInstanceInformation: Online ─▶ readiness; else pending
 * readiness      the readiness command over SSM, started once (`ready-<resourceId>`, idempotent
 *                by id) and polled ─▶ exit 0: active; otherwise terminate and throw its output
 * ```
 */
import type { ActivationStep, BlueprintContext } from '../../core/blueprint.ts';
import { DrydockError, errorMessage, TemporaryError } from '../../core/errors.ts';
import type { Resource } from '../../core/model.ts';
import { requireClient } from '../cloud-clients.ts';
import { ssmCommandInterface } from '../ssm/commands.ts';
import { describeInstance } from '../ssm/instances.ts';
import { housekeeping, tail } from '../ssm/run.ts';
import { recordNoCapacity } from './capacity.ts';
import { type Ec2Host, logGroupOf, type Market } from './config.ts';
import { describeById, stateOf, terminate } from './instances.ts';
import {
  attemptsFor,
  describeAttempt,
  describeTried,
  findLaunched,
  launch,
  NoCapacityError,
} from './launch.ts';

export const bindingKey = (instanceId: string) => `binding:${instanceId}`;

/**
 * How long a boot step waits before looking again: `DRYDOCK_EC2_HOST_RECHECK_SECONDS`, @default 5
 * (a boot takes a minute or two; tests on the fake use 1).
 */
export function recheckSeconds(env: Record<string, string | undefined>): number {
  const n = Number(env.DRYDOCK_EC2_HOST_RECHECK_SECONDS);
  return Number.isFinite(n) && n >= 1 ? n : 5;
}

export type Phase = 'launch' | 'wait-running' | 'wait-ssm' | 'readiness';

export async function activateInstance(
  ctx: BlueprintContext,
  blueprint: Ec2Host,
  resource: Resource,
  env: Record<string, string | undefined>,
): Promise<ActivationStep> {
  const phase = (resource.data.phase as Phase | undefined) ?? 'launch';
  try {
    return await step(ctx, blueprint, resource, env, phase);
  } catch (err) {
    // Throttling (or a brief outage) decides nothing: look again; the deadline still bounds it.
    // Anything thrown from activateResource would break the resource.
    if (err instanceof TemporaryError && !(err instanceof NoCapacityError)) {
      return {
        state: 'pending',
        checkAgainSeconds: recheckSeconds(env),
        message: `step ${phase}: ${err.message}; trying again`,
      };
    }
    // The resource breaks with this message: it names the step, then the cause (EC2's code).
    const message = errorMessage(err);
    if (message.startsWith('step ')) throw err;
    throw new DrydockError(
      err instanceof DrydockError ? err.code : 'setup_failed',
      `step ${phase}: ${message}`,
      { cause: err },
    );
  }
}

async function step(
  ctx: BlueprintContext,
  blueprint: Ec2Host,
  resource: Resource,
  env: Record<string, string | undefined>,
  phase: Phase,
): Promise<ActivationStep> {
  const ec2 = requireClient(ctx.clients, 'ec2');
  if (phase === 'launch') return launchStep(ctx, blueprint, resource, env);
  const instanceId = resource.data.instanceId as string;
  try {
    if (phase === 'wait-running') {
      const instance = await describeById(ec2, instanceId);
      const state = stateOf(instance);
      if (instance === undefined || state === 'pending') {
        return {
          state: 'pending',
          checkAgainSeconds: recheckSeconds(env),
          message: `waiting for instance ${instanceId} to run (${instance ? state : 'not visible in EC2 yet'})`,
        };
      }
      if (state !== 'running') {
        throw new DrydockError(
          'instance_gone',
          `step wait-running: instance ${instanceId} is ${state}${instance.StateReason?.Message ? ` (${instance.StateReason.Message})` : ''}`,
        );
      }
      return waitSsm(ctx, blueprint, resource, instanceId, env);
    }
    if (phase === 'wait-ssm') return waitSsm(ctx, blueprint, resource, instanceId, env);
    return readiness(ctx, blueprint, resource, instanceId, env);
  } catch (err) {
    // Best effort now; destroyResource terminates (and confirms) again whatever happens here.
    if (!(err instanceof TemporaryError)) {
      await terminate(ec2, [instanceId]).catch(() => undefined);
    }
    throw err;
  }
}

async function launchStep(
  ctx: BlueprintContext,
  blueprint: Ec2Host,
  resource: Resource,
  env: Record<string, string | undefined>,
): Promise<ActivationStep> {
  const ec2 = requireClient(ctx.clients, 'ec2');
  const markets = (resource.data.markets as Market[] | undefined) ?? ['spot'];
  const [found] = await findLaunched(ec2, resource.id);
  if (found?.InstanceId) {
    const market: Market = found.InstanceLifecycle === 'spot' ? 'spot' : 'on-demand';
    return launched(
      found.InstanceId,
      market,
      `found instance ${found.InstanceId} (${found.InstanceType} ${market} in ${found.SubnetId}) launched by an earlier step`,
      {
        instanceType: found.InstanceType ?? '',
        subnetId: found.SubnetId ?? '',
        tried: [],
      },
      ctx,
      env,
    );
  }
  try {
    const result = await launch(
      ec2,
      blueprint,
      resource.id,
      attemptsFor(blueprint, markets, env),
      env,
    );
    const { attempt, tried } = result;
    const triedText = tried.length > 0 ? ` after trying ${describeTried(tried)}` : '';
    return launched(
      result.instanceId,
      attempt.market,
      `launched instance ${result.instanceId} (${describeAttempt(attempt)})${triedText}`,
      { instanceType: attempt.instanceType, subnetId: attempt.subnetId, tried },
      ctx,
      env,
    );
  } catch (err) {
    if (err instanceof NoCapacityError) {
      await recordNoCapacity(ctx, blueprint, resource.id, err.tried);
      throw new DrydockError('no_capacity', `step launch: ${err.message}`, { cause: err });
    }
    throw err;
  }
}

function launched(
  instanceId: string,
  market: Market,
  message: string,
  detail: { instanceType: string; subnetId: string; tried: unknown[] },
  ctx: BlueprintContext,
  env: Record<string, string | undefined>,
): ActivationStep {
  return {
    state: 'pending',
    checkAgainSeconds: recheckSeconds(env),
    message,
    data: {
      phase: 'wait-running',
      instanceId,
      market,
      launchedAtMs: ctx.clock.now(),
      ...detail,
    },
    // Taken in the same conditional write that records the instance id (see blueprint.ts).
    slotLocks: [bindingKey(instanceId)],
    attributes: { capacity: market },
  };
}

async function waitSsm(
  ctx: BlueprintContext,
  blueprint: Ec2Host,
  resource: Resource,
  instanceId: string,
  env: Record<string, string | undefined>,
): Promise<ActivationStep> {
  const info = await describeInstance(requireClient(ctx.clients, 'ssm'), instanceId);
  if (info?.pingStatus !== 'Online') {
    return {
      state: 'pending',
      checkAgainSeconds: recheckSeconds(env),
      message: `instance ${instanceId} is running; waiting for its SSM agent (${info ? info.pingStatus : 'not registered yet'})`,
      data: { phase: 'wait-ssm' },
    };
  }
  // Online: start the readiness command in this same step (one boot step less).
  const step = await readiness(ctx, blueprint, resource, instanceId, env);
  return step.state === 'pending' ? { ...step, data: { phase: 'readiness', ...step.data } } : step;
}

interface Readiness {
  handle: Record<string, unknown>;
  offsets: { stdout: number; stderr: number };
  stdoutTail: string;
  stderrTail: string;
}

const KEPT_TAIL_CHARS = 2_000;
const keepTail = (t: string) => (t.length <= KEPT_TAIL_CHARS ? t : t.slice(-KEPT_TAIL_CHARS));

async function readiness(
  ctx: BlueprintContext,
  blueprint: Ec2Host,
  resource: Resource,
  instanceId: string,
  env: Record<string, string | undefined>,
): Promise<ActivationStep> {
  const commands = ssmCommandInterface({
    ssm: requireClient(ctx.clients, 'ssm'),
    logs: requireClient(ctx.clients, 'logs'),
    records: ctx.records,
    clock: ctx.clock,
    instanceId,
    workDir: '/',
    logGroupName: logGroupOf(blueprint, env),
  });
  const timeoutSeconds = blueprint.limits.setupTimeoutSeconds;
  const kept = resource.data.readiness as Readiness | undefined;
  const started: Readiness = kept ?? {
    // Started once: the command id is the resource's, so a retried step finds the same command.
    handle: await commands.start(
      `ready-${resource.id}`,
      housekeeping(blueprint.config.readinessCommand, timeoutSeconds),
    ),
    offsets: { stdout: 0, stderr: 0 },
    stdoutTail: '',
    stderrTail: '',
  };
  const progress = await commands.poll(started.handle, started.offsets);
  const next: Readiness = {
    handle: started.handle,
    offsets: {
      stdout: started.offsets.stdout + Buffer.byteLength(progress.stdout),
      stderr: started.offsets.stderr + Buffer.byteLength(progress.stderr),
    },
    stdoutTail: keepTail(started.stdoutTail + progress.stdout),
    stderrTail: keepTail(started.stderrTail + progress.stderr),
  };
  if (progress.state === 'running') {
    return {
      state: 'pending',
      checkAgainSeconds: recheckSeconds(env),
      message: `readiness command running on instance ${instanceId}`,
      data: { readiness: next },
    };
  }
  if (progress.exitCode !== 0) {
    throw new DrydockError(
      'setup_failed',
      `step readiness: \`${blueprint.config.readinessCommand}\` on instance ${instanceId} ${progress.timedOut ? 'timed out' : `exited with ${progress.exitCode ?? 'a signal'}`}; stderr: ${tail(next.stderrTail, 1_000) || '(none)'}; stdout: ${tail(next.stdoutTail, 1_000) || '(none)'}`,
      { context: { instanceId, resourceId: resource.id } },
    );
  }
  return { state: 'active', data: { readiness: next, ready: true } };
}
