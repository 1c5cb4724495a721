/**
 * The sweep (DESIGN §5), run every minute by EventBridge (a timer locally). It changes no
 * lease or resource itself: it sends the update that the object's own writer would have
 * received, so there is still one logical writer per object. The only thing it deletes is a
 * slot lock whose owner provably no longer holds it.
 *
 *  - leases past their TTL                       -> lease update (expires it)
 *  - leases/resources in a transitional state whose sweepAt passed (a lost message)
 *                                                -> their update (re-drive)
 *  - active resources: suspect, idle past TTL, too old, used up, blueprint draining, or due
 *    for their blueprint's periodic health check (leased or not: a static host can vanish
 *    with nobody holding it)                     -> resource update (health check / reclaim)
 *  - blueprints whose warm pool (minIdle) is short -> one "top up blueprint" message each;
 *    idle resources at or below minIdle are not sent for reclaim (no churn, no log line)
 *  - commands queued/running/cancelling whose sweepAt passed (a lost poll message, a restart
 *    of the local runtime)                       -> command step (re-drive)
 *  - slot locks whose owner is gone, destroyed or no longer lists the lock -> deleted
 *    (sweep-locks.ts: owners read in batches, resumed from a stored cursor)
 *
 * Bounded: the run has a time budget (`budgetMs`). Each step pages its listing and starts no
 * page past the deadline, naming itself in `unfinished`. The listings of transitional states
 * are by sweepAt, so a step cut short resumes by itself: what it re-drove moves its sweepAt on
 * and what it did not reach is still due first. The lock walk keeps a cursor. A cut-short
 * listing of active resources sends its checks but no warm-pool decision (those need the
 * whole pool's idle count), so a partial view never reclaims or tops up wrongly.
 *  - blueprints whose plug-in keeps an inventory (ec2-host's instances): one bounded batch
 *    reconciled (inventory.ts); orphaned hosts terminated by the plug-in on a second sighting,
 *    resources whose host vanished marked suspect
 */
import { periodicHealthCheckDue } from './eligibility.ts';
import type { Engine } from './engine.ts';
import { reconcileInventories } from './inventory.ts';
import { isWarmIdle, keepsIdle, topUpMessage } from './min-idle.ts';
import {
  type Blueprint,
  type LeaseStatus,
  LIVE_COMMAND_STATUSES,
  type Resource,
  type ResourceStatus,
  type UpdateMessage,
} from './model.ts';
import type { Page, PageOptions } from './ports.ts';
import { reclaimReason } from './resource-update.ts';
import { freeOrphanedLocks } from './sweep-locks.ts';

export interface SweepReport {
  expiredLeases: number;
  redrivenLeases: number;
  redrivenResources: number;
  resourcesToReclaimOrCheck: number;
  /** Of those, how many only because their periodic health check is due. */
  periodicHealthChecks: number;
  redrivenCommands: number;
  locksFreed: number;
  /** Slot locks looked at by this run's part of the walk; `locksComplete`: it reached the end. */
  locksChecked: number;
  locksComplete: boolean;
  /** Steps cut short by the time budget (they resume next run). */
  unfinished: string[];
  /** Blueprints whose warm pool was short of its minIdle: one top-up message each. */
  warmPoolTopUps: number;
  /** Hosts bound to no resource that plug-ins terminated (seen unbound twice). */
  orphansTerminated: number;
  /** Active resources whose host vanished, marked suspect (their health check breaks them). */
  vanishedHosts: number;
}

/** Within the sweep Lambda's 30 s timeout, with room for the steps after the deadline's page. */
export const DEFAULT_SWEEP_BUDGET_MS = 20_000;

export interface SweepOptions {
  /**
   * Re-drive every lease, resource and command in a transitional state now, not only those
   * past their sweepAt: the caller knows every queued message is gone (the local runtime
   * starting on a new, in-memory queue), so waiting out the stranded-state bound would only
   * keep everyone waiting.
   */
  allInFlight?: boolean;
  /** Time for the whole run (engine clock); no listing page is started past it. */
  budgetMs?: number;
}

export async function runSweep(engine: Engine, options: SweepOptions = {}): Promise<SweepReport> {
  const now = engine.iso();
  const deadline = engine.now() + (options.budgetMs ?? DEFAULT_SWEEP_BUDGET_MS);
  const unfinished: string[] = [];
  /** The listing's items, until the deadline passes (the step is then named unfinished). */
  const pages = <T>(step: string, fetch: (o: PageOptions) => Promise<Page<T>>) =>
    pagesUntil(fetch, deadline, engine, () => {
      if (!unfinished.includes(step)) unfinished.push(step);
    });
  // Transitional states are due at their sweepAt, or all of them at once (allInFlight).
  const due = options.allInFlight ? {} : { dueBefore: now };
  const messages: UpdateMessage[] = [];
  const report: SweepReport = {
    expiredLeases: 0,
    redrivenLeases: 0,
    redrivenResources: 0,
    resourcesToReclaimOrCheck: 0,
    periodicHealthChecks: 0,
    redrivenCommands: 0,
    locksFreed: 0,
    locksChecked: 0,
    locksComplete: false,
    unfinished,
    warmPoolTopUps: 0,
    orphansTerminated: 0,
    vanishedHosts: 0,
  };

  // Leases: TTL expiry (active) and stranded transitional states.
  const leaseStatuses: LeaseStatus[] = ['active', 'pending', 'acquired', 'released', 'broken'];
  for (const status of leaseStatuses) {
    for await (const lease of pages(`leases ${status}`, (o) =>
      engine.store.listLeasesByStatus(status, {
        ...o,
        ...(status === 'active' ? { dueBefore: now } : due),
      }),
    )) {
      if (status === 'active') report.expiredLeases++;
      else report.redrivenLeases++;
      messages.push({
        kind: 'lease',
        id: lease.id,
        reason:
          status === 'active'
            ? 'sweep: TTL passed'
            : `sweep: ${status} with no update since ${lease.updatedAt}`,
      });
    }
  }

  // Resources: stranded transitional states.
  const resourceStatuses: ResourceStatus[] = ['pending', 'released', 'broken'];
  for (const status of resourceStatuses) {
    for await (const r of pages(`resources ${status}`, (o) =>
      engine.store.listResourcesByStatus(status, { ...o, ...due }),
    )) {
      report.redrivenResources++;
      messages.push({
        kind: 'resource',
        id: r.id,
        reason: `sweep: ${status} with no update since ${r.updatedAt}`,
      });
    }
  }

  // Active resources: suspects get a health check, idle ones are reclaimed by their update.
  // Listed in full first: the warm pool's idle count per blueprint decides both which idle
  // resources may go (only above minIdle) and which pools need a top-up, with no extra read.
  const blueprints = new Map((await engine.blueprints({ fresh: true })).map((b) => [b.id, b]));
  const active: Resource[] = [];
  for await (const r of pages('resources active', (o) =>
    engine.store.listResourcesByStatus('active', o),
  )) {
    active.push(r);
  }
  const nowMs = engine.now();
  // A partial listing undercounts idle resources: no warm-pool decision on it this run.
  const pools = unfinished.includes('resources active')
    ? new Map<string, WarmPoolCount>()
    : warmPools(active, blueprints, nowMs);
  for (const r of active) {
    const blueprint = blueprints.get(r.blueprintId);
    const pool = pools.get(r.blueprintId);
    if (
      !blueprint ||
      r.suspectSince ||
      sweepReclaims(engine, r, blueprint, pool, unfinished.includes('resources active'))
    ) {
      report.resourcesToReclaimOrCheck++;
      messages.push({ kind: 'resource', id: r.id, reason: 'sweep: check or reclaim' });
    } else if (periodicHealthCheckDue(engine, r, blueprint)) {
      report.resourcesToReclaimOrCheck++;
      report.periodicHealthChecks++;
      messages.push({ kind: 'resource', id: r.id, reason: 'sweep: periodic health check' });
    }
  }

  // Warm pools short of their minIdle (by the active resources alone: a pending pre-warm is
  // counted exactly by the top-up itself, which then does nothing). One message per blueprint.
  for (const [id, pool] of pools) {
    const blueprint = blueprints.get(id);
    if (!blueprint || pool.idle >= pool.minIdle || pool.live >= blueprint.limits.maxResources)
      continue;
    report.warmPoolTopUps++;
    messages.push(
      ...topUpMessage(blueprint, `sweep: ${pool.idle} idle of minIdle ${pool.minIdle}`),
    );
  }

  // Commands: a step whose message was lost (each step sets sweepAt past its next look).
  for (const status of LIVE_COMMAND_STATUSES) {
    for await (const c of pages(`commands ${status}`, (o) =>
      engine.store.listCommandsByStatus(status, { ...o, ...due }),
    )) {
      report.redrivenCommands++;
      messages.push({
        kind: 'command',
        id: c.id,
        leaseId: c.leaseId,
        reason: `sweep: ${status} with no step since ${c.updatedAt}`,
      });
    }
  }

  await engine.send(...messages);
  const locks = await freeOrphanedLocks(engine, deadline);
  report.locksFreed = locks.freed;
  report.locksChecked = locks.checked;
  report.locksComplete = locks.complete;
  if (!locks.complete) unfinished.push('slot locks');
  const inventory = await reconcileInventories(engine, [...blueprints.values()]);
  report.orphansTerminated = inventory.orphansTerminated;
  report.vanishedHosts = inventory.vanishedHosts;
  return report;
}

/**
 * Whether the sweep sends `r` to be reclaimed. In a warm pool, idleness alone sends only the
 * idle resources above minIdle (counted down as they are sent), so the ones the pool keeps get
 * no update, and no log line, sweep after sweep. Those that must go (used up, too old) go.
 */
function sweepReclaims(
  engine: Engine,
  r: Resource,
  blueprint: Blueprint,
  pool: WarmPoolCount | undefined,
  /** The pool was not counted this run: reclaim only what must go whatever the pool needs. */
  partial = false,
): boolean {
  if (partial && keepsIdle(blueprint, engine.now()) > 0) {
    return reclaimReason(engine, r, blueprint, 0) !== undefined;
  }
  if (!pool) return reclaimReason(engine, r, blueprint) !== undefined;
  if (reclaimReason(engine, r, blueprint, 0) !== undefined) return true;
  if (pool.idle <= pool.minIdle || reclaimReason(engine, r, blueprint) === undefined) return false;
  pool.idle--;
  return true;
}

interface WarmPoolCount {
  minIdle: number;
  idle: number;
  live: number;
}

/** Per blueprint keeping a warm pool now: its minIdle, idle and live counts among `active`. */
function warmPools(
  active: Resource[],
  blueprints: Map<string, Blueprint>,
  nowMs: number,
): Map<string, WarmPoolCount> {
  const pools = new Map<string, WarmPoolCount>();
  for (const blueprint of blueprints.values()) {
    const minIdle = keepsIdle(blueprint, nowMs);
    if (minIdle > 0) pools.set(blueprint.id, { minIdle, idle: 0, live: 0 });
  }
  for (const r of active) {
    const pool = pools.get(r.blueprintId);
    const blueprint = blueprints.get(r.blueprintId);
    if (!pool || !blueprint) continue;
    pool.live++;
    if (isWarmIdle(r, blueprint, nowMs)) pool.idle++;
  }
  return pools;
}

/** A listing's items page by page (100 a page); no page is started past `deadline`. */
async function* pagesUntil<T>(
  fetch: (options: PageOptions) => Promise<Page<T>>,
  deadline: number,
  engine: Engine,
  cutShort: () => void,
): AsyncGenerator<T> {
  let cursor: string | undefined;
  do {
    const page = await fetch({ limit: 100, ...(cursor ? { cursor } : {}) });
    yield* page.items;
    cursor = page.cursor;
    if (cursor && engine.now() >= deadline) {
      cutShort();
      return;
    }
  } while (cursor);
}
