/**
 * The allocator's warm path (issue 14 item 4): free resources of a blueprint from a bounded page
 * of the free-candidate index (schema.ts GSI4), instead of every live resource of the type. What
 * an acquisition reads is then bounded by FREE_PAGE items, not by the size of the pool: a
 * 500-host pool costs what a 10-host pool does.
 *
 * The page is one shard of the index (the shard the lease's id falls in, which also spreads
 * concurrent leases over different hosts), so it may miss free resources that sit in another
 * shard, and its entries may be stale (the index is eventually consistent, and a detach puts a
 * shared resource back while another lease still holds it). Neither is a correctness matter:
 * the same filter as the full plan runs on the page, transaction A's conditions decide, and
 * whenever the page yields nothing the allocator plans exactly as before, from every live
 * resource (allocator.ts).
 */
import type { BlueprintType, ConfiguredBlueprint } from './blueprint.ts';
import { usesLimit } from './eligibility.ts';
import { attributesMatch, type Engine } from './engine.ts';
import { keepsIdle } from './min-idle.ts';
import type { Blueprint, Lease, Resource } from './model.ts';

/** How many free resources one attempt reads from its shard (a few more than it may try). */
export const FREE_PAGE = 8;

export interface FreeCandidateSource {
  blueprint: Blueprint;
  plugin: BlueprintType<unknown>;
  bp: ConfiguredBlueprint<unknown>;
}

/** Whether `r` of this blueprint may serve `lease` now (the allocator's "usable"). */
export function usableFor(
  lease: Lease,
  { blueprint, plugin, bp }: FreeCandidateSource,
): (r: Resource) => boolean {
  const maxUses = usesLimit(blueprint);
  return (r) =>
    !r.suspectSince &&
    // Retiring (host-events.ts: a spot rebalance recommendation): no new leases.
    r.data.retiring === undefined &&
    (maxUses === undefined || r.uses < maxUses) &&
    attributesMatch(lease.attributes, r.attributes) &&
    plugin.canAcquire?.(bp, r, lease) !== false;
}

/** Active before pending (it serves sooner), then oldest first (keeps the pool compact). */
export function byPreference(a: Resource, b: Resource): number {
  return (
    Number(b.status === 'active') - Number(a.status === 'active') ||
    a.createdAt.localeCompare(b.createdAt)
  );
}

/**
 * Whether the blueprint can have a free resource at all. One that reclaims every resource on
 * release (one use each) and keeps no warm pool has none but by accident: reading the index
 * would only add a query to every attempt (the contention bench's pool), so it is skipped.
 */
export function mayHaveFree(blueprint: Blueprint, nowMs: number): boolean {
  return !blueprint.limits.reclaimOnRelease || keepsIdle(blueprint, nowMs) > 0;
}

/**
 * Below this many resources of a type (the sum of its blueprints' maxResources), the full plan's
 * read is bounded already (a few KB), and the free index is not read: on a small pool a page of
 * one shard of four would often miss (a miss costs one more query, the fallback), and the full
 * plan is one query that never misses. The index is for the pools whose full read grows.
 */
export const SMALL_POOL = 32;

/** Whether every live resource of `type` is few enough to read in the plan anyway. */
export function isSmallPool(blueprints: readonly Blueprint[], type: string): boolean {
  let ceiling = 0;
  for (const b of blueprints) if (b.resourceType === type) ceiling += b.limits.maxResources;
  return ceiling <= SMALL_POOL;
}

/**
 * Free resources of `source`'s blueprint that may serve `lease`, in the order the full plan
 * would prefer them, from one bounded page of the index. Empty: plan from every live resource.
 * `blueprints`: every blueprint (the catalog), to tell a small pool.
 */
export async function freeCandidates(
  engine: Engine,
  lease: Lease,
  source: FreeCandidateSource,
  blueprints: readonly Blueprint[],
): Promise<Resource[]> {
  if (isSmallPool(blueprints, lease.type)) return [];
  if (!mayHaveFree(source.blueprint, engine.now())) return [];
  const page = await engine.store.listFreeResources(source.blueprint.id, lease.id, FREE_PAGE);
  const usable = usableFor(lease, source);
  return page
    .filter(
      (r) =>
        r.type === lease.type &&
        (r.status === 'pending' || r.status === 'active') &&
        r.leaseCount === 0 &&
        usable(r),
    )
    .sort(byPreference);
}
