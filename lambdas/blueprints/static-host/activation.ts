/**
 * Activating a static host: bind the instance (the binding bill), check it is registered, Online
 * and Linux, and run the setup commands once, asynchronously — started on the first call and
 * polled on the later ones, the handle kept in the resource's data.
 *
 * ```
 * unknown / deregistered instance ─▶ throw (the resource breaks, naming the instance)
 * offline                          ─▶ pending "instance i-… is ConnectionLost" (setup deadline bounds it)
 * no setup commands                ─▶ active
 * setup not started                ─▶ start `setup-<resourceId>` ─▶ pending (data.setup = handle,
 *                                     offsets, bounded output tails)
 * setup running                    ─▶ poll from the offsets ─▶ pending
 * setup exited 0                   ─▶ active (data.setupDone)
 * setup failed / timed out         ─▶ throw with the output's tail (its end, however long)
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
  const setup =
    setupProgress(resource.data.setup) ??
    emptySetup(
      await commands.start(
        `setup-${resource.id}`,
        housekeeping(
          [`chmod 0755 -- ${shellQuote(workRoot)}`, ...setupCommands].join('\n'),
          commandDefaults.timeoutSeconds,
        ),
      ),
    );
  // Polled from where the last poll stopped: a poll returns at most 256 KiB per stream, so
  // re-reading from 0 would never get past a longer output. Only a bounded tail is kept.
  const progress = await commands.poll(setup.handle, setup.offsets);
  const next: SetupProgress = {
    handle: setup.handle,
    offsets: {
      stdout: setup.offsets.stdout + Buffer.byteLength(progress.stdout),
      stderr: setup.offsets.stderr + Buffer.byteLength(progress.stderr),
    },
    stdoutTail: keepTail(setup.stdoutTail + progress.stdout),
    stderrTail: keepTail(setup.stderrTail + progress.stderr),
  };
  if (progress.state === 'running') {
    return {
      state: 'pending',
      checkAgainSeconds: SETUP_RECHECK_SECONDS,
      message: `setup commands are running on instance ${instanceId}`,
      data: { instanceId, setup: next },
    };
  }
  if (progress.exitCode !== 0) {
    const why = progress.timedOut
      ? `timed out after ${commandDefaults.timeoutSeconds}s`
      : `exited with ${progress.exitCode ?? 'a signal'}`;
    throw new DrydockError(
      'setup_failed',
      `setup commands on instance ${instanceId} ${why}; stderr: ${tail(next.stderrTail, 1_000) || '(none)'}; stdout: ${tail(next.stdoutTail, 1_000) || '(none)'}`,
      { context: { instanceId, resourceId: resource.id } },
    );
  }
  return { state: 'active', data: { instanceId, setup: next, setupDone: true } };
}

/** The setup command as the resource's data keeps it between activation steps. */
interface SetupProgress {
  handle: Record<string, unknown>;
  offsets: { stdout: number; stderr: number };
  stdoutTail: string;
  stderrTail: string;
}

function emptySetup(handle: Record<string, unknown>): SetupProgress {
  return { handle, offsets: { stdout: 0, stderr: 0 }, stdoutTail: '', stderrTail: '' };
}

/**
 * The kept setup progress, if a step started one. A resource activated by an older version
 * kept the bare handle: that one is polled from the start again.
 */
function setupProgress(data: unknown): SetupProgress | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const kept = data as Partial<SetupProgress>;
  if (typeof kept.handle === 'object' && kept.handle !== null && kept.offsets) {
    return {
      handle: kept.handle,
      offsets: kept.offsets,
      stdoutTail: kept.stdoutTail ?? '',
      stderrTail: kept.stderrTail ?? '',
    };
  }
  return emptySetup(data as Record<string, unknown>);
}

/** Enough of each stream for the failure message, and a resource record that stays small. */
const KEPT_TAIL_CHARS = 2_000;

function keepTail(text: string): string {
  return text.length <= KEPT_TAIL_CHARS ? text : text.slice(-KEPT_TAIL_CHARS);
}
