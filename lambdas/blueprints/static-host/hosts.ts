/** Where a static host's resource and lease live on the instance, and how to reach it. */
import type { BlueprintContext } from '../../core/blueprint.ts';
import { DrydockError, ResourceGoneError } from '../../core/errors.ts';
import type { Lease, Resource } from '../../core/model.ts';
import { requireClient } from '../cloud-clients.ts';
import { pathSegment } from '../shared.ts';
import { type SsmCommands, ssmCommandInterface } from '../ssm/commands.ts';
import { readBinding } from './bindings.ts';
import type { StaticHost } from './config.ts';

/** `<workRoot>/<resourceId>`: everything of one resource on its host. */
export function resourceWorkDir(blueprint: StaticHost, resource: Resource): string {
  return `${blueprint.config.workRoot}/${pathSegment(resource.id, 'resource id')}`;
}

/** `<workRoot>/<resourceId>/<leaseId>`: a lease's working directory, cleaned on release. */
export function leaseWorkDir(blueprint: StaticHost, resource: Resource, lease: Lease): string {
  return `${resourceWorkDir(blueprint, resource)}/${pathSegment(lease.id, 'lease id')}`;
}

/** The instance a resource is bound to (from its data, as allocateResource decided). */
export function instanceOf(resource: Resource): string {
  const id = resource.data.instanceId;
  if (typeof id !== 'string' || id === '') {
    throw new DrydockError(
      'invalid_resource',
      `resource ${resource.id} has no instanceId in its data (it was not allocated by static-host)`,
    );
  }
  return id;
}

/** The log group: the blueprint's own, or the one the stack names in the environment. */
export function logGroupOf(blueprint: StaticHost, env: Record<string, string | undefined>) {
  return blueprint.config.logGroupName ?? env.DRYDOCK_COMMAND_LOG_GROUP;
}

/** A command interface on the resource's instance, in `workDir`. */
export function hostCommands(
  ctx: BlueprintContext,
  blueprint: StaticHost,
  resource: Resource,
  options: { workDir: string; env: Record<string, string | undefined>; asLeaseUser: boolean },
): SsmCommands {
  const user = options.asLeaseUser ? blueprint.config.commandDefaults.user : undefined;
  return ssmCommandInterface({
    ssm: requireClient(ctx.clients, 'ssm'),
    logs: requireClient(ctx.clients, 'logs'),
    records: ctx.records,
    clock: ctx.clock,
    instanceId: instanceOf(resource),
    workDir: options.workDir,
    logGroupName: logGroupOf(blueprint, options.env),
    ...(user ? { user } : {}),
  });
}

/** Throw ResourceGoneError when the resource's binding was released (destroyed). */
export async function requireBound(ctx: BlueprintContext, resource: Resource): Promise<void> {
  const binding = await readBinding(ctx, resource.id);
  if (binding.released) {
    throw new ResourceGoneError(
      `resource ${resource.id} was destroyed; its instance ${binding.instanceId ?? '(none)'} is no longer bound to it`,
      { context: { resourceId: resource.id } },
    );
  }
}

/** Wrap an interface so every start or send first checks the resource still holds its binding. */
export function guarded(
  ctx: BlueprintContext,
  resource: Resource,
  inner: SsmCommands,
): SsmCommands {
  return {
    async start(commandId, command) {
      await requireBound(ctx, resource);
      return inner.start(commandId, command);
    },
    async send(command) {
      await requireBound(ctx, resource);
      return inner.send(command);
    },
    poll: (handle, from) => inner.poll(handle, from),
    cancel: (handle) => inner.cancel(handle),
  };
}
