/**
 * The Store port on one DynamoDB table (layout: schema.ts). Every state change is a conditional
 * write; a transaction of several TxWrites is one TransactWriteItems, so either every condition
 * held and everything was written, or nothing was.
 *
 * Why the conditions look the way they do (a race between two workers W1, W2 on lease L, v3):
 *
 *   W1: read L (pending, v3) ─ plan ─ transact[updateLease L expect v3, takeSlotLock S] ─ ok (v4)
 *   W2: read L (pending, v3) ─ plan ───────── transact[updateLease L expect v3, ...] ─ cancelled
 *                                   (failures [{ label updateLease:L, condition }]) → re-read, re-plan
 *
 * Slot locks are plain items whose existence is the lock: `attribute_not_exists(PK)` on take,
 * `ownerId = :owner` on free. Two allocations racing for the last slot therefore cannot both
 * commit, and the loser learns which write (the lock) failed, and who holds it.
 *
 * This class only maps the port onto the rooms that do the work: write-plan.ts (TxWrite ->
 * conditional write, pure) on planned-write.ts and index-updates.ts, queries.ts (listing
 * queries, pure), spread-reads.ts (reads of spread index partitions, on spread-pages.ts),
 * expressions.ts (the condition DSL), cursors.ts, sdk-errors.ts (SDK
 * exceptions -> domain errors) and table-io.ts (the SDK calls).
 */
import { randomBytes } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { NotFoundError, WriteConflictError } from '../core/errors.ts';
import type {
  Blueprint,
  BlueprintHealth,
  CommandRecord,
  CommandStatus,
  Lease,
  LeaseStatus,
  LogEvent,
  Resource,
  ResourceStatus,
  SlotLock,
} from '../core/model.ts';
import {
  type Clock,
  type IdempotencyClaim,
  type Page,
  type PageOptions,
  type Store,
  systemClock,
  type TxWrite,
} from '../core/ports.ts';
import { type DynamoCallStats, instrumentDynamoClient } from './clients.ts';
import {
  checkLimit,
  encodeCursor,
  encodeSlotLockCursor,
  type StartKey,
  slotLockPositionFromCursor,
} from './cursors.ts';
import { allOf, hasWaited, ownedBy, statusIs } from './expressions.ts';
import {
  BLUEPRINT_PARTITION,
  blueprintKey,
  commandKey,
  commandStatusListing,
  idempotencyKey,
  leaseKey,
  leaseOwnerPartition,
  leaseStatusListing,
  leaseTypePartition,
  RESOURCE_LISTING_PARTITION,
  recordPartition,
  resourceKey,
  resourcePhase,
  resourceStatusListing,
  resourceTypePartition,
  slotLockKey,
  stripKeys,
} from './keys.ts';
import type { PlanContext } from './planned-write.ts';
import {
  freeResourcesQuery,
  indexQuery,
  listingIndexQuery,
  logsQuery,
  recordsQuery,
  slotLockShardQuery,
  typeIndexQuery,
  waitingAheadQuery,
} from './queries.ts';
import { GSI, LOCK_SHARDS } from './schema.ts';
import { liveResources, liveResourcesPage, statusPage } from './spread-reads.ts';
import { TableIo } from './table-io.ts';
import {
  planCreateBlueprint,
  planSetBlueprintHealth,
  planUpdateBlueprint,
  planWrite,
} from './write-plan.ts';

export interface DynamoStoreOptions {
  client: DynamoDBClient;
  tableName: string;
  /** Source of `now` for updatedAt defaults, TTLs and record keys. @default systemClock */
  clock?: Clock;
}

export class DynamoStore implements Store {
  /** Calls (and, on a bench or test client, consumed capacity) of the underlying client. */
  readonly stats: DynamoCallStats;
  readonly tableName: string;
  private readonly io: TableIo;
  private readonly clock: Clock;

  constructor(options: DynamoStoreOptions) {
    this.tableName = options.tableName;
    this.clock = options.clock ?? systemClock;
    this.stats = instrumentDynamoClient(options.client);
    const doc = DynamoDBDocumentClient.from(options.client, {
      marshallOptions: { removeUndefinedValues: true },
    });
    this.io = new TableIo(doc, options.tableName);
  }

  resetStats(): void {
    this.stats.reset();
  }

  // ---- reads ---------------------------------------------------------------------------------
  // Listings are async even where they only return a query's promise: a bad cursor or limit
  // must reject the promise, not throw at the call.

  getLease(id: string): Promise<Lease | undefined> {
    return this.io.getItem<Lease>(leaseKey(id), `getLease ${id}`);
  }

  getResource(id: string): Promise<Resource | undefined> {
    return this.io.getItem<Resource>(resourceKey(id), `getResource ${id}`);
  }

  async getLeases(ids: string[]): Promise<Lease[]> {
    const items = await this.io.batchGet([...new Set(ids)].map(leaseKey), 'getLeases');
    return items.map((item) => stripKeys<Lease>(item));
  }

  async getResources(ids: string[]): Promise<Resource[]> {
    const items = await this.io.batchGet([...new Set(ids)].map(resourceKey), 'getResources');
    return items.map((item) => stripKeys<Resource>(item));
  }

  getBlueprint(id: string): Promise<Blueprint | undefined> {
    return this.io.getItem<Blueprint>(blueprintKey(id), `getBlueprint ${id}`);
  }

  async listBlueprints(): Promise<Blueprint[]> {
    const items = await this.io.queryAll(
      indexQuery(this.tableName, GSI.byStatus, BLUEPRINT_PARTITION),
      'listBlueprints',
    );
    return items.map((item) => stripKeys<Blueprint>(item));
  }

  /** Every block (schema.ts GSI1) the type's largest pool spans (spread-reads.ts). */
  listLiveResources(resourceType: string, largestPool?: number): Promise<Resource[]> {
    return liveResources<Resource>(this.io, resourceType, largestPool);
  }

  async listFreeResources(
    blueprintId: string,
    spreadBy: string,
    limit: number,
  ): Promise<Resource[]> {
    const { items } = await this.io.queryPage(
      freeResourcesQuery(this.tableName, blueprintId, spreadBy, limit),
      `listFreeResources ${blueprintId}`,
    );
    return items.map((item) => stripKeys<Resource>(item));
  }

  async listResourcesByStatus(
    status: ResourceStatus,
    options: PageOptions & { dueBefore?: string } = {},
  ): Promise<Page<Resource>> {
    return statusPage<Resource>(this.io, resourceStatusListing(status), options);
  }

  async listLeasesByStatus(
    status: LeaseStatus,
    options: PageOptions & { dueBefore?: string; owner?: string } = {},
  ): Promise<Page<Lease>> {
    const { owner, ...rest } = options;
    return statusPage<Lease>(
      this.io,
      leaseStatusListing(status),
      rest,
      owner === undefined ? undefined : ownedBy(owner),
    );
  }

  async listLeasesByType(
    type: string,
    status: LeaseStatus,
    options: PageOptions & { owner?: string; waitedOnly?: boolean } = {},
  ): Promise<Page<Lease>> {
    const filters = [
      ...(options.owner === undefined ? [] : [ownedBy(options.owner)]),
      ...(options.waitedOnly ? [hasWaited] : []),
    ];
    return this.io.queryObjects<Lease>(
      typeIndexQuery(
        this.tableName,
        leaseTypePartition(type, status),
        options,
        filters.length === 0 ? undefined : allOf(...filters),
      ),
      `listLeasesByType ${type} ${status}`,
    );
  }

  async listResourcesByType(
    type: string,
    status: ResourceStatus,
    options: PageOptions = {},
  ): Promise<Page<Resource>> {
    // Pending and active resources share the `live` partition: the status is then a filter.
    // It is spread over pool-slot blocks (spread-reads.ts).
    if (status === 'pending' || status === 'active') {
      return liveResourcesPage<Resource>(this.io, type, status, options);
    }
    return this.io.queryObjects<Resource>(
      typeIndexQuery(
        this.tableName,
        resourceTypePartition(type, status),
        options,
        resourcePhase(status) === status ? undefined : statusIs(status),
      ),
      `listResourcesByType ${type} ${status}`,
    );
  }

  listLeasesOfOwner(owner: string, options: PageOptions = {}): Promise<Page<Lease>> {
    return this.listedPage<Lease>(leaseOwnerPartition(owner), options, 'listLeasesOfOwner');
  }

  listListedResources(options: PageOptions = {}): Promise<Page<Resource>> {
    return this.listedPage<Resource>(RESOURCE_LISTING_PARTITION, options, 'listListedResources');
  }

  /**
   * A page of a listing partition: its keys (the index holds keys only), then the items
   * themselves in one consistent batch read, in the index's order. An item destroyed and
   * deleted in between is left out.
   */
  private async listedPage<T>(
    partition: string,
    options: PageOptions,
    what: string,
  ): Promise<Page<T>> {
    const { items: keys, lastKey } = await this.io.queryPage(
      listingIndexQuery(this.tableName, partition, options),
      what,
    );
    const found = await this.io.batchGet(
      keys.map((k) => ({ PK: String(k.PK), SK: String(k.SK) })),
      what,
    );
    const byKey = new Map(found.map((item) => [`${item.PK}|${item.SK}`, item]));
    const items = keys.flatMap((k) => {
      const item = byKey.get(`${k.PK}|${k.SK}`);
      return item ? [stripKeys<T>(item)] : [];
    });
    return { items, ...(lastKey ? { cursor: encodeCursor(lastKey) } : {}) };
  }

  async countWaitingAhead(type: string, requestedAt: string, leaseId: string): Promise<number> {
    return this.io.count(
      waitingAheadQuery(this.tableName, type, requestedAt, leaseId),
      `countWaitingAhead ${leaseId}`,
    );
  }

  async getSlotLocks(keys: string[]): Promise<SlotLock[]> {
    // BatchGetItem rejects duplicate keys in one request.
    const unique = [...new Set(keys)];
    const items = await this.io.batchGet(unique.map(slotLockKey), 'getSlotLocks');
    return items.map((item) => stripKeys<SlotLock>(item));
  }

  /**
   * Walks the lock shards in order; the cursor remembers the shard and the position in it.
   */
  async listSlotLocks(options: PageOptions = {}): Promise<Page<SlotLock>> {
    const limit = checkLimit(options.limit);
    let { shard, key: startKey } = slotLockPositionFromCursor(options.cursor);
    const items: SlotLock[] = [];
    while (shard < LOCK_SHARDS) {
      const remaining = limit === undefined ? undefined : limit - items.length;
      if (remaining === 0) break;
      const page = await this.io.queryPage(
        slotLockShardQuery(this.tableName, shard, remaining, startKey),
        `listSlotLocks shard ${shard}`,
      );
      items.push(...page.items.map((item) => stripKeys<SlotLock>(item)));
      if (page.lastKey) {
        startKey = page.lastKey as StartKey;
      } else {
        shard += 1;
        startKey = undefined;
      }
    }
    return {
      items,
      ...(shard < LOCK_SHARDS ? { cursor: encodeSlotLockCursor({ shard, key: startKey }) } : {}),
    };
  }

  async listLogs(
    objectId: string,
    options: { after?: string; limit?: number } = {},
  ): Promise<LogEvent[]> {
    const limit = checkLimit(options.limit);
    const events: LogEvent[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.io.queryPage(
        logsQuery(
          this.tableName,
          objectId,
          options.after,
          limit === undefined ? undefined : limit - events.length,
          startKey,
        ),
        `listLogs ${objectId}`,
      );
      events.push(...page.items.map((item) => stripKeys<LogEvent>(item)));
      startKey = page.lastKey;
    } while (startKey && (limit === undefined || events.length < limit));
    return events;
  }

  getCommand(leaseId: string, commandId: string): Promise<CommandRecord | undefined> {
    return this.io.getItem<CommandRecord>(
      commandKey(leaseId, commandId),
      `getCommand ${leaseId}/${commandId}`,
    );
  }

  async listCommandsByStatus(
    status: CommandStatus,
    options: PageOptions & { dueBefore?: string } = {},
  ): Promise<Page<CommandRecord>> {
    return statusPage<CommandRecord>(this.io, commandStatusListing(status), options);
  }

  async getIdempotencyClaim(owner: string, key: string): Promise<IdempotencyClaim | undefined> {
    const item = await this.io.getItem<IdempotencyClaim>(
      idempotencyKey(owner, key),
      `getIdempotencyClaim ${owner}`,
    );
    if (!item || Date.parse(item.expiresAt) <= this.clock.now()) return undefined;
    return item;
  }

  // ---- writes --------------------------------------------------------------------------------

  async transact(writes: TxWrite[]): Promise<void> {
    const ctx = this.planContext();
    await this.io.writeAll(writes.map((write) => planWrite(ctx, write)));
  }

  async createBlueprint(blueprint: Blueprint): Promise<void> {
    await this.io.write(planCreateBlueprint(this.planContext(), blueprint));
  }

  async updateBlueprint(blueprint: Blueprint, expectVersion: number): Promise<void> {
    await this.io.write(planUpdateBlueprint(this.planContext(), blueprint, expectVersion));
  }

  async setBlueprintHealth(id: string, health: BlueprintHealth): Promise<void> {
    try {
      await this.io.write(planSetBlueprintHealth(this.planContext(), id, health));
    } catch (err) {
      if (err instanceof WriteConflictError) throw new NotFoundError('blueprint', id);
      throw err;
    }
  }

  async deleteSlotLockIfOwner(key: string, ownerId: string): Promise<boolean> {
    try {
      await this.io.write(planWrite(this.planContext(), { op: 'freeSlotLock', key, ownerId }));
      return true;
    } catch (err) {
      if (err instanceof WriteConflictError) return false;
      throw err;
    }
  }

  async appendRecord(scope: string, record: Record<string, unknown>): Promise<void> {
    await this.io.write({
      kind: 'Put',
      label: `appendRecord:${scope}`,
      params: {
        TableName: this.tableName,
        Item: {
          PK: recordPartition(scope),
          SK: `${new Date(this.clock.now()).toISOString()}#${randomBytes(6).toString('hex')}`,
          record,
        },
      },
    });
  }

  async listRecords(scope: string): Promise<Array<Record<string, unknown>>> {
    const items = await this.io.queryAll(
      recordsQuery(this.tableName, scope),
      `listRecords ${scope}`,
    );
    return items.map((item) => item.record as Record<string, unknown>);
  }

  private planContext(): PlanContext {
    return { tableName: this.tableName, now: this.clock.now() };
  }
}
