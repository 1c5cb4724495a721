/**
 * "Top up blueprint B's warm pool": keep `effectiveMinIdle` idle, ready resources within
 * maxResources, so a lease on a busy morning is acquired on an active host instead of waiting
 * for a boot. Sent by the sweep (once per blueprint per run, only when its listing shows the
 * pool short) and by every event that lowers the idle count: a lease taking an idle resource,
 * a resource destroyed (reclaimed, broken, released for good).
 *
 * Each pre-warm is the allocator's own allocation transaction without a lease (allocate-new.ts,
 * `warm`): the resource takes a pool slot lock conditionally, so duplicate or concurrent
 * top-ups and leases never exceed the cap. What they can do is overshoot minIdle (two top-ups
 * planning on the same count), never the cap; the idle rules trim the extra (reclaim is allowed
 * above minIdle). The new resources activate like any other: a resource update per resource,
 * inline or through the setup workflow. No worker waits here.
 */
import { allocateNew } from './allocate-new.ts';
import type { Engine } from './engine.ts';
import { countWarmIdle, effectiveMinIdle } from './min-idle.ts';
import type { Blueprint, Lease, UpdateMessage } from './model.ts';
import type { Outcome } from './outcomes.ts';

export type WarmPoolOutcome = Outcome<'ignored' | 'none' | 'pre-warmed' | 'waited'>;

/** Owner of the request a plug-in sees when it decides a pre-warmed resource (no lease). */
export const WARM_POOL_OWNER = 'drydock:warm-pool';

/**
 * What the plug-in's allocateResource/canAllocateNow receive for a pre-warm: a request for a
 * resource of the blueprint's type with no attributes beyond the blueprint's, owned by nobody.
 * It is never written; its id only names the request in logs and plug-in records.
 */
export function warmRequest(blueprint: Blueprint, at: string): Lease {
  return {
    id: `warm-${blueprint.id}`,
    type: blueprint.resourceType,
    attributes: {},
    blueprintIds: [blueprint.id],
    owner: WARM_POOL_OWNER,
    status: 'pending',
    version: 0,
    slotLocks: [],
    requestedAt: at,
    updatedAt: at,
    waitSeq: 0,
    requeues: 0,
  };
}

export async function topUpWarmPool(
  engine: Engine,
  msg: Pick<UpdateMessage, 'id'>,
): Promise<WarmPoolOutcome> {
  // Fresh: a draining or disabled blueprint must not be pre-warmed on a cached view.
  const blueprint = await engine.store.getBlueprint(msg.id);
  if (!blueprint) return { action: 'ignored', detail: `blueprint ${msg.id} does not exist` };
  if (blueprint.state !== 'enabled') {
    return { action: 'none', detail: `blueprint is ${blueprint.state}; no warm pool` };
  }
  const now = engine.now();
  const minIdle = effectiveMinIdle(blueprint.limits, now);
  if (minIdle === 0) return { action: 'none', detail: 'minIdle is 0 now' };
  const backoffUntil = blueprint.health.backoffUntil;
  if (backoffUntil && Date.parse(backoffUntil) > now) {
    // The circuit breaker holds pre-warms too (no launch storm); the next sweep asks again.
    return { action: 'none', detail: `backing off until ${backoffUntil}` };
  }

  const mine = (
    await engine.store.listLiveResources(blueprint.resourceType, blueprint.limits.maxResources)
  ).filter((r) => r.blueprintId === blueprint.id);
  const idle = countWarmIdle(mine, blueprint, now);
  const wanted = Math.min(minIdle - idle, blueprint.limits.maxResources - mine.length);
  if (wanted <= 0) {
    return { action: 'none', detail: `${idle} idle (minIdle ${minIdle}), ${mine.length} live` };
  }

  const { plugin, bp } = engine.configured(blueprint);
  const request = warmRequest(blueprint, engine.iso());
  const created: string[] = [];
  let stopped: string | undefined;
  for (let i = 0; i < wanted; i++) {
    const result = await allocateNew(engine, request, blueprint, plugin, bp, { minIdle });
    if (result.outcome !== 'acquired') {
      // Slots taken by leases or another top-up, or the plug-in failed (counted by the
      // breaker): the pool is as full as it can be now; the next trigger or sweep tries again.
      stopped = result.outcome === 'wait' ? result.reason : result.outcome;
      break;
    }
    created.push(result.resource.id);
  }
  // Each new resource activates through its own update (inline or the setup workflow).
  await engine.send(
    ...created.map((id) => ({
      kind: 'resource' as const,
      id,
      reason: `pre-warmed (minIdle ${minIdle})`,
    })),
  );
  if (created.length === 0) return { action: 'waited', detail: stopped };
  return {
    action: 'pre-warmed',
    detail: `${created.join(', ')} (minIdle ${minIdle}, ${idle} idle before)${stopped ? `; stopped: ${stopped}` : ''}`,
  };
}
