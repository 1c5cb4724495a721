/**
 * The binding bill: which instance a resource is bound to, and whether that binding was released
 * (destroyResource). Kept in ctx.records, so any worker sees it and destroy stays idempotent;
 * a destroyed resource's interfaces answer ResourceGoneError instead of reaching a host that may
 * by now be bound to another resource. Offline sightings are kept here too (the offline grace).
 */
import type { BlueprintContext } from '../../core/blueprint.ts';
import { isoAt } from '../../core/ports.ts';

export const bindingScope = (resourceId: string) => `static-host:binding:${resourceId}`;

/** The slot lock that makes an instance one resource at a time. */
export const bindingKey = (instanceId: string) => `binding:${instanceId}`;

type BindingEvent =
  | { event: 'bound'; instanceId: string; at: string; atMs: number }
  | { event: 'released'; at: string; atMs: number }
  | { event: 'offline'; pingStatus: string; at: string; atMs: number }
  | { event: 'online'; at: string; atMs: number };

export interface Binding {
  instanceId?: string;
  released: boolean;
  /** Since when the instance has been seen offline without being seen online again. */
  offlineSinceMs?: number;
}

/** Replay the bill in write order (records written in one millisecond may list in any order). */
export async function readBinding(ctx: BlueprintContext, resourceId: string): Promise<Binding> {
  const events = (await ctx.records.list(bindingScope(resourceId))) as unknown as BindingEvent[];
  const order = (e: BindingEvent) =>
    e.atMs * 10 + ({ bound: 0, offline: 1, online: 2, released: 3 } as const)[e.event];
  const binding: Binding = { released: false };
  for (const e of [...events].sort((a, b) => order(a) - order(b))) {
    if (e.event === 'bound') binding.instanceId ??= e.instanceId;
    else if (e.event === 'released') binding.released = true;
    else if (e.event === 'offline') binding.offlineSinceMs ??= e.atMs;
    else if (e.event === 'online') delete binding.offlineSinceMs;
  }
  return binding;
}

export async function appendBinding(
  ctx: BlueprintContext,
  resourceId: string,
  event:
    | { event: 'bound'; instanceId: string }
    | { event: 'released' }
    | { event: 'offline'; pingStatus: string }
    | { event: 'online' },
): Promise<void> {
  await ctx.records.append(bindingScope(resourceId), {
    ...event,
    at: isoAt(ctx.clock),
    atMs: ctx.clock.now(),
  });
}
