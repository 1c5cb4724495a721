/**
 * Page cursors: opaque to callers (base64url JSON of DynamoDB's LastEvaluatedKey), checked on
 * the way back in so a cursor from one listing cannot steer a query of another.
 */
import { ValidationError } from '../core/errors.ts';
import { LOCK_SHARDS } from './schema.ts';

export type StartKey = Record<string, string>;

export function encodeCursor(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function decodeCursor(cursor: string): unknown {
  try {
    return JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch (err) {
    throw new ValidationError(`invalid page cursor '${cursor}'`, { cause: err });
  }
}

function isStartKey(value: unknown): value is StartKey {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.values(value).every((v) => typeof v === 'string')
  );
}

/** Decodes a cursor made for the index partition `partitionKey = partition`. */
export function startKeyFromCursor(
  cursor: string | undefined,
  partitionKey: string,
  partition: string,
): StartKey | undefined {
  if (cursor === undefined) return undefined;
  const key = decodeCursor(cursor);
  if (!isStartKey(key) || key[partitionKey] !== partition) {
    throw new ValidationError(`page cursor does not belong to this listing (${partition})`);
  }
  return key;
}

/**
 * Where a listing over several partitions (the shards of one status, the blocks of one type's
 * live resources) stopped, per partition: not started, done, or after a key. One position per
 * partition, not one shared key, because each partition is paged by its own query.
 */
export type PartitionPosition = 'start' | 'done' | StartKey;

interface ShardedCursor {
  listing: string;
  at: PartitionPosition[];
}

export const encodeShardedCursor = (listing: string, at: PartitionPosition[]): string =>
  encodeCursor({ listing, at } satisfies ShardedCursor);

/**
 * Decodes a cursor of the listing named `listing` over `partitions` (index partition key
 * attribute `partitionKey`). A cursor from before the partitions were spread (a bare start
 * key) is refused with what to do: it cannot say where the other partitions stood.
 */
export function partitionPositionsFromCursor(
  cursor: string | undefined,
  listing: string,
  partitionKey: string,
  partitions: readonly string[],
): PartitionPosition[] {
  if (cursor === undefined) return partitions.map(() => 'start');
  const decoded = decodeCursor(cursor) as Partial<ShardedCursor> | null;
  if (decoded === null || typeof decoded !== 'object' || decoded.listing === undefined) {
    throw new ValidationError(
      `page cursor does not belong to this listing (${listing}); a cursor from before this listing was spread over shards no longer works: list again without a cursor`,
    );
  }
  const at = decoded.at;
  const fits =
    decoded.listing === listing &&
    Array.isArray(at) &&
    at.length === partitions.length &&
    at.every(
      (p, i) =>
        p === 'start' || p === 'done' || (isStartKey(p) && p[partitionKey] === partitions[i]),
    );
  if (!fits) throw new ValidationError(`page cursor does not belong to this listing (${listing})`);
  return at as PartitionPosition[];
}

/** Where the slot lock listing stopped: a shard, and the position in it (absent: its start). */
export interface SlotLockPosition {
  shard: number;
  key?: StartKey;
}

export const encodeSlotLockCursor = (position: SlotLockPosition): string => encodeCursor(position);

export function slotLockPositionFromCursor(cursor: string | undefined): SlotLockPosition {
  if (cursor === undefined) return { shard: 0 };
  const decoded = decodeCursor(cursor) as { shard?: unknown; key?: unknown };
  if (
    typeof decoded?.shard !== 'number' ||
    !Number.isInteger(decoded.shard) ||
    decoded.shard < 0 ||
    decoded.shard >= LOCK_SHARDS ||
    (decoded.key !== undefined && !isStartKey(decoded.key))
  ) {
    throw new ValidationError('page cursor does not belong to the slot lock listing');
  }
  return decoded.key === undefined
    ? { shard: decoded.shard }
    : { shard: decoded.shard, key: decoded.key as StartKey };
}

export function checkLimit(limit: number | undefined): number | undefined {
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) {
    throw new ValidationError(`limit must be a positive integer, got ${limit}`);
  }
  return limit;
}
