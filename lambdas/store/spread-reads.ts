/**
 * The store's reads of spread index partitions (schema.ts: GSI2 status shards, GSI1 live
 * resource blocks), on top of spread-pages.ts. Kept apart from dynamo-store.ts, which only maps
 * the port onto them.
 */
import type { Page, PageOptions } from '../core/ports.ts';
import { type Fragment, statusIs } from './expressions.ts';
import {
  blocksFor,
  liveResourcePartitions,
  resourceTypePartition,
  statusShardPartitions,
  stripKeys,
} from './keys.ts';
import { indexQuery, statusShardQuery, typeBlockQuery } from './queries.ts';
import { GSI, MAX_POOL_BLOCKS } from './schema.ts';
import { spreadPage } from './spread-pages.ts';
import type { TableIo } from './table-io.ts';

type Item = Record<string, unknown>;

const bySortKey =
  (sortKey: string) =>
  (a: Item, b: Item): number => {
    const x = String(a[sortKey]);
    const y = String(b[sortKey]);
    return x < y ? -1 : x > y ? 1 : 0;
  };

/** A page of a GSI2 status partition (`listing`: shard 0's key) over all its shards, by sweepAt. */
export async function statusPage<T>(
  io: TableIo,
  listing: string,
  options: PageOptions & { dueBefore?: string },
  filter?: Fragment,
): Promise<Page<T>> {
  const page = await spreadPage(
    io,
    {
      listing,
      partitions: statusShardPartitions(listing),
      partitionKey: GSI.byStatus.partitionKey,
      sortKey: GSI.byStatus.sortKey,
      query: (partition) => statusShardQuery(io.tableName, partition, options.dueBefore, filter),
    },
    options,
    `listByStatus ${listing}`,
  );
  return { ...page, items: page.items.map((item) => stripKeys<T>(item)) };
}

/**
 * Every live resource of a type in the blocks its largest pool spans (all a type can have when
 * unknown), in parallel, in the order of one GSI1 partition: one query for pools of up to
 * POOL_BLOCK_SIZE resources.
 */
export async function liveResources<T>(
  io: TableIo,
  type: string,
  largestPool: number | undefined,
): Promise<T[]> {
  const blocks = largestPool === undefined ? MAX_POOL_BLOCKS : blocksFor(largestPool);
  const perBlock = await Promise.all(
    liveResourcePartitions(type, blocks).map((partition) =>
      io.queryAll(indexQuery(io.tableName, GSI.byType, partition), `listLiveResources ${type}`),
    ),
  );
  const items =
    perBlock.length === 1
      ? (perBlock[0] ?? [])
      : perBlock.flat().sort(bySortKey(GSI.byType.sortKey));
  return items.map((item) => stripKeys<T>(item));
}

/**
 * A page of a type's pending or active resources over every block a type can have (a listing
 * does not know the blueprints; it is not the hot path: liveResources is), status as a filter.
 */
export async function liveResourcesPage<T>(
  io: TableIo,
  type: string,
  status: 'pending' | 'active',
  options: PageOptions,
): Promise<Page<T>> {
  const page = await spreadPage(
    io,
    {
      listing: resourceTypePartition(type, status),
      partitions: liveResourcePartitions(type, MAX_POOL_BLOCKS),
      partitionKey: GSI.byType.partitionKey,
      sortKey: GSI.byType.sortKey,
      query: (partition) =>
        typeBlockQuery(io.tableName, partition, options.newestFirst, statusIs(status)),
      descending: options.newestFirst === true,
    },
    options,
    `listResourcesByType ${type} ${status}`,
  );
  return { ...page, items: page.items.map((item) => stripKeys<T>(item)) };
}
