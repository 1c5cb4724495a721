/**
 * `static-host`: a pool of machines the user already has — EC2 instances or on-premises servers
 * registered as SSM managed instances — one resource per instance ("one resource per binding").
 * Commands run through SSM Run Command (the shared interface in ../ssm/); the host is never ours
 * to create or terminate.
 *
 * Rooms: config.ts (the pool and defaults), allocation.ts (a free instance; the binding lock),
 * bindings.ts (the binding bill in ctx.records), activation.ts (online check, setup commands),
 * health.ts (registered, in the pool, online, runs `true`), hosts.ts (paths and clients).
 */
import type { BlueprintType } from '../../core/blueprint.ts';
import { DrydockError } from '../../core/errors.ts';
import { commandFilesystem } from '../ssm/files.ts';
import { housekeeping, realSleep, runToEnd, type Sleep, tail } from '../ssm/run.ts';
import { shellQuote } from '../ssm/script.ts';
import { activateHost } from './activation.ts';
import { allocateInstance, freeInstances } from './allocation.ts';
import { appendBinding, readBinding } from './bindings.ts';
import { type StaticHostConfig, staticHostConfigSchema } from './config.ts';
import { checkHost } from './health.ts';
import {
  guarded,
  hostCommands,
  instanceOf,
  leaseWorkDir,
  requireBound,
  resourceWorkDir,
} from './hosts.ts';

export { bindingKey, bindingScope } from './bindings.ts';
export {
  describePool,
  poolOf,
  type StaticHostConfig,
  staticHostConfigSchema,
} from './config.ts';

export interface StaticHostDeps {
  /**
   * Where `DRYDOCK_COMMAND_LOG_GROUP` and `DRYDOCK_DEPLOYMENT` (the tag every pool instance must
   * carry) are read (at use, not at load). @default process.env
   */
  env?: Record<string, string | undefined>;
  /** How housekeeping commands (files, cleanup, health ping) wait between polls. @default real time */
  sleep?: Sleep;
}

/** The plug-in with its dependencies; `staticHostBlueprint` is the one the registry holds. */
export function makeStaticHostBlueprint(
  deps: StaticHostDeps = {},
): BlueprintType<StaticHostConfig> {
  const env = deps.env ?? process.env;
  const sleep = deps.sleep ?? realSleep;
  return {
    type: 'static-host',
    description:
      'Machines you already have (EC2 or on-premises, registered with SSM): one resource per instance; commands run through SSM Run Command.',
    resourceTypes: ['host'],
    configSchema: staticHostConfigSchema,

    // Setup commands may take minutes: drive activation by the setup workflow then.
    activatesLater: (blueprint) => blueprint.config.setupCommands.length > 0,

    // Hosts change behind our back (offline, deregistered, untagged): the sweep asks regularly.
    healthCheckEverySeconds: (blueprint) => blueprint.config.healthCheckEverySeconds,

    // A lease's working directory is created by its first command, so there is nothing to do.
    needsLeaseActivation: () => false,

    // allocation.ts sets the instance it binds, and platform=linux unless the blueprint says.
    producesAttributes: () => ['instance', 'platform'],

    cannotEverServe(blueprint, lease) {
      const wants = lease.attributes.platform;
      if (wants === undefined || blueprint.attributes.platform !== undefined) return undefined;
      return wants === 'linux'
        ? undefined
        : `registers its hosts as platform=linux, lease wants platform=${wants}`;
    },

    async canAllocateNow(ctx, blueprint) {
      const view = await freeInstances(ctx, blueprint, env);
      return view.ok ? { ok: true } : { ok: false, reason: view.reason };
    },

    allocateResource: (ctx, blueprint) => allocateInstance(ctx, blueprint, env),

    activateResource: (ctx, blueprint, resource) => activateHost(ctx, blueprint, resource, env),

    async releaseLease(ctx, blueprint, resource, lease) {
      await requireBound(ctx, resource);
      const dir = leaseWorkDir(blueprint, resource, lease);
      // Runs in the resource's directory: the lease's own is what it removes.
      const commands = hostCommands(ctx, blueprint, resource, {
        workDir: resourceWorkDir(blueprint, resource),
        env,
        asLeaseUser: false,
      });
      const done = await runToEnd(
        commands,
        housekeeping(
          // The resource's directory goes too once its last lease has left it.
          `rm -rf -- ${shellQuote(dir)} && { rmdir -- "$PWD" 2>/dev/null || true; }`,
          blueprint.config.commandDefaults.timeoutSeconds,
        ),
        { clock: ctx.clock, sleep, what: `cleanup of lease ${lease.id}` },
      );
      if (done.exitCode !== 0) {
        throw new DrydockError(
          'cleanup_failed',
          `removing ${dir} on instance ${instanceOf(resource)} failed (exit ${done.exitCode}): ${tail(done.stderr, 500)}`,
        );
      }
    },

    async destroyResource(ctx, _blueprint, resource) {
      // Nothing to terminate: the host is not ours. Releasing the binding is the whole teardown
      // (the allocator frees the binding slot lock afterwards). Idempotent: released once.
      const binding = await readBinding(ctx, resource.id);
      if (binding.instanceId === undefined || binding.released) return;
      await appendBinding(ctx, resource.id, { event: 'released' });
    },

    healthCheck: (ctx, blueprint, resource) => checkHost(ctx, blueprint, resource, { env, sleep }),

    command: (ctx, blueprint, resource, lease) =>
      guarded(
        ctx,
        resource,
        hostCommands(ctx, blueprint, resource, {
          workDir: leaseWorkDir(blueprint, resource, lease),
          env,
          asLeaseUser: true,
        }),
      ),

    filesystem: (ctx, blueprint, resource, lease) => {
      const user = blueprint.config.commandDefaults.user;
      return commandFilesystem({
        commands: guarded(
          ctx,
          resource,
          hostCommands(ctx, blueprint, resource, {
            workDir: leaseWorkDir(blueprint, resource, lease),
            env,
            asLeaseUser: false,
          }),
        ),
        workDir: leaseWorkDir(blueprint, resource, lease),
        clock: ctx.clock,
        sleep,
        timeoutSeconds: blueprint.config.commandDefaults.timeoutSeconds,
        ...(user ? { user } : {}),
      });
    },
  };
}

export const staticHostBlueprint = makeStaticHostBlueprint();
