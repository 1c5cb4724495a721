/**
 * Activating a static host: bind the instance (the binding bill), check it is registered, Online
 * and Linux, and run the setup commands once, asynchronously — started on the first call and
 * polled on the later ones, the handle kept in the resource's data.
 *
 * ```
 * unknown / deregistered instance ─▶ throw (the resource breaks, naming the instance)
 * offline                          ─▶ pending "instance i-… is ConnectionLost" (setup deadline bounds it)
 * no setup commands                ─▶ active
 * setup not started                ─▶ start `setup-<resourceId>` ─▶ pending (data.setup = handle)
 * setup running                    ─▶ pending
 * setup exited 0                   ─▶ active (data.setupDone)
 * setup failed / timed out         ─▶ throw with the output's tail
 * ```
 */
import type { ActivationStep, BlueprintContext } from '../../core/blueprint.ts';
import { DrydockError, ResourceGoneError } from '../../core/errors.ts';
import type { Resource } from '../../core/model.ts';
import { requireClient } from '../cloud-clients.ts';
import { describeInstance, whyNotUsable } from '../ssm/instances.ts';
import { housekeeping, tail } from '../ssm/run.ts';
import { shellQuote } from '../ssm/script.ts';
import { appendBinding, readBinding } from './bindings.ts';
import type { StaticHost } from './config.ts';
import { hostCommands, instanceOf } from './hosts.ts';

const OFFLINE_RECHECK_SECONDS = 30;
const SETUP_RECHECK_SECONDS = 5;

export async function activateHost(
  ctx: BlueprintContext,
  blueprint: StaticHost,
  resource: Resource,
  env: Record<string, string | undefined>,
): Promise<ActivationStep> {
  const instanceId = instanceOf(resource);
  const binding = await readBinding(ctx, resource.id);
  if (binding.released) {
    throw new ResourceGoneError(`resource ${resource.id} was destroyed before it activated`);
  }
  if (binding.instanceId === undefined) {
    await appendBinding(ctx, resource.id, { event: 'bound', instanceId });
  }
  const instance = await describeInstance(requireClient(ctx.clients, 'ssm'), instanceId);
  if (!instance) {
    throw new ResourceGoneError(
      `instance ${instanceId} is not registered with SSM (never registered, or deregistered)`,
      { context: { instanceId, resourceId: resource.id } },
    );
  }
  if (instance.platformType !== 'Linux') {
    throw new DrydockError(
      'unsupported_platform',
      `${whyNotUsable(instance)}: static-host only supports Linux`,
    );
  }
  const offline = whyNotUsable(instance);
  if (offline !== undefined) {
    return {
      state: 'pending',
      checkAgainSeconds: OFFLINE_RECHECK_SECONDS,
      message: `waiting for ${offline}`,
    };
  }
  const { setupCommands, workRoot, commandDefaults } = blueprint.config;
  if (setupCommands.length === 0 || resource.data.setupDone === true) {
    return { state: 'active', data: { instanceId, setupDone: true } };
  }
  // Setup runs as root in the work root (it prepares the host for every lease user).
  const commands = hostCommands(ctx, blueprint, resource, {
    workDir: workRoot,
    env,
    asLeaseUser: false,
  });
  const handle =
    (resource.data.setup as Record<string, unknown> | undefined) ??
    (await commands.start(
      `setup-${resource.id}`,
      housekeeping(
        [`chmod 0755 -- ${shellQuote(workRoot)}`, ...setupCommands].join('\n'),
        commandDefaults.timeoutSeconds,
      ),
    ));
  // A fresh start's output is read from offset 0 each time: the log keeps only the tail.
  const progress = await commands.poll(handle, { stdout: 0, stderr: 0 });
  if (progress.state === 'running') {
    return {
      state: 'pending',
      checkAgainSeconds: SETUP_RECHECK_SECONDS,
      message: `setup commands are running on instance ${instanceId}`,
      data: { instanceId, setup: handle },
    };
  }
  if (progress.exitCode !== 0) {
    const why = progress.timedOut
      ? `timed out after ${commandDefaults.timeoutSeconds}s`
      : `exited with ${progress.exitCode ?? 'a signal'}`;
    throw new DrydockError(
      'setup_failed',
      `setup commands on instance ${instanceId} ${why}; stderr: ${tail(progress.stderr, 1_000) || '(none)'}; stdout: ${tail(progress.stdout, 1_000) || '(none)'}`,
      { context: { instanceId, resourceId: resource.id } },
    );
  }
  return { state: 'active', data: { instanceId, setup: handle, setupDone: true } };
}
