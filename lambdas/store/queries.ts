/**
 * The queries behind the store's listings (layout: schema.ts). Pure: each builds the
 * QueryCommandInput for one access pattern, checking the page options it is given (a cursor
 * must come from the same listing; a limit must be a positive integer).
 */
import type { QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import type { PageOptions } from '../core/ports.ts';
import { checkLimit, type StartKey, startKeyFromCursor } from './cursors.ts';
import { type Fragment, withFilter } from './expressions.ts';
import {
  freeBlueprintPrefix,
  freeReadPartition,
  leaseTypePartition,
  leaseTypeSortKey,
  lockShardPartition,
  logPartition,
  recordPartition,
} from './keys.ts';
import { GSI, TABLE_KEYS } from './schema.ts';

type Index = (typeof GSI)[keyof typeof GSI];

/** Every item of one index partition. */
export function indexQuery(tableName: string, index: Index, partition: string): QueryCommandInput {
  return {
    TableName: tableName,
    IndexName: index.name,
    KeyConditionExpression: '#pk = :pk',
    ExpressionAttributeNames: { '#pk': index.partitionKey },
    ExpressionAttributeValues: { ':pk': partition },
  };
}

/**
 * One shard of a "byStatus" partition in sweepAt order; `dueBefore` bounds sweepAt (inclusive).
 * Paged over all the shards by spread-pages.ts.
 */
export function statusShardQuery(
  tableName: string,
  partition: string,
  dueBefore: string | undefined,
  filter?: Fragment,
): QueryCommandInput {
  const base = indexQuery(tableName, GSI.byStatus, partition);
  const query: QueryCommandInput =
    dueBefore === undefined
      ? base
      : {
          ...base,
          KeyConditionExpression: '#pk = :pk AND #sk <= :dueBefore',
          ExpressionAttributeNames: {
            ...base.ExpressionAttributeNames,
            '#sk': GSI.byStatus.sortKey,
          },
          ExpressionAttributeValues: {
            ...base.ExpressionAttributeValues,
            ':dueBefore': dueBefore,
          },
        };
  return withFilter({ ...query, ScanIndexForward: true }, filter);
}

/** One block of a "byType" partition, oldest first unless `newestFirst`; paged by spread-pages.ts. */
export function typeBlockQuery(
  tableName: string,
  partition: string,
  newestFirst: boolean | undefined,
  filter?: Fragment,
): QueryCommandInput {
  return withFilter(
    { ...indexQuery(tableName, GSI.byType, partition), ScanIndexForward: !newestFirst },
    filter,
  );
}

/** A page of a "byType" partition, oldest first unless `newestFirst`. */
export function typeIndexQuery(
  tableName: string,
  partition: string,
  options: PageOptions,
  filter?: Fragment,
): QueryCommandInput {
  return withFilter(
    {
      ...indexQuery(tableName, GSI.byType, partition),
      ScanIndexForward: !options.newestFirst,
      Limit: checkLimit(options.limit),
      ExclusiveStartKey: startKeyFromCursor(options.cursor, GSI.byType.partitionKey, partition),
    },
    filter,
  );
}

/** A page of keys of a "byOwner" (listing) partition, oldest first unless `newestFirst`. */
export function listingIndexQuery(
  tableName: string,
  partition: string,
  options: PageOptions,
): QueryCommandInput {
  return {
    ...indexQuery(tableName, GSI.byOwner, partition),
    ScanIndexForward: !options.newestFirst,
    Limit: checkLimit(options.limit),
    ExclusiveStartKey: startKeyFromCursor(options.cursor, GSI.byOwner.partitionKey, partition),
  };
}

/** Pending leases of a type requested before (requestedAt, leaseId): the queue ahead of it. */
export function waitingAheadQuery(
  tableName: string,
  type: string,
  requestedAt: string,
  leaseId: string,
): QueryCommandInput {
  return {
    TableName: tableName,
    IndexName: GSI.byType.name,
    KeyConditionExpression: '#pk = :pk AND #sk < :sk',
    ExpressionAttributeNames: { '#pk': GSI.byType.partitionKey, '#sk': GSI.byType.sortKey },
    ExpressionAttributeValues: {
      ':pk': leaseTypePartition(type, 'pending'),
      ':sk': leaseTypeSortKey(requestedAt, leaseId),
    },
  };
}

/**
 * The oldest `limit` free resources of a blueprint in the free-index shard `spreadBy` falls
 * in (schema.ts GSI4). `begins_with` is part of the key condition, so Limit counts only this
 * blueprint's entries.
 */
export function freeResourcesQuery(
  tableName: string,
  blueprintId: string,
  spreadBy: string,
  limit: number,
): QueryCommandInput {
  return {
    TableName: tableName,
    IndexName: GSI.free.name,
    KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :blueprint)',
    ExpressionAttributeNames: { '#pk': GSI.free.partitionKey, '#sk': GSI.free.sortKey },
    ExpressionAttributeValues: {
      ':pk': freeReadPartition(spreadBy),
      ':blueprint': freeBlueprintPrefix(blueprintId),
    },
    ScanIndexForward: true,
    Limit: checkLimit(limit),
  };
}

/** Slot locks of one listing shard, from `startKey`. */
export function slotLockShardQuery(
  tableName: string,
  shard: number,
  limit: number | undefined,
  startKey: StartKey | undefined,
): QueryCommandInput {
  return {
    ...indexQuery(tableName, GSI.byStatus, lockShardPartition(shard)),
    Limit: limit,
    ExclusiveStartKey: startKey,
  };
}

/** Log events of an object after `after` (exclusive), oldest first, consistent. */
export function logsQuery(
  tableName: string,
  objectId: string,
  after: string | undefined,
  limit: number | undefined,
  startKey: Record<string, unknown> | undefined,
): QueryCommandInput {
  return {
    TableName: tableName,
    KeyConditionExpression: after === undefined ? '#PK = :pk' : '#PK = :pk AND #SK > :after',
    ExpressionAttributeNames: {
      '#PK': TABLE_KEYS.partitionKey,
      ...(after === undefined ? {} : { '#SK': TABLE_KEYS.sortKey }),
    },
    ExpressionAttributeValues: {
      ':pk': logPartition(objectId),
      ...(after === undefined ? {} : { ':after': after }),
    },
    ConsistentRead: true,
    ScanIndexForward: true,
    Limit: limit,
    ExclusiveStartKey: startKey,
  };
}

/** A blueprint record scope, in append order, consistent. */
export function recordsQuery(tableName: string, scope: string): QueryCommandInput {
  return {
    TableName: tableName,
    KeyConditionExpression: '#PK = :pk',
    ExpressionAttributeNames: { '#PK': TABLE_KEYS.partitionKey },
    ExpressionAttributeValues: { ':pk': recordPartition(scope) },
    ConsistentRead: true,
    ScanIndexForward: true,
  };
}
