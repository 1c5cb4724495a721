/**
 * The single-table layout, in one place: the DynamoDB adapter, the test setup, the local
 * runtime and the CDK stack all read it from here. This file imports nothing from the AWS SDK
 * so the CDK app can use it too.
 *
 * Items (PK / SK):
 *   blueprint      BP#<id>             / BP
 *   resource       RES#<id>            / RES
 *   lease          LEASE#<id>          / LEASE
 *   slot lock      LOCK#<key>          / LOCK
 *   log event      LOG#<objectId>      / <at>#<random>        (expires via TTL)
 *   record         REC#<scope>         / <at>#<random>        (blueprint append-only records)
 *   command        CMD#<leaseId>       / <commandId>          (expires via TTL)
 *   idempotency    IDEM#<owner>#<key>  / IDEM                 (expires via TTL)
 *
 * Indexes (all projections ALL):
 *   GSI1 "byType"   — leases:    GSI1PK = LEASE#<type>#<status>      GSI1SK = <requestedAt>#<id>
 *                     resources: GSI1PK = RES#<type>#<phase>[#<block>] GSI1SK = <blueprintId>#<createdAt>#<id>
 *                       (phase = `live` for pending and active, else the status; only `live`
 *                       is spread: block = pool slot / POOL_BLOCK_SIZE, block 0 without suffix)
 *                     Serves "candidate resources of type T" in one query per block (one for
 *                     pools of up to 32: callers pass the largest maxResources, ports.ts) and
 *                     "waiting leases of type T, oldest first".
 *   GSI2 "byStatus" — leases:    GSI2PK = LEASE#<status>[#<shard>]   GSI2SK = <sweepAt>
 *                     resources: GSI2PK = RES#<status>[#<shard>]     GSI2SK = <sweepAt>
 *                     blueprints: GSI2PK = BLUEPRINT                 GSI2SK = <id>
 *                     slot locks: GSI2PK = LOCK#<shard 0..3>          GSI2SK = <createdAt>#<key>
 *                     commands:  GSI2PK = CMD#<status>[#<shard>]     GSI2SK = <sweepAt>
 *                       (queued, running and cancelling only: ended commands leave the index)
 *                       (shard = hash of the id % STATUS_SHARDS; shard 0 without suffix)
 *                     Serves the sweep ("what is due") and listings, one query per shard in
 *                     parallel, merged by sweepAt (spread-pages.ts). Destroyed objects have
 *                     no GSI2 keys (the sweep never needs them); they expire via TTL.
 *
 * Spreading the hot partitions (issue 14 item 4). DynamoDB serves at most 1,000 WCU/s and
 * 3,000 RCU/s per partition, for a GSI's partitions as for the table's, and a table write is
 * throttled when an index it writes to is (AWS docs: "Key range throughput exceeded"). An index
 * projecting ALL takes a write whenever any attribute of an item in it changes.
 *  - GSI2: nearly every lease update moves its sweepAt, so one `LEASE#pending` / `LEASE#active`
 *    took every lease write of every type. Spread over STATUS_SHARDS by id: 4 x 1,000 WCU/s.
 *  - GSI1 resources: every live resource write of a type (leaseCount on each attach and
 *    detach) landed in `RES#<type>#live`. A block holds the resources of pool slots
 *    32b..32b+31 of each blueprint of the type, so its writes are bounded by those resources'
 *    own (a few per lease), whatever the pool's size.
 *  - GSI1 leases stay one partition per type and status: wake-ups and the queue position
 *    (countWaitingAhead) read `LEASE#<type>#pending` oldest first, and spreading it would cost
 *    them one query per shard on the request path. The arithmetic says it can wait: a pending
 *    lease writes that partition about 2 + w times (its creation, each of its w waits, leaving
 *    for acquired/active), each 1 WCU for an item under 1 KB, so one type reaches 1,000 WCU/s
 *    only at ~300 new leases per second with one wait each (the benches run ~3/s). Same for
 *    `LEASE#<type>#active` (activation, renewals, release).
 * Upgrade: shard and block 0 keep the keys items had before they were spread, so every item
 * written before is still found there (readers always read shard and block 0). A status change
 * recomputes GSI2PK, so an older item moves to its own shard then; a live resource keeps its
 * block-0 GSI1 key until it leaves the live phase. No backfill and no migration. A status-listing page cursor from before is refused with a
 * message saying to list again from the start (the sweep keeps no such cursor). Lowering a
 * blueprint's maxResources leaves resources above the new maximum in blocks its callers no
 * longer read until they are reclaimed (the sweep finds them through GSI2; blueprint-admin
 * reads the larger of the old and new maximum).
 *   GSI3 "byOwner"  — keys only — leases:    GSI3PK = LEASE#OWNER#<owner>   GSI3SK = <requestedAt>#<id>
 *                                 resources: GSI3PK = RES#ALL             GSI3SK = <createdAt>#<id>
 *                     Serves listings (a holder's own leases; every resource). Its keys never
 *                     change while the object lives, so paging it cannot return an object
 *                     twice however often the object changes; pages read the items themselves
 *                     (consistent BatchGet), so they show current state. Keys only: status
 *                     changes never write to this index. Destroyed objects leave it.
 *   GSI4 "free"     — sparse — resources: GSI4PK = FREE#<shard 0..3>
 *                                          GSI4SK = <blueprintId>#<createdAt>#<id>
 *                       (shard = hash of the resource id; the sort key is a copy of GSI1SK)
 *                     Only resources that may take a lease now: pending or active, no lease,
 *                     not suspect, not retiring (index-updates.ts keeps the keys in step in the
 *                     same write that changes those facts). Serves the allocator's warm path: a
 *                     bounded page of one shard instead of every live resource of the type, so
 *                     an acquisition's read does not grow with the pool (issue 14 item 4).
 *                     Entries may be stale (a shared resource that a detach left with a lease,
 *                     a used-up one): the reader filters. A free resource left out (one from
 *                     before the index, until its next detach) is found by the fallback: the
 *                     reader plans from GSI1 when the page has nothing it can use.
 */

export const TABLE_KEYS = {
  partitionKey: 'PK',
  sortKey: 'SK',
} as const;

export const GSI = {
  byType: { name: 'GSI1', partitionKey: 'GSI1PK', sortKey: 'GSI1SK' },
  byStatus: { name: 'GSI2', partitionKey: 'GSI2PK', sortKey: 'GSI2SK' },
  byOwner: { name: 'GSI3', partitionKey: 'GSI3PK', sortKey: 'GSI3SK' },
  free: { name: 'GSI4', partitionKey: 'GSI4PK', sortKey: 'GSI4SK' },
} as const;

/** What each index projects: listings read items themselves, so byOwner holds keys only. */
export const GSI_PROJECTION: Record<keyof typeof GSI, 'ALL' | 'KEYS_ONLY'> = {
  byType: 'ALL',
  byStatus: 'ALL',
  byOwner: 'KEYS_ONLY',
  // ALL, not INCLUDE: what bounds the read is the page size (FREE_PAGE in
  // core/free-candidates.ts), not the projection, and a whole item is what transaction A, the
  // activation after it and a plug-in's canAcquire (which may read `data`) use. A narrower
  // projection would need a second read per candidate.
  free: 'ALL',
};

/** Epoch-seconds attribute DynamoDB's TTL deletes items by (logs, destroyed objects). */
export const TTL_ATTRIBUTE = 'expiresAtEpoch';

/** How long logs and destroyed leases/resources are kept. */
export const RETENTION_DAYS = 14;

/** Number of shards the slot-lock listing index is spread over (avoids one hot partition). */
export const LOCK_SHARDS = 4;

/**
 * Shards of the free-resource index. Every attach and detach writes to it, for every type, so
 * its writes are spread; a reader pages one shard (chosen by the lease), so more shards would
 * mean more misses on a small pool (a miss costs one more query: the fallback to GSI1).
 */
export const FREE_SHARDS = 4;

/**
 * Shards of each GSI2 status partition (`LEASE#<status>`, `RES#<status>`, `CMD#<status>`), by
 * a hash of the object's id. Nearly every lease update moves its sweepAt, so without shards
 * every lease write of every type lands in `LEASE#pending` / `LEASE#active`. The readers (the
 * sweep, listings by status) are not the hot path: they query every shard, in parallel.
 */
export const STATUS_SHARDS = 4;

/**
 * Pool slots per GSI1 block of live resources: a resource in pool slot n of its blueprint is in
 * block floor(n / POOL_BLOCK_SIZE). A blueprint of at most this many resources has one block,
 * so `listLiveResources` stays one query for it.
 */
export const POOL_BLOCK_SIZE = 32;

/** Blocks a type can have: maxResources is at most 1000 (core/blueprint-schema.ts). */
export const MAX_POOL_BLOCKS = Math.ceil(1000 / POOL_BLOCK_SIZE);

/** Every key attribute is a string. */
export const KEY_ATTRIBUTE_TYPE = 'S' as const;

export const DEFAULT_TABLE_NAME = 'drydock';

/**
 * GSI2SK of a lease, resource or command without a sweepAt. An index key must be present for the item to
 * be listed by status at all, and `~` sorts after every ISO timestamp, so an unscheduled object
 * is listed last and never matches a `dueBefore` bound.
 */
export const UNSCHEDULED_SWEEP_KEY = '~';
