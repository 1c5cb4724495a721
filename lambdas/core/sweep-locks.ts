/**
 * The sweep's orphaned-lock step, bounded and resumable. A slot lock is orphaned when its owner
 * is gone, destroyed, or no longer lists the lock; only such a lock is deleted, conditionally on
 * its owner (deleteSlotLockIfOwner), so a lock taken over meanwhile is never freed.
 *
 * Cost: one listing page of locks (100) and one batch read of their owners per page (≤ 100
 * keys per BatchGetItem, consistent), not one GetItem per owner: at 5,000 live leases that is
 * ~100 calls, not ~10,000. Bounded: the step stops at its deadline after the page in hand and
 * stores the listing cursor; the next sweep resumes there, so a run never passes its time
 * limit however many locks there are, and every lock is looked at within a few runs.
 *
 * The cursor is kept in the store's append-only records, one scope per ten minutes
 * (`sweep:slot-locks:<bucket>`), as the inventory step keeps its state: a sweep reads the last
 * two small scopes, and appends only when the cursor changes. A lost cursor only restarts the
 * walk from the first lock.
 */
import type { Engine } from './engine.ts';
import { ValidationError } from './errors.ts';
import type { Lease, Resource, SlotLock } from './model.ts';

/** A freshly written lock is never judged orphaned: its owner's write may still be in flight. */
export const LOCK_GRACE_MS = 60_000;

const PAGE = 100;
const CURSOR_BUCKET_MS = 10 * 60_000;
const scope = (bucket: number) => `sweep:slot-locks:${bucket}`;

export interface LockSweepResult {
  /** Locks looked at in this run. */
  checked: number;
  freed: number;
  /** Whether the walk reached the last lock (else it resumes from its cursor next run). */
  complete: boolean;
  /** Where this run started: a cursor from an earlier run, or the first lock. */
  resumed: boolean;
}

export async function freeOrphanedLocks(
  engine: Engine,
  /** Engine-clock time after which no further page is started (one page always is). */
  deadlineMs: number,
): Promise<LockSweepResult> {
  const start = await storedCursor(engine);
  let cursor = start;
  const result: LockSweepResult = { checked: 0, freed: 0, complete: false, resumed: !!start };
  const cutoff = engine.now() - LOCK_GRACE_MS;
  do {
    const page = await firstOrNextPage(engine, cursor, cursor === start);
    const judged = page.items.filter((l) => Date.parse(l.createdAt) <= cutoff);
    result.checked += page.items.length;
    const owners = await loadOwners(engine, judged);
    for (const lock of judged) {
      const owner = owners.get(lock.ownerId);
      const orphaned =
        !owner || owner.status === 'destroyed' || !owner.slotLocks.includes(lock.key);
      if (orphaned && (await freeLock(engine, lock, owner))) result.freed++;
    }
    cursor = page.cursor;
  } while (cursor && engine.now() < deadlineMs);
  result.complete = !cursor;
  if ((cursor ?? '') !== (start ?? '')) await storeCursor(engine, cursor ?? '');
  return result;
}

/**
 * A page of locks from `cursor`. A stored cursor the store refuses (written by an older version)
 * restarts the walk from the first lock rather than failing every sweep from now on.
 */
async function firstOrNextPage(engine: Engine, cursor: string | undefined, stored: boolean) {
  try {
    return await engine.store.listSlotLocks({ limit: PAGE, ...(cursor ? { cursor } : {}) });
  } catch (err) {
    if (!(stored && cursor && err instanceof ValidationError)) throw err;
    return engine.store.listSlotLocks({ limit: PAGE });
  }
}

/** Every owner of these locks, by id: two batch reads (leases, resources) per page at most. */
async function loadOwners(
  engine: Engine,
  locks: SlotLock[],
): Promise<Map<string, Lease | Resource>> {
  const ids = (kind: SlotLock['ownerKind']) => [
    ...new Set(locks.filter((l) => l.ownerKind === kind).map((l) => l.ownerId)),
  ];
  const leaseIds = ids('lease');
  const resourceIds = ids('resource');
  const [leases, resources] = await Promise.all([
    leaseIds.length > 0 ? engine.store.getLeases(leaseIds) : [],
    resourceIds.length > 0 ? engine.store.getResources(resourceIds) : [],
  ]);
  return new Map<string, Lease | Resource>([...leases, ...resources].map((o) => [o.id, o]));
}

async function freeLock(
  engine: Engine,
  lock: SlotLock,
  owner: Lease | Resource | undefined,
): Promise<boolean> {
  if (!(await engine.store.deleteSlotLockIfOwner(lock.key, lock.ownerId))) return false;
  await engine.store.transact([
    engine.logWrite(
      lock.ownerId,
      'sweep.lock-freed',
      `sweep freed orphaned slot lock ${lock.key} (owner ${owner ? owner.status : 'missing'})`,
      { key: lock.key },
    ),
  ]);
  return true;
}

interface Kept {
  cursor?: string;
  /** Counts up per record, so the newest is known even when two share a timestamp. */
  n: number;
}

async function lastKept(engine: Engine): Promise<Kept | undefined> {
  const bucket = Math.floor(engine.now() / CURSOR_BUCKET_MS);
  const kept = [
    ...(await engine.store.listRecords(scope(bucket - 1))),
    ...(await engine.store.listRecords(scope(bucket))),
  ].sort((a, b) => Number(a.n) - Number(b.n));
  const last = kept[kept.length - 1];
  return last
    ? {
        n: Number(last.n) || 0,
        ...(typeof last.cursor === 'string' ? { cursor: last.cursor } : {}),
      }
    : undefined;
}

async function storedCursor(engine: Engine): Promise<string | undefined> {
  const last = (await lastKept(engine))?.cursor;
  return last ? last : undefined;
}

/** `''` means "start from the first lock" (a finished walk). */
async function storeCursor(engine: Engine, cursor: string): Promise<void> {
  const n = ((await lastKept(engine))?.n ?? 0) + 1;
  const bucket = Math.floor(engine.now() / CURSOR_BUCKET_MS);
  await engine.store.appendRecord(scope(bucket), { atMs: engine.now(), n, cursor });
}
