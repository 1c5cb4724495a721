/**
 * Paged listings of leases, resources and blueprints. What a page guarantees (openapi.yaml):
 *  - a holder's leases and every resource are paged on keys that never change while the
 *    object lives (the byOwner index), each item read in its current state: no object appears
 *    twice across the pages of one listing, however its status changes meanwhile, and the
 *    holder's listing reads only the holder's leases;
 *  - an admin's listing of everyone's leases walks the status partitions in lifecycle order:
 *    each lease at most once per page (its latest version), but one that changes status
 *    between pages can show up again on a later page;
 *  - destroyed objects (`status=destroyed`, with `type`) come from the type index.
 * A page may hold fewer than `limit` items and still have a cursor: follow it until there is
 * none.
 */
import { type Caller, requireAdmin } from './access.ts';
import type { Engine } from './engine.ts';
import { ValidationError } from './errors.ts';
import type { Blueprint, Lease, LeaseStatus, Resource, ResourceStatus } from './model.ts';
import type { Page, PageOptions } from './ports.ts';

export interface ListQuery<S extends string> {
  status?: S;
  type?: string;
  /** Items per page, 1..MAX_PAGE_SIZE. @default DEFAULT_PAGE_SIZE */
  limit?: number;
  cursor?: string;
  /** With `type`: newest first instead of oldest first (e.g. recently ended leases). */
  order?: 'oldest' | 'newest';
}

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 100;
/** Index queries one page may take (a filtered listing can read many items to find a few). */
const MAX_QUERIES_PER_PAGE = 10;

/** What a listing without `status` walks, in lifecycle order. Destroyed ones need asking for. */
export const LISTED_LEASE_STATUSES: readonly LeaseStatus[] = [
  'pending',
  'acquired',
  'active',
  'released',
  'broken',
];
export const LISTED_RESOURCE_STATUSES: readonly ResourceStatus[] = [
  'pending',
  'active',
  'released',
  'broken',
];

/**
 * Leases the caller may see (non-admins: their own; admins: everyone's), one status after
 * another (LISTED_LEASE_STATUSES unless `status` is given). Within a status, leases come in
 * request order when `type` is given, otherwise in the order the sweep will look at them.
 * Destroyed leases leave the status index, so `status=destroyed` needs `type` (they stay in
 * the type index until they expire). A page may hold fewer than `limit` items and still have
 * a cursor: follow it until there is none.
 */
export async function listLeases(
  engine: Engine,
  query: ListQuery<LeaseStatus>,
  caller: Caller,
): Promise<Page<Lease>> {
  const owner = caller.admin ? undefined : caller.principal;
  const { type } = query;
  if (query.status === 'destroyed' && type === undefined) {
    throw new ValidationError(
      'listing destroyed leases needs type=<resource type> (destroyed leases are indexed by type only)',
    );
  }
  if (owner !== undefined && query.status !== 'destroyed') {
    return walkListing(
      query,
      (o) => engine.store.listLeasesOfOwner(owner, o),
      (l) => listed(l, query, LISTED_LEASE_STATUSES),
    );
  }
  return walkStatuses(query.status ? [query.status] : LISTED_LEASE_STATUSES, query, (s, o) =>
    type === undefined
      ? engine.store.listLeasesByStatus(s, { ...o, ...(owner ? { owner } : {}) })
      : engine.store.listLeasesByType(type, s, { ...o, ...(owner ? { owner } : {}) }),
  );
}

/** Whether a listed object belongs on the page: the query's status (or a listed one) and type. */
function listed<S extends string>(
  item: { status: S; type: string },
  query: ListQuery<S>,
  statuses: readonly S[],
): boolean {
  return (
    (query.status ? item.status === query.status : statuses.includes(item.status)) &&
    (query.type === undefined || item.type === query.type)
  );
}

/** Resources (admin), like listLeases; by blueprint and age when `type` is given. */
export async function listResources(
  engine: Engine,
  query: ListQuery<ResourceStatus>,
  caller: Caller,
): Promise<Page<Resource>> {
  requireAdmin(caller, 'listing resources');
  const { type } = query;
  if (query.status === 'destroyed' && type === undefined) {
    throw new ValidationError(
      'listing destroyed resources needs type=<resource type> (destroyed resources are indexed by type only)',
    );
  }
  if (query.status === 'destroyed') {
    return walkStatuses(['destroyed'], query, (s, o) =>
      engine.store.listResourcesByType(type as string, s, o),
    );
  }
  return walkListing(
    query,
    (o) => engine.store.listListedResources(o),
    (r) => listed(r, query, LISTED_RESOURCE_STATUSES),
  );
}

/** Every blueprint, by id. */
export async function listBlueprints(engine: Engine): Promise<Blueprint[]> {
  const blueprints = await engine.store.listBlueprints();
  return blueprints.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function pageLimit(query: ListQuery<string>): number {
  const limit = query.limit ?? DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
    throw new ValidationError(
      `limit must be a whole number from 1 to ${MAX_PAGE_SIZE}, got ${limit}`,
    );
  }
  return limit;
}

/**
 * One page of a listing partition (byOwner index), keeping the items `keep` accepts. Each
 * store page is consumed whole, so the store's cursor is exactly where the next page starts.
 */
async function walkListing<S extends string, T>(
  query: ListQuery<S>,
  fetch: (options: PageOptions) => Promise<Page<T>>,
  keep: (item: T) => boolean,
): Promise<Page<T>> {
  const limit = pageLimit(query);
  const items: T[] = [];
  let cursor = query.cursor;
  for (let queries = 0; items.length < limit && queries < MAX_QUERIES_PER_PAGE; queries++) {
    const page = await fetch({
      limit: limit - items.length,
      ...(query.order === 'newest' ? { newestFirst: true } : {}),
      ...(cursor ? { cursor } : {}),
    });
    items.push(...page.items.filter(keep));
    cursor = page.cursor;
    if (!cursor) return { items };
  }
  return { items, ...(cursor ? { cursor } : {}) };
}

/**
 * One page over several index partitions (one per status). The cursor names the status the
 * next page starts in and the store's cursor within it.
 */
async function walkStatuses<S extends string, T>(
  statuses: readonly S[],
  query: ListQuery<S>,
  fetch: (status: S, options: PageOptions) => Promise<Page<T>>,
): Promise<Page<T>> {
  const limit = pageLimit(query);
  let index = 0;
  let inner: string | undefined;
  if (query.cursor !== undefined) {
    const position = decodeListCursor(query.cursor);
    index = statuses.indexOf(position.status as S);
    if (index < 0) {
      throw new ValidationError(
        'page cursor does not belong to this listing (were the filters changed?); list again without it',
      );
    }
    inner = position.cursor;
  }
  const items: T[] = [];
  for (
    let queries = 0;
    index < statuses.length && items.length < limit && queries < MAX_QUERIES_PER_PAGE;
    queries++
  ) {
    const page = await fetch(statuses[index] as S, {
      limit: limit - items.length,
      ...(query.order === 'newest' ? { newestFirst: true } : {}),
      ...(inner ? { cursor: inner } : {}),
    });
    items.push(...page.items);
    inner = page.cursor;
    if (!inner) index++;
  }
  latestOnce(items);
  if (index >= statuses.length) return { items };
  return { items, cursor: encodeListCursor({ status: statuses[index] as S, cursor: inner }) };
}

/** Within one page, an object read twice (it changed status mid-walk) stays once: its latest. */
function latestOnce<T>(items: T[]): void {
  const latest = new Map<string, T>();
  for (const item of items as Array<T & { id?: string; version?: number }>) {
    if (item.id === undefined) continue;
    const seen = latest.get(item.id) as { version?: number } | undefined;
    if (!seen || (item.version ?? 0) > (seen.version ?? 0)) latest.set(item.id, item);
  }
  const kept = items.filter((item) => {
    const id = (item as { id?: string }).id;
    return id === undefined || latest.get(id) === item;
  });
  items.splice(0, items.length, ...kept);
}

function encodeListCursor(position: { status: string; cursor?: string }): string {
  return Buffer.from(JSON.stringify(position)).toString('base64url');
}

function decodeListCursor(cursor: string): { status: string; cursor?: string } {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (
      typeof value === 'object' &&
      value !== null &&
      typeof (value as { status?: unknown }).status === 'string' &&
      ['string', 'undefined'].includes(typeof (value as { cursor?: unknown }).cursor)
    ) {
      return value as { status: string; cursor?: string };
    }
  } catch {
    // reported below
  }
  throw new ValidationError('invalid page cursor; list again without it');
}
