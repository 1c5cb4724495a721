/**
 * How full each blueprint's pool is, and how many leases wait for it: what `GET /v1/pools`,
 * `drydock status`, the web console and the sweep's pool gauges show. Counts only (no lease
 * ids or owners), so any authenticated caller may read it.
 *
 * Reads, all index queries (no scan), grouped by resource type T (several blueprints that serve
 * the same type share them):
 *   1                       the blueprint list (BLUEPRINT partition)
 *   per T: 1+               live resources (pending + active share one partition), all pages
 *          1+ each         released and broken resources (not yet destroyed: they still hold
 *                           their pool slot, so they count toward maxResources)
 *          1..MAX_WAITING_PAGES   pending leases, oldest request first
 * i.e. 1 + 4·T queries while pools hold fewer than 100 objects of each kind. Live resources are
 * bounded by the blueprints' maxResources; waiting leases are read at most
 * MAX_WAITING_PAGES × WAITING_PAGE_SIZE per type, past which `waiting` is a lower bound (the
 * oldest wait stays exact: it comes from the first page).
 *
 * Eventually consistent reads: a snapshot for people and dashboards, never a decision.
 */

import type { Engine } from './engine.ts';
import { largestPool } from './largest-pool.ts';
import type { Blueprint, BlueprintState, Lease, Resource } from './model.ts';
import type { Page, PageOptions } from './ports.ts';

export interface PoolStats {
  blueprintId: string;
  /** Plug-in type, e.g. `synthetic`. */
  type: string;
  /** Resource type served, e.g. `host`. */
  resourceType: string;
  state: BlueprintState;
  health: {
    failureCount: number;
    backoffUntil?: string;
    lastFailure?: string;
    lastFailureAt?: string;
  };
  /** Resources that count toward maxResources: pending, active, released or broken, not destroyed. */
  live: number;
  /** Pending resources (setting up). */
  settingUp: number;
  active: number;
  /** Active resources with at least one lease. */
  leased: number;
  /** Active resources with no lease. */
  idle: number;
  /** limits.maxResources */
  max: number;
  /** Pending leases of its resource type this blueprint may serve (no blueprintIds, or naming it). */
  waiting: number;
  /** Age of the oldest of those, in whole seconds; null when none waits. */
  oldestWaitSeconds: number | null;
}

const WAITING_PAGE_SIZE = 100;
/** Pending leases read per resource type (1000): enough for a dashboard, bounded per call. */
export const MAX_WAITING_PAGES = 10;

/** One entry per blueprint, ordered by id. `now` (ms) defaults to the engine's clock. */
export async function poolStats(engine: Engine, now = engine.now()): Promise<PoolStats[]> {
  const blueprints = [...(await engine.blueprints({ fresh: true }))].sort((a, b) =>
    a.id < b.id ? -1 : a.id > b.id ? 1 : 0,
  );
  const types = [...new Set(blueprints.map((b) => b.resourceType))];
  const byType = new Map(
    await Promise.all(
      types.map(async (t) => [t, await readType(engine, t, largestPool(blueprints, t))] as const),
    ),
  );
  return blueprints.map((b) => statsOf(b, byType.get(b.resourceType) ?? EMPTY, now));
}

interface TypeView {
  resources: Resource[];
  waiting: Lease[];
}

const EMPTY: TypeView = { resources: [], waiting: [] };

async function readType(
  engine: Engine,
  type: string,
  largest: number | undefined,
): Promise<TypeView> {
  const [live, released, broken, waiting] = await Promise.all([
    engine.store.listLiveResources(type, largest),
    allPages((o) => engine.store.listResourcesByType(type, 'released', o)),
    allPages((o) => engine.store.listResourcesByType(type, 'broken', o)),
    allPages((o) => engine.store.listLeasesByType(type, 'pending', o), MAX_WAITING_PAGES),
  ]);
  return { resources: [...live, ...released, ...broken], waiting };
}

function statsOf(blueprint: Blueprint, view: TypeView, now: number): PoolStats {
  const own = view.resources.filter((r) => r.blueprintId === blueprint.id);
  const active = own.filter((r) => r.status === 'active');
  const leased = active.filter((r) => r.leaseCount > 0).length;
  const waiting = view.waiting.filter(
    (l) => !l.blueprintIds || l.blueprintIds.length === 0 || l.blueprintIds.includes(blueprint.id),
  );
  const oldest = waiting.reduce<string | undefined>(
    (min, l) => (min === undefined || l.requestedAt < min ? l.requestedAt : min),
    undefined,
  );
  const { failureCount, backoffUntil, lastFailure, lastFailureAt } = blueprint.health;
  return {
    blueprintId: blueprint.id,
    type: blueprint.type,
    resourceType: blueprint.resourceType,
    state: blueprint.state,
    health: {
      failureCount,
      ...(backoffUntil ? { backoffUntil } : {}),
      ...(lastFailure ? { lastFailure } : {}),
      ...(lastFailureAt ? { lastFailureAt } : {}),
    },
    live: own.filter((r) => r.status !== 'destroyed').length,
    settingUp: own.filter((r) => r.status === 'pending').length,
    active: active.length,
    leased,
    idle: active.length - leased,
    max: blueprint.limits.maxResources,
    waiting: waiting.length,
    oldestWaitSeconds:
      oldest === undefined ? null : Math.max(0, Math.floor((now - Date.parse(oldest)) / 1000)),
  };
}

async function allPages<T>(
  fetch: (options: PageOptions) => Promise<Page<T>>,
  maxPages = Number.POSITIVE_INFINITY,
): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await fetch({ limit: WAITING_PAGE_SIZE, ...(cursor ? { cursor } : {}) });
    items.push(...page.items);
    cursor = page.cursor;
    pages++;
  } while (cursor && pages < maxPages);
  return items;
}
