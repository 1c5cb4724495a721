/**
 * The host bill (`synthetic:<blueprintId>:hosts`): hosts exist only as created / destroyed /
 * vanished events. `hostTimeline` replays it for "the limit was never exceeded" assertions; the
 * plug-in reads it to find a resource's host and whether it is gone.
 */
import type { BlueprintContext } from '../../core/blueprint.ts';
import { ResourceGoneError } from '../../core/errors.ts';
import type { Resource } from '../../core/model.ts';
import type { Synthetic } from './config.ts';
import { appendRecord, inWriteOrder, syntheticScopes } from './records.ts';

export type HostEventKind = 'created' | 'destroyed' | 'vanished';

export interface HostEvent {
  event: HostEventKind;
  hostId: string;
  resourceId: string;
  /** ISO-8601 with milliseconds, from the blueprint context's clock. */
  at: string;
  reason?: string;
}

export interface HostTimeline {
  /** The most hosts alive at any one time. */
  maxAlive: number;
  /** Hosts alive after the last event. */
  alive: string[];
  /** The bill's events in time order. */
  events: HostEvent[];
}

const HOST_EVENTS: readonly string[] = ['created', 'destroyed', 'vanished'];

function toHostEvents(records: ReadonlyArray<Record<string, unknown>>): HostEvent[] {
  const events: HostEvent[] = [];
  for (const r of inWriteOrder(records)) {
    if (
      typeof r.event === 'string' &&
      HOST_EVENTS.includes(r.event) &&
      typeof r.hostId === 'string' &&
      typeof r.resourceId === 'string' &&
      typeof r.at === 'string'
    ) {
      const event: HostEvent = {
        event: r.event as HostEventKind,
        hostId: r.hostId,
        resourceId: r.resourceId,
        at: r.at,
      };
      if (typeof r.reason === 'string') event.reason = r.reason;
      events.push(event);
    }
  }
  return events;
}

/**
 * Replay the host bill (`synthetic:<blueprintId>:hosts`) in time order. Events at the same
 * millisecond (a frozen test clock, or two workers at once) are ordered destroyed/vanished
 * before created — a host torn down and another launched "at once" never count as two alive,
 * which is how a limit is meant (the slot is freed first) — except that a host's own end never
 * precedes its creation: a host created and ended within the same millisecond ends right after
 * it was created. Within a millisecond, creations keep the order they were written in.
 */
export function hostTimeline(records: ReadonlyArray<Record<string, unknown>>): HostTimeline {
  const sorted = toHostEvents(records)
    .map((event, index) => ({ event, index, ms: Date.parse(event.at) }))
    .sort((a, b) => a.ms - b.ms || a.index - b.index);

  const alive = new Set<string>();
  const events: HostEvent[] = [];
  let maxAlive = 0;
  const apply = (e: HostEvent) => {
    if (e.event === 'created') alive.add(e.hostId);
    else alive.delete(e.hostId);
    maxAlive = Math.max(maxAlive, alive.size);
    events.push(e);
  };

  for (let start = 0; start < sorted.length; ) {
    let end = start;
    while (end < sorted.length && sorted[end]?.ms === sorted[start]?.ms) end++;
    const tie = sorted.slice(start, end).map(({ event }) => event);
    start = end;
    const ends = tie.filter((e) => e.event !== 'created');
    const done = new Set<HostEvent>();
    // 1. Hosts alive before this instant end first.
    for (const e of ends) {
      if (alive.has(e.hostId)) {
        apply(e);
        done.add(e);
      }
    }
    // 2. Creations in record order, each followed at once by its own end at this instant.
    for (const created of tie) {
      if (created.event !== 'created') continue;
      apply(created);
      for (const e of ends) {
        if (!done.has(e) && e.hostId === created.hostId) {
          apply(e);
          done.add(e);
        }
      }
    }
    // 3. Ends of hosts that were not alive (a second destroy, a vanish after destroy).
    for (const e of ends) if (!done.has(e)) apply(e);
  }
  return { maxAlive, alive: [...alive], events };
}

export interface Host {
  hostId: string;
  resourceId: string;
  createdAtMs: number;
  destroyed: boolean;
  /** Why the host vanished, if it did (from the bill). */
  vanished?: string;
  /**
   * When it was destroyed or vanished (the earliest such event), if it is known to be gone: a
   * command that ended before this still reports how it ended.
   */
  goneAtMs?: number;
}

export async function findHost(
  ctx: BlueprintContext,
  blueprint: Synthetic,
  resourceId: string,
): Promise<Host | undefined> {
  const events = toHostEvents(await ctx.records.list(syntheticScopes.hosts(blueprint.id)));
  // The first `created` is canonical: a duplicate activation re-appends the same host id.
  const created = events
    .filter((e) => e.event === 'created' && e.resourceId === resourceId)
    .sort((a, b) => Date.parse(a.at) - Date.parse(b.at))[0];
  if (!created) return undefined;
  const host: Host = {
    hostId: created.hostId,
    resourceId,
    createdAtMs: Date.parse(created.at),
    destroyed: false,
  };
  for (const e of events) {
    if (e.hostId !== host.hostId || e.event === 'created') continue;
    if (e.event === 'destroyed') host.destroyed = true;
    if (e.event === 'vanished' && host.vanished === undefined) {
      host.vanished = e.reason ?? `host ${host.hostId} vanished`;
    }
    host.goneAtMs = Math.min(host.goneAtMs ?? Number.POSITIVE_INFINITY, Date.parse(e.at));
  }
  return host;
}

export async function appendHostEvent(
  ctx: BlueprintContext,
  blueprint: Synthetic,
  event: HostEvent,
): Promise<void> {
  await appendRecord(ctx, syntheticScopes.hosts(blueprint.id), { ...event });
}

export async function recordVanish(
  ctx: BlueprintContext,
  blueprint: Synthetic,
  host: Host,
  reason: string,
  atMs: number,
): Promise<void> {
  if (host.vanished !== undefined) return;
  host.vanished = reason;
  host.goneAtMs = Math.min(host.goneAtMs ?? Number.POSITIVE_INFINITY, atMs);
  await appendHostEvent(ctx, blueprint, {
    event: 'vanished',
    hostId: host.hostId,
    resourceId: host.resourceId,
    at: new Date(atMs).toISOString(),
    reason,
  });
}

/**
 * Why the host is gone, or undefined if it is alive. A host past `vanish.afterSeconds` is
 * noticed here and the vanish recorded (at the moment it happened) so the bill shows it.
 */
export async function whyGone(
  ctx: BlueprintContext,
  blueprint: Synthetic,
  host: Host,
): Promise<string | undefined> {
  if (host.destroyed) return `host ${host.hostId} was destroyed`;
  if (host.vanished !== undefined) return host.vanished;
  const { afterSeconds } = blueprint.config.vanish;
  if (afterSeconds !== undefined) {
    const vanishAtMs = host.createdAtMs + afterSeconds * 1000;
    if (ctx.clock.now() >= vanishAtMs) {
      const reason = `host ${host.hostId} vanished ${afterSeconds}s after it was created`;
      await recordVanish(ctx, blueprint, host, reason, vanishAtMs);
      return reason;
    }
  }
  return undefined;
}

export async function requireLiveHost(
  ctx: BlueprintContext,
  blueprint: Synthetic,
  resource: Resource,
): Promise<Host> {
  const host = await findHost(ctx, blueprint, resource.id);
  if (!host) {
    throw new ResourceGoneError(`resource ${resource.id} has no synthetic host`, {
      context: { resourceId: resource.id },
    });
  }
  const gone = await whyGone(ctx, blueprint, host);
  if (gone !== undefined) {
    throw new ResourceGoneError(gone, {
      context: { resourceId: resource.id, hostId: host.hostId },
    });
  }
  return host;
}
