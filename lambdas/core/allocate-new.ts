/**
 * Transaction B of the allocator (allocator.ts): allocate a new resource with the lease already
 * acquired on it. One transaction writes the pending resource (attributes set, leaseCount 1),
 * its pool slot lock `blueprint:B:slot:n`, the extra slot locks its plug-in asked for (a static
 * host's `binding:<instance>`), and the lease acquired on it with its lease slot lock.
 *
 * Two kinds of lock can be taken by someone else between planning and the transaction, and
 * they call for different retries:
 *  - the pool slot: the same template fits the next free slot (every free slot it saw);
 *  - one of the template's own locks (an instance bound meanwhile by another lease's
 *    resource): only the plug-in can choose again, so it is asked for a new template, at most
 *    MAX_TEMPLATES times in all; past that the lease waits and says what happened.
 *
 * A warm-pool pre-warm (warm-pool.ts) is the same transaction without the lease: `warm` is
 * set, `lease` is only the request the plug-in decides for (warmRequest: no attributes, no
 * owner), and the resource is written with leaseCount 0 under the same pool slot lock, so a
 * pre-warm and a lease's allocation contend for slots exactly like two leases do.
 */
import type { AllocationOutcome } from './allocator.ts';
import type { BlueprintType, ConfiguredBlueprint, ResourceTemplate } from './blueprint.ts';
import { recordBlueprintFailure } from './blueprint-health.ts';
import { templateMismatch } from './eligibility.ts';
import { type Engine, newId, slotKeys } from './engine.ts';
import { errorMessage, WriteConflictError } from './errors.ts';
import type { Blueprint, Lease, Resource, SlotLock } from './model.ts';
import { type TxWrite, writeLabel } from './ports.ts';
import { sweepAtWithinDeadline } from './wait-deadline.ts';
import { type PoolCount, type WaitCause, waitOn } from './wait-reasons.ts';

/** The plug-in's first choice and at most two more after one of its locks was taken. */
export const MAX_TEMPLATES = 3;

/** Set when the allocation pre-warms a resource for the blueprint's warm pool (no lease). */
export interface WarmAllocation {
  /** The effective minIdle it tops up to, for the logs. */
  minIdle: number;
}

export async function allocateNew(
  engine: Engine,
  lease: Lease,
  blueprint: Blueprint,
  plugin: BlueprintType<unknown>,
  bp: ConfiguredBlueprint<unknown>,
  warm?: WarmAllocation,
  /** The blueprint's live resources as planned (to tell who holds the slots when none is free). */
  planned: Resource[] = [],
): Promise<AllocationOutcome> {
  const { limits } = blueprint;
  // Exact view of the pool: which slots are held (by live *or* still-tearing-down resources).
  const poolKeys = slotKeys.allPool(blueprint.id, limits.maxResources);
  const locks = await engine.store.getSlotLocks(poolKeys);
  const held = new Set(locks.map((l) => l.key));
  const free = poolKeys.filter((k) => !held.has(k));
  if (free.length === 0)
    return waitOn(await whoHoldsThePool(engine, lease, blueprint, locks, planned));
  if (plugin.canAllocateNow) {
    const can = await plugin.canAllocateNow(engine.ctx, bp, lease);
    if (!can.ok) {
      return waitOn([{ kind: 'plugin-refused', blueprintId: blueprint.id, reason: can.reason }]);
    }
  }

  let template = await decide(engine, lease, blueprint, plugin, bp);
  if ('outcome' in template) return template;
  let templates = 1;
  const resourceId = newId('res');
  // Concurrent allocations (a burst's first attempts) start at different free slots instead of
  // all writing the lowest one, where all but one lose the race and try again.
  const start = poolSlotStart(lease.id, free.length);
  // Every free slot it saw, if need be: a lease that loses its races waits for a wake-up, which
  // only a release sends, so a free slot it did not try would be left to nobody until some
  // wait chain came (a burst's first attempt that lost two races and stopped ran the contention
  // bench's pool a host short). Starting apart, concurrent allocations rarely collide, so this
  // costs a transaction per collision, not per free slot.
  const slots = [...free.slice(start), ...free.slice(0, start)];
  const races: WaitCause[] = [];
  while (slots.length > 0) {
    const poolKey = slots[0] as string;
    const written = await writeAllocation(
      engine,
      lease,
      blueprint,
      resourceId,
      poolKey,
      template,
      warm,
    );
    if (written.outcome !== 'conflict') return written;
    if (written.poolSlotTaken) races.push(slotRace(blueprint, poolKey, written.poolSlotOwner));
    // Neither named (a conflict on another item): count it against the slot, as before.
    if (written.poolSlotTaken || written.takenLocks.length === 0) slots.shift();
    if (written.takenLocks.length === 0) continue;
    if (templates >= MAX_TEMPLATES) {
      return waitOn([
        {
          kind: 'locks-taken',
          blueprintId: blueprint.id,
          locks: written.takenLocks,
          choices: templates,
        },
      ]);
    }
    const next = await decide(engine, lease, blueprint, plugin, bp);
    if ('outcome' in next) return next;
    template = next;
    templates++;
  }
  return waitOn(
    races.length > 0
      ? races
      : [{ kind: 'lost-race', slot: `blueprint '${blueprint.id}' pool slots` }],
  );
}

/**
 * Where a lease's allocation starts among `n` free pool slots: its own place, the same on every
 * attempt (a string hash of its id), so concurrent allocations mostly write different slots.
 */
export function poolSlotStart(leaseId: string, n: number): number {
  let h = 0;
  for (let i = 0; i < leaseId.length; i++) h = (h * 31 + leaseId.charCodeAt(i)) >>> 0;
  return n > 0 ? h % n : 0;
}

/** Pool slot `blueprint:B:slot:n` as people read it. */
function slotName(blueprint: Blueprint, key: string): string {
  return `blueprint '${blueprint.id}' slot ${key.slice(key.lastIndexOf(':') + 1)}`;
}

function slotRace(blueprint: Blueprint, key: string, owner: SlotLock | undefined): WaitCause {
  return {
    kind: 'lost-race',
    slot: slotName(blueprint, key),
    ...(owner?.forLeaseId ? { winnerLease: owner.forLeaseId } : {}),
    ...(owner ? { winnerResource: owner.ownerId } : {}),
  };
}

/**
 * Every pool slot is held although planning saw room: say by whom. Holders the plan did not
 * see are read (one batch of reads, only on this path): a pending or active one was allocated
 * by another lease after planning (a lost race, named), a released or broken one is being torn
 * down. "Being torn down" is said only when something is.
 */
async function whoHoldsThePool(
  engine: Engine,
  lease: Lease,
  blueprint: Blueprint,
  locks: SlotLock[],
  planned: Resource[],
): Promise<WaitCause[]> {
  const seen = new Map(planned.map((r) => [r.id, r]));
  const unseen = locks.filter((l) => !seen.has(l.ownerId));
  // One BatchGetItem per 100 holders, not a GetItem each: a full pool of 50 was 50 reads for
  // every lease that found it full (the soak's most frequent call, ~13 per lease).
  const byId = new Map(
    (unseen.length > 0 ? await engine.store.getResources(unseen.map((l) => l.ownerId)) : []).map(
      (r) => [r.id, r],
    ),
  );
  const fetched = unseen.map((l) => byId.get(l.ownerId));
  const count: PoolCount = { booting: 0, leased: 0, unsuitable: 0, tearingDown: 0 };
  const races: WaitCause[] = [];
  for (const lock of locks) {
    const index = unseen.indexOf(lock);
    const r = index < 0 ? seen.get(lock.ownerId) : fetched[index];
    if (!r || (r.status !== 'pending' && r.status !== 'active')) {
      count.tearingDown++; // gone already: its lock is about to be freed
      continue;
    }
    if (index >= 0) races.push(slotRace(blueprint, lock.key, lock));
    if (r.status === 'pending') count.booting++;
    else if (r.leaseCount >= r.capacity || index >= 0) count.leased++;
    else count.unsuitable++;
  }
  return [
    ...races,
    {
      kind: 'at-limit',
      blueprintId: blueprint.id,
      type: lease.type,
      limit: blueprint.limits.maxResources,
      ...count,
    },
  ];
}

/** The plug-in's template, or the wait that its failure means. */
async function pluginTemplate(
  engine: Engine,
  lease: Lease,
  blueprint: Blueprint,
  plugin: BlueprintType<unknown>,
  bp: ConfiguredBlueprint<unknown>,
): Promise<ResourceTemplate | AllocationOutcome> {
  try {
    return await plugin.allocateResource(engine.ctx, bp, lease);
  } catch (err) {
    // The blueprint said it could allocate and then failed: log it on the blueprint, count it
    // for the circuit breaker, and let the lease keep waiting (it is not the lease's fault).
    const message = errorMessage(err);
    await recordBlueprintFailure(engine, blueprint, `allocation failed: ${message}`, lease.id);
    return waitOn([
      { kind: 'allocation-failed', blueprintId: blueprint.id, type: lease.type, message },
    ]);
  }
}

/**
 * The template, unless the resource it makes would not satisfy the lease: then nothing is
 * allocated and the lease waits, naming the attribute (another blueprint, or another template
 * on a later attempt, may fit). A warm pre-warm asks for no attributes, so it always fits.
 */
async function decide(
  engine: Engine,
  lease: Lease,
  blueprint: Blueprint,
  plugin: BlueprintType<unknown>,
  bp: ConfiguredBlueprint<unknown>,
): Promise<ResourceTemplate | AllocationOutcome> {
  const template = await pluginTemplate(engine, lease, blueprint, plugin, bp);
  if ('outcome' in template) return template;
  const why = templateMismatch(lease, { ...blueprint.attributes, ...template.attributes });
  if (why === undefined) return template;
  return waitOn([{ kind: 'plugin-refused', blueprintId: blueprint.id, reason: why }]);
}

type WriteResult =
  | Extract<AllocationOutcome, { outcome: 'acquired' | 'stale' }>
  | {
      outcome: 'conflict';
      /** The pool slot was taken meanwhile. */
      poolSlotTaken: boolean;
      /** Who holds the pool slot now, as the store returned it with the failed condition. */
      poolSlotOwner?: SlotLock;
      /** The template's own slot locks that were taken meanwhile. */
      takenLocks: string[];
    };

/** The allocation transaction in one pool slot, with one template. */
async function writeAllocation(
  engine: Engine,
  lease: Lease,
  blueprint: Blueprint,
  resourceId: string,
  poolKey: string,
  template: ResourceTemplate,
  warm: WarmAllocation | undefined,
): Promise<WriteResult> {
  const { limits } = blueprint;
  const attached = warm ? 0 : 1;
  const at = engine.iso();
  const leaseKey = slotKeys.lease(resourceId, 0);
  const ownLocks = template.slotLocks ?? [];
  const resource: Resource = {
    id: resourceId,
    blueprintId: blueprint.id,
    type: lease.type,
    attributes: { ...blueprint.attributes, ...template.attributes },
    status: 'pending',
    version: 0,
    slotLocks: [poolKey, ...ownLocks],
    capacity: limits.leasesPerResource,
    leaseCount: attached,
    uses: attached,
    createdAt: at,
    updatedAt: at,
    setupDeadline: engine.iso(limits.setupTimeoutSeconds * 1000),
    data: template.data ?? {},
    sweepAt: engine.iso(engine.settings.strandAfterSeconds * 1000),
    createdFor: lease.id,
  };
  const takeLock = (key: string): TxWrite => ({
    op: 'takeSlotLock',
    lock: {
      key,
      ownerKind: 'resource',
      ownerId: resourceId,
      createdAt: at,
      // Names the lease this resource was made for, so a lease that loses the slot says to whom.
      ...(key === poolKey ? { forLeaseId: lease.id } : {}),
    },
  });
  const leaseWrites: TxWrite[] = [
    {
      op: 'updateLease',
      id: lease.id,
      type: lease.type,
      expect: { status: 'pending', version: lease.version },
      set: {
        status: 'acquired',
        resourceId,
        blueprintId: blueprint.id,
        slotLocks: [leaseKey],
        acquiredAt: at,
        waitReason: null,
        sweepAt: sweepAtWithinDeadline(engine, lease),
      },
    },
    {
      op: 'takeSlotLock',
      lock: { key: leaseKey, ownerKind: 'lease', ownerId: lease.id, createdAt: at },
    },
    engine.logWrite(
      lease.id,
      'lease.acquired',
      `acquired on new ${lease.type} ${resourceId} of blueprint '${blueprint.id}' (allocated for this lease)`,
      { resourceId, blueprintId: blueprint.id, slot: leaseKey, requestedAt: lease.requestedAt },
    ),
    engine.logWrite(
      resourceId,
      'resource.allocated',
      `allocated by blueprint '${blueprint.id}' in ${poolKey} for lease ${lease.id}`,
      { leaseId: lease.id, slot: poolKey },
    ),
  ];
  const warmWrites = (minIdle: number): TxWrite[] => [
    engine.logWrite(
      resourceId,
      'resource.allocated',
      `pre-warmed (minIdle ${minIdle}) by blueprint '${blueprint.id}' in ${poolKey}; no lease yet`,
      { slot: poolKey, minIdle },
    ),
    engine.logWrite(
      blueprint.id,
      'blueprint.pre-warmed',
      `pre-warmed (minIdle ${minIdle}) ${lease.type} ${resourceId} in ${poolKey}`,
      { resourceId, slot: poolKey, minIdle },
    ),
  ];
  const writes: TxWrite[] = [
    { op: 'createResource', resource },
    ...resource.slotLocks.map(takeLock),
    ...(warm ? warmWrites(warm.minIdle) : leaseWrites),
  ];
  try {
    await engine.store.transact(writes);
  } catch (err) {
    if (!(err instanceof WriteConflictError)) throw err;
    if (!warm && err.failed(writeLabel(leaseWrites[0] as TxWrite), 'condition'))
      return { outcome: 'stale' };
    const poolLabel = writeLabel(takeLock(poolKey));
    const owner = err.failures.find((f) => f.label === poolLabel)?.item as SlotLock | undefined;
    return {
      outcome: 'conflict',
      poolSlotTaken: err.failed(poolLabel),
      ...(owner ? { poolSlotOwner: owner } : {}),
      takenLocks: ownLocks.filter((key) => err.failed(writeLabel(takeLock(key)))),
    };
  }
  return {
    outcome: 'acquired',
    allocated: true,
    lease: {
      ...lease,
      status: 'acquired',
      version: lease.version + 1,
      resourceId,
      blueprintId: blueprint.id,
      slotLocks: [leaseKey],
      acquiredAt: at,
    },
    resource,
  };
}
