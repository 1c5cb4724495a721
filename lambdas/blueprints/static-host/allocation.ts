/**
 * Which instance of the pool a new resource binds. Only decides (no side effect): the allocation
 * transaction takes the `binding:<instanceId>` slot lock, and fails if another allocation took
 * it meanwhile; the allocator then asks again and gets another instance (or a wait reason).
 */
import type { BlueprintContext, ResourceTemplate } from '../../core/blueprint.ts';
import { TemporaryError } from '../../core/errors.ts';
import { requireClient } from '../cloud-clients.ts';
import { describeInstances, type ManagedInstance, whyNotUsable } from '../ssm/instances.ts';
import { bindingKey } from './bindings.ts';
import { deploymentTags, describePool, poolOf, type StaticHost } from './config.ts';

export type PoolView = { ok: true; free: ManagedInstance[] } | { ok: false; reason: string };

/** The pool's usable instances whose binding is free, or why there is none. */
export async function freeInstances(
  ctx: BlueprintContext,
  blueprint: StaticHost,
  env: Record<string, string | undefined>,
): Promise<PoolView> {
  const pool = poolOf(blueprint);
  const required = deploymentTags(env);
  const name = `pool ${describePool(pool, required)}`;
  const registered = await describeInstances(requireClient(ctx.clients, 'ssm'), pool, required);
  // An id pool may name instances SSM does not (or no longer) know: they are simply not usable.
  const usable = registered.filter((i) => whyNotUsable(i) === undefined);
  if (usable.length === 0) {
    const seen = registered.map((i) => whyNotUsable(i)).filter(Boolean);
    return {
      ok: false,
      reason:
        registered.length === 0
          ? `no SSM managed instance is registered in ${name}`
          : `no instance of ${name} can run commands: ${seen.join('; ')}`,
    };
  }
  const held = new Set(await ctx.slotLocks.held(usable.map((i) => bindingKey(i.instanceId))));
  const free = usable.filter((i) => !held.has(bindingKey(i.instanceId)));
  if (free.length === 0) {
    return {
      ok: false,
      reason: `all ${usable.length} instance${usable.length === 1 ? '' : 's'} of ${name} are bound to resources`,
    };
  }
  return { ok: true, free };
}

export async function allocateInstance(
  ctx: BlueprintContext,
  blueprint: StaticHost,
  env: Record<string, string | undefined>,
): Promise<ResourceTemplate> {
  const view = await freeInstances(ctx, blueprint, env);
  if (!view.ok) {
    // canAllocateNow just said there was one: it was taken (or went offline) in between.
    throw new TemporaryError(view.reason, { context: { blueprintId: blueprint.id } });
  }
  // Stable order (by id): the first free instance. Concurrent allocations that pick the same
  // one are settled by the binding lock; the loser is asked again.
  const [chosen] = view.free as [ManagedInstance, ...ManagedInstance[]];
  return {
    slotLocks: [bindingKey(chosen.instanceId)],
    data: { instanceId: chosen.instanceId },
    attributes: {
      instance: chosen.instanceId,
      ...(blueprint.attributes.platform === undefined ? { platform: 'linux' } : {}),
    },
  };
}
