/**
 * The write planner: TxWrite -> one conditional DynamoDB operation (Put, Update, Delete or
 * ConditionCheck parameters; planned-write.ts). Pure: the table name and `now` come in,
 * parameters come out, and table-io.ts sends them alone or as one TransactWriteItems.
 *
 * Each write's condition is composed from the named fragments of expressions.ts exactly as its
 * contract in ports.ts reads; every conditional write asks DynamoDB for the item that failed
 * its condition (ALL_OLD), so a conflict can say what stood in its way.
 */
import type {
  Blueprint,
  BlueprintHealth,
  Lease,
  LeaseStatus,
  Resource,
  ResourceStatus,
} from '../core/model.ts';
import { type Expect, type NullablePatch, type TxWrite, writeLabel } from '../core/ports.ts';
import {
  allOf,
  attemptIs,
  type Fragment,
  hasFreeCapacity,
  hasNoLeases,
  heldBy,
  isHeld,
  itemExists,
  itemIsNewOrExpired,
  notSuspect,
  pollsAre,
  statusIn,
  statusIs,
  UpdateExpression,
  usedFewerThan,
  versionIs,
  waitSeqIs,
  wakeable,
} from './expressions.ts';
import {
  moveCommandIndexKeys,
  moveFreeIndexKeys,
  moveVersionedIndexKeys,
} from './index-updates.ts';
import {
  BLUEPRINT_PARTITION,
  blueprintKey,
  commandItem,
  commandKey,
  type ItemKey,
  idempotencyKey,
  KEY_ATTRIBUTES,
  leaseItem,
  leaseKey,
  leaseStatusPartition,
  leaseTypePartition,
  logPartition,
  resourceItem,
  resourceKey,
  resourcePhase,
  resourceStatusPartition,
  resourceTypePartition,
  retentionEpoch,
  slotLockItem,
  slotLockKey,
  sweepSortKey,
} from './keys.ts';
import {
  assertPatchable,
  conditionParams,
  isoAt,
  type PlanContext,
  type PlannedWrite,
  putNew,
  updateWrite,
} from './planned-write.ts';
import { GSI, TTL_ATTRIBUTE } from './schema.ts';

// ---- versioned objects: leases and resources ---------------------------------------------------

/**
 * What differs between a lease and a resource as far as their writes go: how they are keyed,
 * indexed and stored, and which fields a transition may not patch. Everything else (the
 * status/version condition, version + 1, index keys following the status) is one shape.
 */
interface VersionedKind<T, S extends string> {
  key: (id: string) => ItemKey;
  item: (object: T) => Record<string, unknown>;
  /** The GSI1 partition a status change moves it to; undefined: it stays (index-updates.ts). */
  typePartition: (type: string, from: S, to: S) => string | undefined;
  statusPartition: (status: S, id: string) => string;
  /** Patch fields that are identity, index keys or owned by another writer. */
  fixed: ReadonlySet<string>;
}

const LEASES: VersionedKind<Lease, LeaseStatus> = {
  key: leaseKey,
  item: leaseItem,
  typePartition: (type, _from, to) => leaseTypePartition(type, to),
  statusPartition: leaseStatusPartition,
  fixed: new Set([...KEY_ATTRIBUTES, 'id', 'type', 'version', 'owner', 'requestedAt']),
};

const RESOURCES: VersionedKind<Resource, ResourceStatus> = {
  key: resourceKey,
  item: resourceItem,
  // Only a creation enters the `live` phase (transitions.ts), and the live block comes from
  // the pool slot, which a transition does not know: within the phase the key stays; leaving
  // it goes to the phase's one partition (only `live` is spread over blocks).
  typePartition: (type, from, to) =>
    resourcePhase(from) === resourcePhase(to) ? undefined : resourceTypePartition(type, to),
  statusPartition: resourceStatusPartition,
  // leaseCount and uses belong to attachLease/detachLease, never to a transition.
  fixed: new Set([
    ...KEY_ATTRIBUTES,
    'id',
    'type',
    'blueprintId',
    'version',
    'leaseCount',
    'uses',
    'createdAt',
  ]),
};

const COMMAND_FIXED: ReadonlySet<string> = new Set([
  ...KEY_ATTRIBUTES,
  'id',
  'leaseId',
  'owner',
  'createdAt',
]);

/** The fields of a transition's patch the planner itself looks at. */
type TransitionPatch<S extends string> = NullablePatch<{
  status: S;
  sweepAt: string;
  destroyedAt: string;
  updatedAt: string;
}>;

interface Transition<S extends string> {
  op: string;
  id: string;
  type: string;
  expect: Expect<S>;
  set: TransitionPatch<S>;
}

/** Create a lease or resource: the whole item, only if its id is new. */
function planCreate<T, S extends string>(
  ctx: PlanContext,
  label: string,
  kind: VersionedKind<T, S>,
  object: T,
): PlannedWrite {
  return putNew(ctx, label, kind.item(object));
}

/**
 * Transition a lease or resource: condition status and version as expected (plus `extra`),
 * the patch, version + 1, updatedAt, and index keys moved with the new status and sweepAt.
 */
function planTransition<T, S extends string>(
  ctx: PlanContext,
  label: string,
  kind: VersionedKind<T, S>,
  write: Transition<S>,
  extra: { conditions: Fragment[]; detail: string; free?: boolean } = {
    conditions: [],
    detail: '',
  },
): PlannedWrite {
  const { id, type, expect, set } = write;
  assertPatchable(set, kind.fixed, write.op);
  const update = new UpdateExpression().patch(set).increment('version', 1);
  if (set.updatedAt === undefined) update.set('updatedAt', isoAt(ctx.now));
  const newStatus = set.status ?? undefined;
  const status = newStatus ?? expect.status;
  moveVersionedIndexKeys(update, {
    status,
    statusChanged: newStatus !== undefined,
    typePartition: kind.typePartition(type, expect.status, status),
    statusPartition: kind.statusPartition(status, id),
    sweepAt: set.sweepAt,
    endedAt: set.destroyedAt ?? undefined,
    now: ctx.now,
  });
  moveFreeIndexKeys(update, id, extra.free);
  return updateWrite(
    ctx,
    label,
    kind.key(id),
    update,
    allOf(statusIs(expect.status), versionIs(expect.version), ...extra.conditions),
    `expect ${expect.status} v${expect.version}${extra.detail}`,
  );
}

// ---- the free-candidate index (schema.ts GSI4) ------------------------------------------------

function withFreeIndexKeys(
  update: UpdateExpression,
  resourceId: string,
  free: boolean | undefined,
): UpdateExpression {
  moveFreeIndexKeys(update, resourceId, free);
  return update;
}

const LIVE_RESOURCE: readonly ResourceStatus[] = ['pending', 'active'];

/**
 * What a resource transition does to its free-index entry: leaving service, a suspicion or a
 * retirement takes it out; a suspicion cleared puts it back (stale if it holds a lease: the
 * reader filters); anything else (pending -> active, a sweepAt) leaves it as it is.
 */
function transitionFrees(write: Extract<TxWrite, { op: 'updateResource' }>): boolean | undefined {
  const { set } = write;
  const status = set.status ?? write.expect.status;
  if (!LIVE_RESOURCE.includes(status)) return set.status ? false : undefined;
  if (typeof set.suspectSince === 'string') return false;
  if (set.data && (set.data as Record<string, unknown>).retiring !== undefined) return false;
  if (set.suspectSince === null) return true;
  return undefined;
}

/** A detach puts the resource back in the index when it may be free afterwards (ports.ts). */
function detachMayFree(write: Extract<TxWrite, { op: 'detachLease' }>): boolean {
  if (write.mayFree) return true;
  return write.statusIn?.every((s) => LIVE_RESOURCE.includes(s)) ?? false;
}

// ---- the planner ----------------------------------------------------------------------------

export function planWrite(ctx: PlanContext, write: TxWrite): PlannedWrite {
  const label = writeLabel(write);
  switch (write.op) {
    case 'createLease':
      return planCreate(ctx, label, LEASES, write.lease);
    case 'createResource':
      return planCreate(ctx, label, RESOURCES, write.resource);
    case 'updateLease':
      return planTransition(ctx, label, LEASES, write);
    case 'updateResource':
      return planTransition(ctx, label, RESOURCES, write, {
        ...(write.requireNoLeases
          ? { conditions: [hasNoLeases], detail: ', no leases' }
          : { conditions: [], detail: '' }),
        free: transitionFrees(write),
      });
    case 'markLeaseWaiting': {
      const { id, expectWaitSeq, set } = write;
      const update = new UpdateExpression()
        .increment('waitSeq', 1)
        .set('checkedAt', set.checkedAt)
        .set('sweepAt', set.sweepAt)
        .set(GSI.byStatus.sortKey, sweepSortKey(set.sweepAt));
      if (set.waitReason !== undefined) update.set('waitReason', set.waitReason);
      if (set.waitingFor !== undefined) update.set('waitingFor', set.waitingFor);
      return updateWrite(
        ctx,
        label,
        leaseKey(id),
        update,
        allOf(statusIs('pending'), waitSeqIs(expectWaitSeq)),
        `expect pending waitSeq ${expectWaitSeq}`,
      );
    }
    case 'claimWake':
      return updateWrite(
        ctx,
        label,
        leaseKey(write.id),
        new UpdateExpression().copy('wokenSeq', 'waitSeq'),
        allOf(statusIs('pending'), wakeable),
        'expect pending, waited, not yet woken for this wait',
      );
    case 'renewLeaseHold':
      return updateWrite(
        ctx,
        label,
        leaseKey(write.id),
        write.drop
          ? new UpdateExpression().remove('holdSeconds').remove('heldUntil')
          : new UpdateExpression().set('heldUntil', write.heldUntil),
        allOf(statusIn(write.statusIn), isHeld),
        `status in [${write.statusIn.join(', ')}], held`,
      );
    case 'attachLease': {
      const conditions = [statusIn(write.statusIn), notSuspect, hasFreeCapacity];
      if (write.maxUses !== undefined) conditions.push(usedFewerThan(write.maxUses));
      return updateWrite(
        ctx,
        label,
        resourceKey(write.resourceId),
        // A lease on it: no longer free, exactly (leaseCount >= 1 after this write).
        withFreeIndexKeys(
          new UpdateExpression().add('leaseCount', 1).add('uses', 1),
          write.resourceId,
          false,
        ),
        allOf(...conditions),
        `status in [${write.statusIn.join(', ')}], free capacity`,
      );
    }
    case 'checkResource': {
      const condition = statusIn(write.statusIn);
      return {
        kind: 'ConditionCheck',
        label,
        detail: `status in [${write.statusIn.join(', ')}]`,
        params: {
          TableName: ctx.tableName,
          Key: resourceKey(write.resourceId),
          ...conditionParams(condition),
        },
        holds: (item) => write.statusIn.includes(item.status as ResourceStatus),
      };
    }
    case 'detachLease':
      return updateWrite(
        ctx,
        label,
        resourceKey(write.resourceId),
        withFreeIndexKeys(
          new UpdateExpression().add('leaseCount', -1).set('lastDetachedAt', write.at),
          write.resourceId,
          detachMayFree(write) ? true : undefined,
        ),
        write.statusIn ? allOf(itemExists, statusIn(write.statusIn)) : itemExists,
        ...(write.statusIn ? [`status in [${write.statusIn.join(', ')}]`] : []),
      );
    case 'takeSlotLock':
      return putNew(
        ctx,
        label,
        slotLockItem(write.lock),
        `for ${write.lock.ownerKind} ${write.lock.ownerId}`,
      );
    case 'freeSlotLock':
      return {
        kind: 'Delete',
        label,
        detail: `held by ${write.ownerId}`,
        params: {
          TableName: ctx.tableName,
          Key: slotLockKey(write.key),
          ...conditionParams(heldBy(write.ownerId)),
        },
      };
    case 'appendLog': {
      const { event } = write;
      const at = Date.parse(event.at);
      return {
        kind: 'Put',
        label,
        detail: event.type,
        params: {
          TableName: ctx.tableName,
          Item: {
            ...event,
            PK: logPartition(event.objectId),
            SK: event.seq,
            [TTL_ATTRIBUTE]: retentionEpoch(Number.isNaN(at) ? ctx.now : at),
          },
        },
      };
    }
    case 'createCommand':
      return putNew(ctx, label, commandItem(write.command));
    case 'updateCommand': {
      const { leaseId, id, expect, set } = write;
      assertPatchable(set, COMMAND_FIXED, write.op);
      const update = new UpdateExpression().patch(set);
      if (set.updatedAt === undefined) update.set('updatedAt', isoAt(ctx.now));
      moveCommandIndexKeys(update, id, set.status ?? undefined, expect.status, set.sweepAt);
      const conditions = [statusIs(expect.status), attemptIs(expect.attempt)];
      if (expect.polls !== undefined) conditions.push(pollsAre(expect.polls));
      return updateWrite(
        ctx,
        label,
        commandKey(leaseId, id),
        update,
        allOf(...conditions),
        `expect ${expect.status} attempt ${expect.attempt}${expect.polls === undefined ? '' : ` polls ${expect.polls}`}`,
      );
    }
    case 'takeIdempotencyKey': {
      const { claim } = write;
      return {
        kind: 'Put',
        label,
        detail: `owner ${claim.owner}`,
        params: {
          TableName: ctx.tableName,
          Item: {
            ...claim,
            ...idempotencyKey(claim.owner, claim.key),
            [TTL_ATTRIBUTE]: Math.ceil(Date.parse(claim.expiresAt) / 1000),
          },
          ...conditionParams(itemIsNewOrExpired(Math.floor(ctx.now / 1000))),
        },
      };
    }
    default: {
      const unknown: never = write;
      throw new Error(`unknown transaction write ${JSON.stringify(unknown)}`);
    }
  }
}

// ---- blueprints (written alone, outside transactions) ---------------------------------------

/**
 * Every Blueprint field updateBlueprint replaces (all but id, version and health). Listed as a
 * `satisfies` record so a new Blueprint field fails to compile here until it is classified.
 */
const REPLACED_BLUEPRINT_FIELDS = Object.keys({
  type: true,
  resourceType: true,
  description: true,
  attributes: true,
  state: true,
  limits: true,
  config: true,
  createdAt: true,
  updatedAt: true,
} satisfies Record<Exclude<keyof Blueprint, 'id' | 'version' | 'health'>, true>);

export function planCreateBlueprint(ctx: PlanContext, blueprint: Blueprint): PlannedWrite {
  return putNew(ctx, `createBlueprint:${blueprint.id}`, {
    ...blueprint,
    ...blueprintKey(blueprint.id),
    GSI2PK: BLUEPRINT_PARTITION,
    GSI2SK: blueprint.id,
  });
}

/** Replace a blueprint's definition; condition version = expectVersion; health untouched. */
export function planUpdateBlueprint(
  ctx: PlanContext,
  blueprint: Blueprint,
  expectVersion: number,
): PlannedWrite {
  const update = new UpdateExpression();
  const fields = blueprint as unknown as Record<string, unknown>;
  for (const field of REPLACED_BLUEPRINT_FIELDS) {
    // A replace: fields absent from the new definition are removed.
    update.patch({ [field]: fields[field] ?? null });
  }
  update.set('version', expectVersion + 1);
  return updateWrite(
    ctx,
    `updateBlueprint:${blueprint.id}`,
    blueprintKey(blueprint.id),
    update,
    versionIs(expectVersion),
    `expect v${expectVersion}`,
  );
}

export function planSetBlueprintHealth(
  ctx: PlanContext,
  id: string,
  health: BlueprintHealth,
): PlannedWrite {
  return updateWrite(
    ctx,
    `setBlueprintHealth:${id}`,
    blueprintKey(id),
    new UpdateExpression().set('health', health),
    itemExists,
  );
}
