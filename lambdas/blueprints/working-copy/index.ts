/**
 * `working-copy`: a set of git clones on a leased host (DESIGN §7, nested leases). The resource
 * holds a host lease of its own (`ctx.leases`) and runs every git call on it through that
 * lease's command interface (`ctx.commandsOn`), one command per call, each with its timeout and
 * never waited on (steps.ts). It never touches local paths, so it works on any host type.
 *
 *   activateResource: request the host lease ─ pending until it is active (the engine wakes this
 *                     resource when it is) ─ set up the clones (git-plans.ts, setupPlan).
 *   activateLease:    fetch, resolve each ref, check out, clean, merge (leasePlan); a missing ref
 *                     or a conflicting merge breaks the lease with the ref or the files named.
 *   releaseLease:     reset --hard, clean -ffdx (and in submodules); a failure makes the working
 *                     copy suspect, and suspectHealthCheck (git status, git fsck) decides.
 *   destroyResource:  give the host lease back (the clones stay on the host for the next
 *                     working copy with the same repositories, which probes them first).
 */
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import type {
  BlueprintContext,
  BlueprintType,
  CommandInterface,
  ParsedCommand,
} from '../../core/blueprint.ts';
import { ResourceGoneError, ValidationError } from '../../core/errors.ts';
import type { Lease, Resource, WorkingCopyRepository } from '../../core/model.ts';
import { repositorySetKey } from '../../core/working-copy-spec.ts';
import {
  type WorkingCopyBlueprint,
  type WorkingCopyConfig,
  workingCopyConfigSchema,
} from './config.ts';
import {
  CheckoutError,
  cloneDir,
  healthPlan,
  type Layout,
  leasePlan,
  releasePlan,
  setupPlan,
} from './git-plans.ts';
import { advance, describeResult, type StepState } from './steps.ts';

export { type WorkingCopyConfig, workingCopyConfigSchema } from './config.ts';

/**
 * The machine's time, not ctx.clock, for the git calls' backstop deadlines: they are about real
 * processes on a host (as local-host's own deadlines are), and a test's virtual clock that jumps
 * ahead must not time out a fetch that has run for a fraction of a second.
 */
const hostTime = (): number => Date.now();

/** Activation waits for its host lease; it is woken when that lease activates or ends. */
const WOKEN_RECHECK_SECONDS = 900;
const HOST_LEASE_KEY = 'host';

type Repositories = Layout['repositories'];

function repositoriesOf(lease: Lease): Repositories | undefined {
  const repos = lease.workingCopy?.repositories;
  if (!repos?.length || repos.some((r) => !r.directory)) return undefined;
  return repos as Repositories;
}

/** The clones' directory on the host: one per repository set, so a later copy can reuse it. */
function layoutOf(config: WorkingCopyConfig, resource: Resource): Layout {
  const repositories = resource.data.repositories as Repositories | undefined;
  const setKey = resource.data.setKey;
  if (!repositories || typeof setKey !== 'string') {
    throw new ValidationError(`working copy ${resource.id} has no repositories recorded`);
  }
  return { home: posix.join(config.root, setKey), repositories };
}

function hostLeaseOf(resource: Resource): string {
  const id = resource.data.hostLease;
  if (typeof id !== 'string') {
    throw new ValidationError(`working copy ${resource.id} holds no host lease yet`);
  }
  return id;
}

function stepsOf(data: Record<string, unknown> | undefined, key: string): StepState {
  const value = data?.[key];
  return value && typeof value === 'object' ? (value as StepState) : {};
}

/** The lease's checkout, per repository, in words: `file:///r.git@main + merge refs/x`. */
function describeCheckout(repos: WorkingCopyRepository[]): string {
  return repos
    .map(
      (r) =>
        `${r.url}@${r.ref ?? 'HEAD'}${r.merge?.length ? ` + merge ${r.merge.join(', ')}` : ''}`,
    )
    .join('; ');
}

/** A holder's command runs in the working copy: cwd is relative to it, default the first clone. */
function commandCwd(layout: Layout, cwd: string | undefined): string {
  if (cwd === undefined) return cloneDir(layout, 0);
  const normal = posix.normalize(cwd);
  if (posix.isAbsolute(normal) || normal === '..' || normal.startsWith('../')) {
    throw new ValidationError(
      `cwd '${cwd}' leaves the working copy; give a directory relative to it (e.g. '${layout.repositories[0]?.directory}')`,
    );
  }
  return posix.join(layout.home, normal);
}

function workingCopyCommands(
  ctx: BlueprintContext,
  blueprint: WorkingCopyBlueprint,
  resource: Resource,
): CommandInterface {
  // A working copy whose host lease ended has no host left: the engine treats that as gone.
  const host = async () => {
    const id = resource.data.hostLease;
    const child = typeof id === 'string' ? await ctx.leases.get(id) : undefined;
    if (child?.status !== 'active') {
      const why = child?.endReason ? ` (${child.endReason})` : '';
      throw new ResourceGoneError(
        `working copy ${resource.id} has no host: its host lease ${id ?? '(none)'} is ${child?.status ?? 'gone'}${why}`,
      );
    }
    return ctx.commandsOn(child.id);
  };
  return {
    async start(commandId, command: ParsedCommand) {
      const layout = layoutOf(blueprint.config, resource);
      return (await host()).start(commandId, {
        ...command,
        cwd: commandCwd(layout, command.cwd),
      });
    },
    async poll(handle, from) {
      return (await host()).poll(handle, from);
    },
    async cancel(handle) {
      return (await host()).cancel(handle);
    },
  };
}

/** Cancel the checkout's git calls still running; the id of one not ended yet, if any. */
async function stopUnfinished(
  commands: CommandInterface,
  steps: StepState,
): Promise<string | undefined> {
  for (const [id, step] of Object.entries(steps)) {
    if (step.result) continue;
    await commands.cancel(step.handle);
    const progress = await commands.poll(step.handle, { stdout: 0, stderr: 0 });
    if (progress.state === 'running') return id;
  }
  return undefined;
}

export const workingCopyBlueprint: BlueprintType<WorkingCopyConfig> = {
  type: 'working-copy',
  description:
    'Git clones on a leased host: leases check out a ref (and merge refs on top), cleaned after each lease.',
  resourceTypes: ['working-copy'],
  configSchema: workingCopyConfigSchema,

  activatesLater: () => false,

  cannotEverServe(_blueprint, lease) {
    if (!repositoriesOf(lease)) {
      return 'a working-copy lease names its repositories (API: workingCopy.repositories; CLI: --repo <url>[@<ref>])';
    }
    return undefined;
  },

  // A working copy serves a lease iff it holds exactly the lease's repository set.
  canAcquire(_blueprint, resource, lease) {
    return (
      lease.workingCopy !== undefined &&
      resource.data.repositorySet === repositorySetKey(lease.workingCopy)
    );
  },

  async allocateResource(_ctx, _blueprint, lease) {
    const repositories = repositoriesOf(lease);
    if (!repositories || !lease.workingCopy) {
      throw new ValidationError('a working-copy lease names its repositories');
    }
    const repositorySet = repositorySetKey(lease.workingCopy);
    const setKey = createHash('sha256').update(repositorySet).digest('hex').slice(0, 16);
    return {
      data: {
        repositorySet,
        setKey,
        repositories: repositories.map(({ url, directory }) => ({ url, directory })),
      },
    };
  },

  async activateResource(ctx, blueprint, resource) {
    const { host } = blueprint.config;
    const child = await ctx.leases.request(resource, {
      key: HOST_LEASE_KEY,
      type: host.type,
      attributes: host.attributes,
      ...(host.blueprintIds ? { blueprintIds: host.blueprintIds } : {}),
    });
    if (child.status === 'released' || child.status === 'broken' || child.status === 'destroyed') {
      throw new Error(`its host lease ${child.id} ended: ${child.endReason ?? child.status}`);
    }
    if (child.status !== 'active') {
      return {
        state: 'pending',
        checkAgainSeconds: WOKEN_RECHECK_SECONDS,
        message: `waiting for host lease ${child.id} (${child.status})`,
        data: { hostLease: child.id },
      };
    }
    const layout = layoutOf(blueprint.config, resource);
    const step = await advance(
      await ctx.commandsOn(child.id),
      `${resource.id}-setup`,
      setupPlan(blueprint.config, layout),
      stepsOf(resource.data, 'setup'),
      hostTime(),
    );
    const data = { hostLease: child.id, hostResource: child.resourceId, setup: step.steps };
    if (step.state === 'failed') throw new Error(describeResult(step.step, step.result));
    if (step.state === 'pending') {
      const message = [...step.log, step.message].join('; ');
      return { state: 'pending', checkAgainSeconds: blueprint.config.pollSeconds, message, data };
    }
    return { state: 'active', data };
  },

  async activateLease(ctx, blueprint, resource, lease) {
    // The same clones (canAcquire matched the set), with this lease's refs and merges.
    const layout = { ...layoutOf(blueprint.config, resource), repositories: repositoriesOf(lease) };
    if (!layout.repositories) throw new CheckoutError('the lease names no repositories');
    const step = await advance(
      await ctx.commandsOn(hostLeaseOf(resource)),
      // Per attempt: a lease sent back to pending may land on the same host again, where the
      // commands of its first attempt still answer to their ids.
      `${lease.id}-${lease.requeues}-checkout`,
      leasePlan(blueprint.config, { ...layout, repositories: layout.repositories }),
      stepsOf(lease.data, 'checkout'),
      hostTime(),
    );
    // A missing ref or a conflicting merge was thrown by the plan (CheckoutError), naming it.
    if (step.state === 'failed') throw new CheckoutError(describeResult(step.step, step.result));
    const data = { checkout: step.steps };
    if (step.state === 'pending') {
      return {
        state: 'pending',
        checkAgainSeconds: blueprint.config.pollSeconds,
        message: `checking out ${describeCheckout(lease.workingCopy?.repositories ?? [])}: ${step.message}`,
        data,
        log: step.log,
      };
    }
    return { state: 'done', data, log: step.log };
  },

  async releaseLease(ctx, blueprint, resource, lease) {
    const layout = layoutOf(blueprint.config, resource);
    const commands = await ctx.commandsOn(hostLeaseOf(resource));
    // Released during its checkout: stop the git call still running before cleaning up after it.
    const stopping = await stopUnfinished(commands, stepsOf(lease.data, 'checkout'));
    if (stopping) {
      return {
        state: 'pending',
        checkAgainSeconds: blueprint.config.pollSeconds,
        message: `cleaning up: stopping ${stopping}`,
      };
    }
    const step = await advance(
      commands,
      `${lease.id}-release`,
      releasePlan(blueprint.config, layout),
      stepsOf(lease.data, 'release'),
      hostTime(),
    );
    if (step.state === 'failed') {
      throw new Error(`${describeResult(step.step, step.result)}; the clone may be damaged`);
    }
    const data = { release: step.steps };
    if (step.state === 'pending') {
      return {
        state: 'pending',
        checkAgainSeconds: blueprint.config.pollSeconds,
        message: `cleaning up: ${step.message}`,
        data,
        log: step.log,
      };
    }
    return { state: 'done', data, log: step.log };
  },

  async destroyResource(ctx, _blueprint, resource) {
    const hostLease = resource.data.hostLease;
    if (typeof hostLease === 'string') await ctx.leases.release(hostLease);
  },

  // Quick: the working copy is usable while its host lease is (the host's own checks and the
  // nested-lease rule break it otherwise). The git checks run when it is suspect, below.
  async healthCheck(ctx, _blueprint, resource) {
    const id = resource.data.hostLease;
    const child = typeof id === 'string' ? await ctx.leases.get(id) : undefined;
    if (!child) return { healthy: false, reason: 'it holds no host lease' };
    if (child.status !== 'active') {
      return {
        healthy: false,
        reason: `its host lease ${child.id} is ${child.status}${child.endReason ? ` (${child.endReason})` : ''}`,
      };
    }
    return { healthy: true };
  },

  /**
   * `git status` (clean) and `git fsck --connectivity-only` on every clone, with timeouts. No
   * state is stored: the command ids name this suspicion (`suspectSince`), and starting the same
   * id again finds the command that already ran, so each call picks up where the last one was.
   */
  async suspectHealthCheck(ctx, blueprint, resource) {
    const quick = await workingCopyBlueprint.healthCheck(ctx, blueprint, resource);
    if (!quick.healthy) return quick;
    if (resource.leaseCount > 0) {
      // A lease is still cleaning up (its own git calls): two sets of git calls on one clone
      // would fight over its locks. A suspect copy takes no new lease, so this ends.
      return {
        state: 'pending',
        checkAgainSeconds: blueprint.config.pollSeconds,
        message: 'waiting for the last lease to finish its cleanup',
      };
    }
    const since = Date.parse(resource.suspectSince ?? resource.updatedAt).toString(36);
    const step = await advance(
      await ctx.commandsOn(hostLeaseOf(resource)),
      `${resource.id}-health-${since}`,
      healthPlan(blueprint.config, layoutOf(blueprint.config, resource)),
      {},
      hostTime(),
    );
    if (step.state === 'failed') {
      return { healthy: false, reason: describeResult(step.step, step.result) };
    }
    if (step.state === 'pending') {
      return {
        state: 'pending',
        checkAgainSeconds: blueprint.config.pollSeconds,
        message: step.message,
      };
    }
    return { healthy: true };
  },

  command: workingCopyCommands,
};
