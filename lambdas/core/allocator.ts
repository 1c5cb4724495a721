/**
 * The allocator: one update of one pending lease (DESIGN §4).
 *
 * Phase 1 — planning, no locks, may be stale. Find the blueprints that could ever serve the
 * lease (the rules are in eligibility.ts; if none, the lease breaks with the reason). The warm
 * path first, for a pool too big to read whole: a bounded page of free resources of the first
 * blueprint (free-candidates.ts, one index query whose size does not grow with the pool), tried
 * as step 1 below. If that yields nothing, the live resources of its type (one index query).
 * Cheap checks decide "full, back off" without contending for anything.
 *
 * Phase 2 — exact, per blueprint, in order:
 *   1. acquire on a free matching resource          (transaction A below)
 *   2. allocate a new resource under the limits     (transaction B below)
 *   3. acquire on a shared resource that has room   (transaction A)
 *   4. reclaim an idle resource that does not match (transaction C)
 *   5. otherwise wait: re-enqueue with backoff      (write W; on a full pool at the backoff
 *      cap: the slot's release wakes the oldest waiter, wake.ts)
 * Nothing here holds a lock across an await: every "lock" is a slot-lock row written in the
 * same transaction as the state change it guards, and any stale plan simply fails its
 * condition and is re-planned.
 *
 * Lock timeline of acquisition (A), lease L on resource R with capacity c:
 *
 *   worker 1                       DynamoDB                          worker 2
 *   plan: R has leaseCount 0  ─┐
 *                              │                                ┌─ plan: R has leaseCount 0
 *   TransactWrite ─────────────┼─> L pending->acquired (v)      │
 *                              │   put  R/lease-slot:0  (absent)│
 *                              │   R.leaseCount+1 if status in  │
 *                              │     (pending, active), not      │
 *                              │     suspect, leaseCount < c     │
 *                              │   <── committed                │
 *                              │                     <──────────┼── TransactWrite L2 ... slot:0
 *                              │   cancelled: slot:0 exists ──> │   re-plan / try next / wait
 *
 * A reclaim (C) of R is `R active->released if leaseCount = 0` on the same item, so DynamoDB
 * orders it strictly before or after any acquisition: no lease is handed a resource that is
 * being reclaimed, and no resource with a lease is reclaimed.
 *
 * Allocation (B, in allocate-new.ts) writes, in one transaction: the new pending resource *with
 * its attributes already set* and leaseCount 1, its pool slot lock `blueprint:B:slot:n`
 * (absent) and any slot locks its plug-in asked for (`binding:<instance>`), and L acquired on
 * it with its lease slot lock. Others can match the pending resource at once
 * ("mystery box") and acquire on it if it has capacity, but cannot steal its creator's slot.
 * The blueprint's side effect (launching a host) happens only after this commits, in resource
 * activation, so a failed transaction orphans nothing.
 */

import { allocateNew } from './allocate-new.ts';
import type { BlueprintType, ConfiguredBlueprint } from './blueprint.ts';
import { cannotEverServe, idleSinceMs, leaseNeedsActivation, usesLimit } from './eligibility.ts';
import { describeAttributes, type Engine, slotKeys } from './engine.ts';
import { WriteConflictError } from './errors.ts';
import { byPreference, freeCandidates, usableFor } from './free-candidates.ts';
import { largestPool } from './largest-pool.ts';
import { nextCheckAt } from './lease-hold.ts';
import { countWarmIdle, isWarmIdle, keepsIdle, topUpMessage } from './min-idle.ts';
import type { Blueprint, Lease, Resource } from './model.ts';
import { type TxWrite, writeLabel } from './ports.ts';
import { sweepAtWithinDeadline } from './wait-deadline.ts';
import { type PoolCount, type WaitCause, waitOn } from './wait-reasons.ts';

export type AllocationOutcome =
  | { outcome: 'acquired'; lease: Lease; resource: Resource; allocated: boolean }
  /** `reason` is `causes` in words (wait-reasons.ts), what the lease logs and shows. */
  | { outcome: 'wait'; reason: string; causes: WaitCause[]; delaySeconds: number }
  | { outcome: 'broken'; reason: string }
  /** Another worker changed the lease first; this update has nothing left to do. */
  | { outcome: 'stale' };

interface Candidate {
  blueprint: Blueprint;
  plugin: BlueprintType<unknown>;
  bp: ConfiguredBlueprint<unknown>;
}

export async function allocateLease(
  engine: Engine,
  lease: Lease,
  attempt: number,
): Promise<AllocationOutcome> {
  // ---- Phase 1: planning ------------------------------------------------------------------
  let blueprints = await engine.blueprints();
  let refusals = blueprints.map((b) => ({ b, why: cannotEverServe(engine, b, lease) }));
  if (refusals.every((r) => r.why !== undefined)) {
    // A permanent decision is never taken on a cached list.
    blueprints = await engine.blueprints({ fresh: true });
    refusals = blueprints.map((b) => ({ b, why: cannotEverServe(engine, b, lease) }));
  }
  const candidates: Candidate[] = refusals
    .filter((r) => r.why === undefined)
    .map((r) => ({ blueprint: r.b, ...engine.configured(r.b) }));
  if (candidates.length === 0) {
    const relevant = refusals.filter((r) => r.b.resourceType === lease.type);
    const reason =
      relevant.length === 0
        ? `no blueprint builds resources of type '${lease.type}'; create one (drydock blueprint create) or ask for another type`
        : `no blueprint can ever serve this lease (type ${lease.type}, ${describeAttributes(lease.attributes)}): ${relevant
            .map((r) => `blueprint '${r.b.id}' ${r.why}`)
            .join('; ')}`;
    return { outcome: 'broken', reason };
  }

  // Warm path: a free resource of the first blueprint, from a bounded page of the free index
  // (free-candidates.ts). Only the first: the plan below tries each blueprint's free resources
  // before the next blueprint's, and allocates new before acquiring a shared one, so a free
  // resource of the first blueprint is what it would pick too. Nothing usable, or every race
  // lost: the full plan, exactly as before.
  const warm = await acquireFree(engine, lease, candidates[0]!, blueprints);
  if (warm) return warm;

  // The plan looks only at the candidates' own resources (tryBlueprint): their largest pool
  // says which index blocks to read, one query for pools of up to 32 (store/schema.ts).
  const live = await engine.store.listLiveResources(
    lease.type,
    largestPool(
      candidates.map((c) => c.blueprint),
      lease.type,
    ),
  );
  const waits: WaitCause[] = [];

  // ---- Phase 2: exact, per blueprint --------------------------------------------------------
  for (const candidate of candidates) {
    const result = await tryBlueprint(engine, lease, candidate, live);
    if (result.outcome !== 'wait') return result;
    waits.push(...result.causes);
  }

  // A full pool hands its next freed slot to its oldest waiter (wake.ts): the wait chain is then
  // only the safety net for a lost wake-up, so it retries at the backoff cap instead of racing
  // the wake-ups with short timers (most of the wasted updates under contention, issue 14).
  return waitOn(waits, engine.backoffSeconds(waitsForWake(waits) ? FULL_POOL_ATTEMPT : attempt));
}

/** A backoff attempt deep enough to be the cap. */
const FULL_POOL_ATTEMPT = 20;

/**
 * Whether every cause is a slot held by someone else (a full pool, a race lost): freeing any
 * of them wakes the oldest waiting lease. A breaker, a plug-in's refusal or a failure are not:
 * nothing wakes a lease when they pass, so those waits keep the growing backoff.
 */
export function waitsForWake(causes: readonly WaitCause[]): boolean {
  return (
    causes.length > 0 &&
    causes.every((c) => c.kind === 'at-limit' || c.kind === 'lost-race' || c.kind === 'in-line')
  );
}

/**
 * The pool as this attempt saw it: what holds each slot. `lost` are resources this attempt
 * lost a race for, with what the store said they became: leased by another lease, released
 * or broken (being torn down), or marked suspect (not suitable).
 */
function countPool(
  mine: Resource[],
  usable: Resource[],
  lost: Map<string, keyof PoolCount>,
): PoolCount {
  const count: PoolCount = { booting: 0, leased: 0, unsuitable: 0, tearingDown: 0 };
  for (const r of mine) {
    const became = lost.get(r.id);
    if (became) count[became]++;
    else if (r.status === 'pending') count.booting++;
    else if (r.status !== 'active') count.tearingDown++;
    else if (r.leaseCount >= r.capacity) count.leased++;
    else if (!usable.includes(r)) count.unsuitable++;
    else count.leased++; // shared, with room that another lease took after planning
  }
  return count;
}

async function tryBlueprint(
  engine: Engine,
  lease: Lease,
  { blueprint, plugin, bp }: Candidate,
  live: Resource[],
): Promise<AllocationOutcome> {
  const { limits } = blueprint;
  const now = engine.now();
  const mine = live.filter((r) => r.blueprintId === blueprint.id);
  const maxUses = usesLimit(blueprint);
  const activateAtOnce = !leaseNeedsActivation(plugin, bp);
  const usable = mine.filter(usableFor(lease, { blueprint, plugin, bp }));
  usable.sort(byPreference);

  // Races lost in this attempt, and the resources they were for: the reason names them.
  const races: WaitCause[] = [];
  const lost = new Map<string, keyof PoolCount>();
  const tryAcquire = async (r: Resource): Promise<AllocationOutcome | undefined> => {
    const got = await acquireOn(engine, lease, r, maxUses, activateAtOnce);
    // One idle resource fewer: the warm pool (if any) tops itself back up, off this path.
    if (got.outcome === 'acquired') {
      await engine.send(...topUpMessage(blueprint, `lease ${lease.id} took idle ${r.id}`));
    }
    if (got.outcome !== 'wait') return got;
    races.push(...got.causes);
    const now = got.causes.find((c) => c.kind === 'lost-race')?.nowStatus;
    lost.set(
      r.id,
      now === 'released' || now === 'broken' || now === 'destroyed'
        ? 'tearingDown'
        : now === 'marked suspect'
          ? 'unsuitable'
          : r.status === 'pending'
            ? 'booting'
            : 'leased',
    );
    return undefined;
  };

  // 1. A free matching resource.
  for (const r of spreadOver(
    usable.filter((r) => r.leaseCount === 0),
    lease.id,
  )) {
    const got = await tryAcquire(r);
    if (got) return got;
  }

  // 2. A new resource, if the blueprint is under its limits and not backing off. The "at its
  // limit" cause is counted at the end, once the races of step 3 are known too.
  const backoffUntil = blueprint.health.backoffUntil;
  let limitCauses: WaitCause[] | undefined;
  if (backoffUntil && Date.parse(backoffUntil) > now) {
    limitCauses = [
      {
        kind: 'backing-off',
        blueprintId: blueprint.id,
        failures: blueprint.health.failureCount,
        until: backoffUntil,
        ...(blueprint.health.lastFailure ? { lastFailure: blueprint.health.lastFailure } : {}),
      },
    ];
  } else if (mine.length < limits.maxResources) {
    const allocated = await allocateNew(engine, lease, blueprint, plugin, bp, undefined, mine);
    if (allocated.outcome !== 'wait') return allocated;
    limitCauses = allocated.causes;
  }

  // 3. A shared resource with room.
  for (const r of usable.filter((r) => r.leaseCount > 0 && r.leaseCount < r.capacity)) {
    const got = await tryAcquire(r);
    if (got) return got;
  }

  // 4. Reclaim an idle resource that cannot serve this lease, to make room for one that can.
  const reclaimable = mine.find(
    (r) =>
      r.status === 'active' &&
      r.leaseCount === 0 &&
      !usable.includes(r) &&
      idleSinceMs(r) + limits.idleGraceSeconds * 1000 <= now,
  );
  // Never below the warm pool's minIdle: the pool is what keeps busy mornings fast.
  const keptWarm =
    reclaimable !== undefined &&
    isWarmIdle(reclaimable, blueprint, now) &&
    countWarmIdle(mine, blueprint, now) <= keepsIdle(blueprint, now);
  if (reclaimable && !keptWarm && mine.length >= limits.maxResources) {
    const reclaimed = await reclaimResource(
      engine,
      reclaimable,
      `reclaimed to make room for lease ${lease.id}`,
    );
    if (reclaimed) {
      return waitOn(
        [
          ...races,
          {
            kind: 'reclaiming',
            blueprintId: blueprint.id,
            type: lease.type,
            resourceId: reclaimable.id,
          },
        ],
        engine.backoffSeconds(0),
      );
    }
  }

  // 5. Wait.
  return waitOn([
    ...races,
    ...(limitCauses ?? [
      {
        kind: 'at-limit',
        blueprintId: blueprint.id,
        type: lease.type,
        limit: limits.maxResources,
        ...countPool(mine, usable, lost),
      },
    ]),
  ]);
}

/**
 * Step 1 on the warm path: acquire one of the free resources a bounded page of the free index
 * offers (free-candidates.ts). Undefined when it offers none or every race is lost: the caller
 * then plans from every live resource.
 */
async function acquireFree(
  engine: Engine,
  lease: Lease,
  { blueprint, plugin, bp }: Candidate,
  blueprints: readonly Blueprint[],
): Promise<AllocationOutcome | undefined> {
  const free = await freeCandidates(engine, lease, { blueprint, plugin, bp }, blueprints);
  const activateAtOnce = !leaseNeedsActivation(plugin, bp);
  for (const r of spreadOver(free, lease.id)) {
    const got = await acquireOn(engine, lease, r, usesLimit(blueprint), activateAtOnce);
    if (got.outcome === 'acquired') {
      await engine.send(...topUpMessage(blueprint, `lease ${lease.id} took idle ${r.id}`));
    }
    if (got.outcome !== 'wait') return got;
  }
  return undefined;
}

/** How many of the oldest free resources concurrent leases spread their first choice over. */
const SPREAD = 4;

/**
 * The free resources in the order this lease tries them. Leases planning at the same moment see
 * the same view, and if all chose the oldest free resource all but one would lose the race for
 * it (a cancelled transaction each, then the next one: 0.36 extra transactions per warm-pool
 * lifecycle in the bench). So each lease starts at its own place (by its id) among the SPREAD
 * oldest active ones: the races become rare, and the pool stays compact (the newest resources
 * stay idle, to be reclaimed). The race itself is still possible and still safe (the lock
 * timeline above).
 */
function spreadOver(free: Resource[], leaseId: string): Resource[] {
  let n = 0;
  while (n < free.length && n < SPREAD && free[n]!.status === 'active') n++;
  if (n < 2) return free;
  let hash = 0;
  for (let i = 0; i < leaseId.length; i++) hash = (hash * 31 + leaseId.charCodeAt(i)) >>> 0;
  const start = hash % n;
  return [...free.slice(start, n), ...free.slice(0, start), ...free.slice(n)];
}

/**
 * Transaction A: acquire `lease` on existing resource `r`. When the resource is active and the
 * blueprint has nothing to prepare per lease, the same transaction also activates the lease
 * (the attach condition then requires the resource to be active). Returns wait on a lost race
 * (the caller tries the next candidate), stale if the lease itself changed.
 */
async function acquireOn(
  engine: Engine,
  lease: Lease,
  r: Resource,
  maxUses: number | undefined,
  activateAtOnce: boolean,
): Promise<AllocationOutcome> {
  let slot = 0;
  if (r.capacity > 1) {
    // Which lease slots are free: one consistent batch read, only for shared resources.
    const held = new Set(
      (await engine.store.getSlotLocks(slotKeys.allLease(r.id, r.capacity))).map((l) => l.key),
    );
    slot = slotKeys.allLease(r.id, r.capacity).findIndex((k) => !held.has(k));
    if (slot < 0) return waitOn([{ kind: 'lost-race', slot: r.id }]);
  }
  const key = slotKeys.lease(r.id, slot);
  const at = engine.iso();
  const direct = activateAtOnce && r.status === 'active';
  const expiresAt = engine.iso((lease.ttlSeconds ?? engine.settings.defaultLeaseTtlSeconds) * 1000);
  const acquired = {
    resourceId: r.id,
    blueprintId: r.blueprintId,
    slotLocks: [key],
    acquiredAt: at,
  };
  const writes: TxWrite[] = [
    {
      op: 'updateLease',
      id: lease.id,
      type: lease.type,
      expect: { status: 'pending', version: lease.version },
      set: direct
        ? {
            status: 'active',
            ...acquired,
            activatedAt: at,
            expiresAt,
            waitReason: null,
            // A held lease is looked at again when its hold runs out (lease-hold.ts).
            sweepAt: nextCheckAt({ expiresAt, heldUntil: lease.heldUntil }) ?? expiresAt,
          }
        : {
            status: 'acquired',
            ...acquired,
            waitReason: null,
            sweepAt: sweepAtWithinDeadline(engine, lease),
          },
    },
    { op: 'takeSlotLock', lock: { key, ownerKind: 'lease', ownerId: lease.id, createdAt: at } },
    {
      op: 'attachLease',
      resourceId: r.id,
      statusIn: direct ? ['active'] : ['pending', 'active'],
      ...(maxUses === undefined ? {} : { maxUses }),
    },
    engine.logWrite(
      lease.id,
      'lease.acquired',
      `acquired on ${r.status} ${r.type} ${r.id} of blueprint '${r.blueprintId}'`,
      { resourceId: r.id, blueprintId: r.blueprintId, slot: key, requestedAt: lease.requestedAt },
    ),
    ...(direct ? [engine.leaseActivatedLog(lease, r, expiresAt)] : []),
  ];
  try {
    await engine.store.transact(writes);
  } catch (err) {
    if (!(err instanceof WriteConflictError)) throw err;
    if (err.failed(writeLabel(writes[0]!), 'condition')) return { outcome: 'stale' };
    return waitOn([lostRaceFor(err, r, writes)]);
  }
  if (direct) await engine.wakeParent(lease, 'is active');
  return {
    outcome: 'acquired',
    allocated: false,
    lease: {
      ...lease,
      ...acquired,
      status: direct ? 'active' : 'acquired',
      version: lease.version + 1,
      ...(direct ? { activatedAt: at, expiresAt } : {}),
    },
    resource: { ...r, leaseCount: r.leaseCount + 1, uses: r.uses + 1 },
  };
}

/**
 * Who beat this lease to `r`, from the items the store returned with the failed conditions (no
 * extra read): the lease now holding the slot, or the resource's new status if it left service.
 */
function lostRaceFor(err: WriteConflictError, r: Resource, writes: TxWrite[]): WaitCause {
  const itemOf = (op: TxWrite['op']) => {
    const write = writes.find((w) => w.op === op);
    return write ? err.failures.find((f) => f.label === writeLabel(write))?.item : undefined;
  };
  const resource = itemOf('attachLease') as Partial<Resource> | undefined;
  if (resource?.status && resource.status !== 'pending' && resource.status !== 'active') {
    return { kind: 'lost-race', slot: r.id, nowStatus: resource.status };
  }
  if (resource?.suspectSince) return { kind: 'lost-race', slot: r.id, nowStatus: 'marked suspect' };
  const owner = itemOf('takeSlotLock')?.ownerId;
  return {
    kind: 'lost-race',
    slot: r.id,
    ...(typeof owner === 'string' ? { winnerLease: owner } : {}),
  };
}

/**
 * Transaction C: release an idle resource (active, no leases). Conditional on leaseCount = 0 on
 * the resource item itself, so it can never race an acquisition. Returns false on a lost race.
 */
export async function reclaimResource(
  engine: Engine,
  r: Resource,
  reason: string,
): Promise<boolean> {
  try {
    await engine.store.transact([
      {
        op: 'updateResource',
        id: r.id,
        type: r.type,
        expect: { status: r.status, version: r.version },
        requireNoLeases: true,
        set: {
          status: 'released',
          releasedAt: engine.iso(),
          endReason: reason,
          sweepAt: engine.iso(engine.settings.strandAfterSeconds * 1000),
        },
      },
      engine.logWrite(r.id, 'resource.reclaimed', reason, { blueprintId: r.blueprintId }),
    ]);
  } catch (err) {
    if (err instanceof WriteConflictError) return false;
    throw err;
  }
  // Its update tears it down and frees its pool slot (which wakes waiting leases).
  await engine.send({ kind: 'resource', id: r.id, reason: 'reclaimed' });
  return true;
}
