/**
 * Key attributes of every item kind, derived from the layout in schema.ts. Pure functions, no
 * SDK: the store, tests and the local runtime build keys the same way.
 */
import { isFree } from '../core/free.ts';
import {
  type CommandRecord,
  type CommandStatus,
  type Lease,
  type LeaseStatus,
  LIVE_COMMAND_STATUSES,
  type Resource,
  type ResourceStatus,
  type SlotLock,
} from '../core/model.ts';
import {
  FREE_SHARDS,
  GSI,
  LOCK_SHARDS,
  MAX_POOL_BLOCKS,
  POOL_BLOCK_SIZE,
  RETENTION_DAYS,
  STATUS_SHARDS,
  TABLE_KEYS,
  TTL_ATTRIBUTE,
  UNSCHEDULED_SWEEP_KEY,
} from './schema.ts';

export type ItemKey = { PK: string; SK: string };

/** Attributes the store adds to a domain object; stripped again when reading. */
export const KEY_ATTRIBUTES: readonly string[] = [
  TABLE_KEYS.partitionKey,
  TABLE_KEYS.sortKey,
  GSI.byType.partitionKey,
  GSI.byType.sortKey,
  GSI.byStatus.partitionKey,
  GSI.byStatus.sortKey,
  GSI.byOwner.partitionKey,
  GSI.byOwner.sortKey,
  GSI.free.partitionKey,
  GSI.free.sortKey,
  TTL_ATTRIBUTE,
];

export const leaseKey = (id: string): ItemKey => ({ PK: `LEASE#${id}`, SK: 'LEASE' });
export const resourceKey = (id: string): ItemKey => ({ PK: `RES#${id}`, SK: 'RES' });
export const blueprintKey = (id: string): ItemKey => ({ PK: `BP#${id}`, SK: 'BP' });
export const slotLockKey = (key: string): ItemKey => ({ PK: `LOCK#${key}`, SK: 'LOCK' });
export const logPartition = (objectId: string): string => `LOG#${objectId}`;
export const recordPartition = (scope: string): string => `REC#${scope}`;
/** Commands of a lease share its partition: `CMD#<leaseId>` / `<commandId>`. */
export const commandKey = (leaseId: string, commandId: string): ItemKey => ({
  PK: `CMD#${leaseId}`,
  SK: commandId,
});

/**
 * `IDEM#<owner>#<key>` / `IDEM`. `#` and `%` in the owner are escaped, so no owner can end in
 * what looks like another owner's prefix: ("a#b", "c") and ("a", "b#c") are different items.
 * One partition per key (not per owner) keeps a busy CI principal from heating one partition.
 */
export const idempotencyKey = (owner: string, key: string): ItemKey => ({
  PK: `IDEM#${owner.replaceAll('%', '%25').replaceAll('#', '%23')}#${key}`,
  SK: 'IDEM',
});

// ---- GSI1 "byType" ---------------------------------------------------------------------------
export const leaseTypePartition = (type: string, status: LeaseStatus): string =>
  `LEASE#${type}#${status}`;
export const leaseTypeSortKey = (requestedAt: string, id: string): string => `${requestedAt}#${id}`;

/** Pending and active resources share one partition so candidates are one query. */
export function resourcePhase(status: ResourceStatus): string {
  return status === 'pending' || status === 'active' ? 'live' : status;
}
/**
 * `RES#<type>#<phase>`; a live resource in pool-slot block b > 0 gets `#<b>` appended
 * (schema.ts: block 0 keeps the key items had before the index was spread).
 */
export function resourceTypePartition(type: string, status: ResourceStatus, block = 0): string {
  const phase = resourcePhase(status);
  return shardedPartition(`RES#${type}#${phase}`, phase === 'live' ? block : 0);
}

/** `blueprint:<B>:slot:<n>` (core/engine.ts slotKeys.pool): the pool slot's number. */
const POOL_SLOT = /^blueprint:.+:slot:(\d+)$/;

/**
 * The GSI1 block of a resource: its pool slot's number / POOL_BLOCK_SIZE. A resource holds at
 * most one pool slot, taken at creation and kept until it is destroyed, so the block never
 * changes while the resource is live. No pool slot (none of today's plug-ins, but a resource
 * written by hand): block 0.
 */
export function poolBlock(slotLocks: readonly string[] | undefined): number {
  for (const key of slotLocks ?? []) {
    const slot = POOL_SLOT.exec(key);
    if (slot) return Math.min(Math.floor(Number(slot[1]) / POOL_BLOCK_SIZE), MAX_POOL_BLOCKS - 1);
  }
  return 0;
}

/** Blocks a blueprint of `maxResources` pool slots spreads its live resources over. */
export const blocksFor = (maxResources: number): number =>
  Math.min(Math.max(1, Math.ceil(maxResources / POOL_BLOCK_SIZE)), MAX_POOL_BLOCKS);

/** Every GSI1 partition the live resources of a type may be in, given its blocks. */
export function liveResourcePartitions(type: string, blocks: number): string[] {
  const count = Math.min(Math.max(1, Math.floor(blocks)), MAX_POOL_BLOCKS);
  return Array.from({ length: count }, (_, b) => resourceTypePartition(type, 'active', b));
}
export const resourceTypeSortKey = (
  r: Pick<Resource, 'blueprintId' | 'createdAt' | 'id'>,
): string => `${r.blueprintId}#${r.createdAt}#${r.id}`;

// ---- GSI3 "byOwner" (listings) --------------------------------------------------------------
export const leaseOwnerPartition = (owner: string): string => `LEASE#OWNER#${owner}`;
export const RESOURCE_LISTING_PARTITION = 'RES#ALL';
/** Set once at creation, never changed: the listing order (oldest first). */
export const listingSortKey = (createdAt: string, id: string): string => `${createdAt}#${id}`;

// ---- GSI2 "byStatus" -------------------------------------------------------------------------
/**
 * Shard n of an index partition: shard 0 is the partition's name itself, so items written
 * before the partition was spread (which all sit under that name) are read as shard 0, and no
 * backfill is needed; shards 1.. append `#<n>`.
 */
export const shardedPartition = (base: string, shard: number): string =>
  shard === 0 ? base : `${base}#${shard}`;

/** The GSI2 shard of a lease, resource or command: by its id, so it never moves. */
export const statusShard = (id: string): number => hashShard(id, STATUS_SHARDS);

/** A status partition before it is spread: shard 0's key, and the name of its listing. */
export const leaseStatusListing = (status: LeaseStatus): string => `LEASE#${status}`;
export const resourceStatusListing = (status: ResourceStatus): string => `RES#${status}`;
export const commandStatusListing = (status: CommandStatus): string => `CMD#${status}`;
export const leaseStatusPartition = (status: LeaseStatus, id: string): string =>
  shardedPartition(leaseStatusListing(status), statusShard(id));
export const resourceStatusPartition = (status: ResourceStatus, id: string): string =>
  shardedPartition(resourceStatusListing(status), statusShard(id));
export const commandStatusPartition = (status: CommandStatus, id: string): string =>
  shardedPartition(commandStatusListing(status), statusShard(id));
/** Every GSI2 shard of a status partition (`LEASE#pending`, ...), shard 0 first. */
export const statusShardPartitions = (base: string): string[] =>
  Array.from({ length: STATUS_SHARDS }, (_, n) => shardedPartition(base, n));
/** Commands a worker still has to look at (LIVE_COMMAND_STATUSES); ended ones leave the index. */
export const isIndexedCommandStatus = (status: CommandStatus): boolean =>
  (LIVE_COMMAND_STATUSES as readonly CommandStatus[]).includes(status);
export const BLUEPRINT_PARTITION = 'BLUEPRINT';
export const sweepSortKey = (sweepAt: string | null | undefined): string =>
  sweepAt ?? UNSCHEDULED_SWEEP_KEY;

/**
 * Shard of a key among `shards`: FNV-1a of the key, so the same key always lands on the same
 * shard in every process and language version.
 */
export function hashShard(key: string, shards: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % shards;
}

/** Shard of a slot lock in the listing index. */
export const lockShard = (key: string): number => hashShard(key, LOCK_SHARDS);
export const lockShardPartition = (shard: number): string => `LOCK#${shard}`;

// ---- GSI4 "free" (sparse) ------------------------------------------------------------------
/** The free-index partition a resource lives in: by its id, so it never moves. */
export const freePartition = (resourceId: string): string =>
  `FREE#${hashShard(resourceId, FREE_SHARDS)}`;
/** The partition a reader pages: by its own key (a lease id), spreading readers over shards. */
export const freeReadPartition = (spreadBy: string): string =>
  `FREE#${hashShard(spreadBy, FREE_SHARDS)}`;
/** Free resources of one blueprint, oldest first: GSI4SK begins with this. */
export const freeBlueprintPrefix = (blueprintId: string): string => `${blueprintId}#`;

// ---- whole items -----------------------------------------------------------------------------
/** Epoch seconds at which TTL may delete an item that ended (or was written) at `atMs`. */
export function retentionEpoch(atMs: number): number {
  return Math.floor(atMs / 1000) + RETENTION_DAYS * 24 * 60 * 60;
}

export function leaseItem(lease: Lease): Record<string, unknown> {
  const destroyed = lease.status === 'destroyed';
  return {
    ...lease,
    ...leaseKey(lease.id),
    GSI1PK: leaseTypePartition(lease.type, lease.status),
    GSI1SK: leaseTypeSortKey(lease.requestedAt, lease.id),
    ...(destroyed
      ? { [TTL_ATTRIBUTE]: retentionEpoch(Date.parse(lease.destroyedAt ?? lease.updatedAt)) }
      : {
          GSI2PK: leaseStatusPartition(lease.status, lease.id),
          GSI2SK: sweepSortKey(lease.sweepAt),
          GSI3PK: leaseOwnerPartition(lease.owner),
          GSI3SK: listingSortKey(lease.requestedAt, lease.id),
        }),
  };
}

export function resourceItem(resource: Resource): Record<string, unknown> {
  const destroyed = resource.status === 'destroyed';
  return {
    ...resource,
    ...resourceKey(resource.id),
    GSI1PK: resourceTypePartition(resource.type, resource.status, poolBlock(resource.slotLocks)),
    GSI1SK: resourceTypeSortKey(resource),
    ...(destroyed
      ? {
          [TTL_ATTRIBUTE]: retentionEpoch(Date.parse(resource.destroyedAt ?? resource.updatedAt)),
        }
      : {
          GSI2PK: resourceStatusPartition(resource.status, resource.id),
          GSI2SK: sweepSortKey(resource.sweepAt),
          GSI3PK: RESOURCE_LISTING_PARTITION,
          GSI3SK: listingSortKey(resource.createdAt, resource.id),
        }),
    ...(isFree(resource)
      ? {
          [GSI.free.partitionKey]: freePartition(resource.id),
          [GSI.free.sortKey]: resourceTypeSortKey(resource),
        }
      : {}),
  };
}

export function commandItem(command: CommandRecord): Record<string, unknown> {
  return {
    ...command,
    ...commandKey(command.leaseId, command.id),
    [TTL_ATTRIBUTE]: retentionEpoch(Date.parse(command.createdAt)),
    ...(isIndexedCommandStatus(command.status)
      ? {
          GSI2PK: commandStatusPartition(command.status, command.id),
          GSI2SK: sweepSortKey(command.sweepAt),
        }
      : {}),
  };
}

export function slotLockItem(lock: SlotLock): Record<string, unknown> {
  return {
    ...lock,
    ...slotLockKey(lock.key),
    GSI2PK: lockShardPartition(lockShard(lock.key)),
    GSI2SK: `${lock.createdAt}#${lock.key}`,
  };
}

/** Removes the key attributes the store added, returning the domain object. */
export function stripKeys<T>(item: Record<string, unknown>): T {
  const copy: Record<string, unknown> = { ...item };
  for (const attribute of KEY_ATTRIBUTES) delete copy[attribute];
  return copy as T;
}
