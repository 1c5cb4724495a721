/**
 * One page of a listing spread over several index partitions (schema.ts: the shards of a GSI2
 * status, the pool-slot blocks of a type's live resources in GSI1), in the index's sort order
 * as if it were one partition.
 *
 * Each partition is queried for a page of `limit` (in parallel: the partitions are independent,
 * so the page costs one round trip, not one per partition), the pages are merged by sort key,
 * and the first `limit` are kept. The cursor keeps one position per partition (cursors.ts):
 * the last item kept from it, its own LastEvaluatedKey when all of its page was kept (with a
 * filter that may be past the last item), or `done`. An item is therefore listed by exactly one
 * page however the partitions interleave, and a page never runs ahead of a partition that
 * stopped early: nothing sorting after the point where a cut-short partition stopped is kept,
 * since that partition may still hold something sorting before it. Every page moves at least one
 * partition on (the first merged item is always kept; a partition whose page a filter emptied
 * moves to its LastEvaluatedKey), so a caller paging to the end always gets there.
 */
import type { QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import type { Page, PageOptions } from '../core/ports.ts';
import {
  checkLimit,
  encodeShardedCursor,
  type PartitionPosition,
  partitionPositionsFromCursor,
  type StartKey,
} from './cursors.ts';
import { TABLE_KEYS } from './schema.ts';
import type { TableIo } from './table-io.ts';

type Item = Record<string, unknown>;

export interface SpreadListing {
  /** Names the listing in its cursor: the partition's name from before it was spread. */
  listing: string;
  partitions: readonly string[];
  /** The index's key attributes. */
  partitionKey: string;
  sortKey: string;
  /** The query of one partition, without Limit and ExclusiveStartKey. */
  query: (partition: string) => QueryCommandInput;
  /** Newest first (the query scans backwards). */
  descending?: boolean;
}

const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** The start key DynamoDB would give for `item`: table keys plus the index's keys. */
function positionOf(item: Item, listing: SpreadListing): StartKey {
  const key: StartKey = {};
  for (const attribute of [
    TABLE_KEYS.partitionKey,
    TABLE_KEYS.sortKey,
    listing.partitionKey,
    listing.sortKey,
  ]) {
    key[attribute] = String(item[attribute]);
  }
  return key;
}

export async function spreadPage(
  io: TableIo,
  listing: SpreadListing,
  options: Pick<PageOptions, 'limit' | 'cursor'>,
  what: string,
): Promise<Page<Item>> {
  const limit = checkLimit(options.limit);
  const at = partitionPositionsFromCursor(
    options.cursor,
    listing.listing,
    listing.partitionKey,
    listing.partitions,
  );
  const pages = await Promise.all(
    listing.partitions.map(async (partition, i): Promise<{ items: Item[]; lastKey?: Item }> => {
      const position = at[i] ?? 'start';
      if (position === 'done') return { items: [] };
      return io.queryPage(
        {
          ...listing.query(partition),
          Limit: limit,
          ExclusiveStartKey: position === 'start' ? undefined : position,
        },
        what,
      );
    }),
  );

  const sign = listing.descending ? -1 : 1;
  const sortKeyOf = (item: Item): string => String(item[listing.sortKey]);
  // Where the earliest cut-short partition stopped: nothing after it may be kept yet.
  let bound: string | undefined;
  for (const page of pages) {
    if (!page.lastKey) continue;
    const stop = sortKeyOf(page.lastKey);
    if (bound === undefined || sign * compare(stop, bound) < 0) bound = stop;
  }
  const merged = pages
    .flatMap((page, p) => page.items.map((item, n) => ({ item, p, n })))
    .sort((a, b) => sign * compare(sortKeyOf(a.item), sortKeyOf(b.item)) || a.p - b.p || a.n - b.n);
  const kept = pages.map(() => 0);
  const items: Item[] = [];
  for (const entry of merged) {
    if (limit !== undefined && items.length >= limit) break;
    if (bound !== undefined && sign * compare(sortKeyOf(entry.item), bound) > 0) break;
    items.push(entry.item);
    kept[entry.p] = (kept[entry.p] ?? 0) + 1;
  }

  const next = pages.map((page, p): PartitionPosition => {
    const was = at[p] ?? 'start';
    if (was === 'done') return 'done';
    const n = kept[p] ?? 0;
    if (n === page.items.length) return page.lastKey ? positionOf(page.lastKey, listing) : 'done';
    if (n === 0) return was;
    return positionOf(page.items[n - 1] as Item, listing);
  });
  return {
    items,
    ...(next.every((p) => p === 'done')
      ? {}
      : { cursor: encodeShardedCursor(listing.listing, next) }),
  };
}
