/**
 * Ports: what the core needs from the outside world. Adapters (lambdas/store, lambdas/queue)
 * implement them; the core imports no AWS SDK.
 */
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
  UpdateMessage,
  WaitingFor,
} from './model.ts';

/** Expected current state of an object for a conditional transition. */
export interface Expect<S extends string> {
  status: S;
  version: number;
}

export type LeasePatch = Partial<Omit<Lease, 'id' | 'type' | 'version' | 'owner' | 'requestedAt'>>;
export type ResourcePatch = Partial<
  Omit<Resource, 'id' | 'type' | 'blueprintId' | 'version' | 'leaseCount' | 'uses' | 'createdAt'>
>;

/**
 * One write of an atomic transaction. Every write carries its own condition; the store turns
 * a list of them into one DynamoDB TransactWriteItems (or a single conditional write when the
 * list has one element). If any condition fails, nothing is written and the store throws
 * WriteConflictError naming the failed writes by their `writeLabel`.
 */
export type TxWrite =
  /** Create a lease; fails if the id exists. */
  | { op: 'createLease'; lease: Lease }
  /**
   * Transition a lease: condition status = expect.status AND version = expect.version;
   * sets the patch, version + 1 and updatedAt. `type` is needed to maintain index keys.
   * A `null` patch value removes the attribute.
   */
  | {
      op: 'updateLease';
      id: string;
      type: string;
      expect: Expect<LeaseStatus>;
      set: NullablePatch<LeasePatch>;
    }
  /**
   * A waiting lease's bookkeeping (not a transition; version unchanged):
   * condition status = pending AND waitSeq = expectWaitSeq; sets waitSeq + 1 and the fields.
   */
  | {
      op: 'markLeaseWaiting';
      id: string;
      type: string;
      expectWaitSeq: number;
      set: { waitReason?: string; waitingFor?: WaitingFor; checkedAt: string; sweepAt: string };
    }
  /**
   * A freed slot's wake-up handed to a waiting lease (wake.ts), once per wait: condition status
   * = pending AND waitSeq > 0 AND (no wokenSeq OR wokenSeq < waitSeq), the item's own values (a
   * wait recorded since the index was read does not fail the claim); sets wokenSeq = waitSeq.
   */
  | { op: 'claimWake'; id: string }
  /**
   * A held lease's renewal (not a transition; version unchanged, so it never races the
   * worker's writes): condition status in `statusIn` AND the lease is held (holdSeconds set);
   * sets heldUntil, or with `drop` removes the hold (the lease then lives to its TTL). Only
   * the lease update acts on it (lease-hold.ts).
   */
  | {
      op: 'renewLeaseHold';
      id: string;
      statusIn: LeaseStatus[];
      heldUntil: string;
      drop?: boolean;
    }
  /** Create a resource; fails if the id exists. */
  | { op: 'createResource'; resource: Resource }
  /**
   * Transition a resource: condition status/version as expected (and `leaseCount = 0` when
   * requireNoLeases). Never touches leaseCount/uses (those belong to attach/detach).
   */
  | {
      op: 'updateResource';
      id: string;
      type: string;
      expect: Expect<ResourceStatus>;
      set: NullablePatch<ResourcePatch>;
      requireNoLeases?: boolean;
    }
  /**
   * Attach a lease to a resource: leaseCount + 1, uses + 1; condition status IN statusIn,
   * the resource is not suspect, leaseCount < capacity, and (if given) uses < maxUses.
   */
  | { op: 'attachLease'; resourceId: string; statusIn: ResourceStatus[]; maxUses?: number }
  /** Condition only (writes nothing): the resource's status is one of statusIn. */
  | { op: 'checkResource'; resourceId: string; statusIn: ResourceStatus[] }
  /**
   * Detach a lease: leaseCount - 1, lastDetachedAt = at; condition the resource exists. Always
   * in the same transaction as the lease's own conditional transition, so it cannot repeat.
   */
  | {
      op: 'detachLease';
      resourceId: string;
      at: string;
      /**
       * Only while the resource is in one of these statuses (a release that finishes at once,
       * release-at-once.ts, must not detach from a resource that left service: that one's own
       * update has to hear of it).
       */
      statusIn?: ResourceStatus[];
      /**
       * The resource may be free after this detach (free.ts `mayBeFreedByDetach` of the resource
       * as read): it goes back into the free-candidate index. Implied by a statusIn of live
       * statuses only. Absent: the index is left as it is.
       */
      mayFree?: boolean;
    }
  /** Take a slot lock; fails if the key is held by anyone. */
  | { op: 'takeSlotLock'; lock: SlotLock }
  /** Free a slot lock; condition: held by ownerId (a missing lock is also a failure). */
  | { op: 'freeSlotLock'; key: string; ownerId: string }
  /** Append a log event (unconditional). */
  | { op: 'appendLog'; event: LogEvent }
  /**
   * Create a command record; fails if the id exists. A queued, running or cancelling command
   * is in the status index (listCommandsByStatus) at its sweepAt.
   */
  | { op: 'createCommand'; command: CommandRecord }
  /**
   * Move a command on: condition status = expect.status AND attempt = expect.attempt (AND,
   * when expect.polls is given, polls = expect.polls, a missing polls counting as 0); sets the
   * patch and updatedAt. A `null` patch value removes the attribute.
   *
   * Status index: a new status of queued, running or cancelling moves the command to that
   * status's partition; any other status takes it out of the index. `set.sweepAt` re-files it
   * by the new time (`null`: unscheduled, listed last and never due). Without `set.sweepAt` the
   * command keeps its place, so pass sweepAt whenever a change of status should also change
   * when the command is due.
   */
  | {
      op: 'updateCommand';
      leaseId: string;
      id: string;
      /** `polls`, when given, must equal the item's (a missing attribute counts as 0). */
      expect: { status: CommandStatus; attempt: number; polls?: number };
      set: NullablePatch<CommandPatch>;
    }
  /**
   * Claim an Idempotency-Key for a lease request: fails if the (owner, key) pair is held and has
   * not expired. Written in the same transaction as the lease it names.
   */
  | { op: 'takeIdempotencyKey'; claim: IdempotencyClaim };

/**
 * A write's stable, short name: `<op>:<the item it writes>`. Unique within a transaction
 * (DynamoDB refuses two writes to one item there), so WriteConflictError names failed writes
 * by it and callers ask `err.failed(writeLabel(write))` rather than counting positions.
 */
export function writeLabel(write: TxWrite): string {
  switch (write.op) {
    case 'createLease':
      return `createLease:${write.lease.id}`;
    case 'createResource':
      return `createResource:${write.resource.id}`;
    case 'updateLease':
    case 'markLeaseWaiting':
    case 'claimWake':
    case 'renewLeaseHold':
    case 'updateResource':
      return `${write.op}:${write.id}`;
    case 'attachLease':
    case 'checkResource':
    case 'detachLease':
      return `${write.op}:${write.resourceId}`;
    case 'takeSlotLock':
      return `takeSlotLock:${write.lock.key}`;
    case 'freeSlotLock':
      return `freeSlotLock:${write.key}`;
    case 'appendLog':
      return `appendLog:${write.event.objectId}/${write.event.seq}`;
    case 'createCommand':
      return `createCommand:${write.command.leaseId}/${write.command.id}`;
    case 'updateCommand':
      return `updateCommand:${write.leaseId}/${write.id}`;
    case 'takeIdempotencyKey':
      return `takeIdempotencyKey:${write.claim.leaseId}`;
  }
}

export type CommandPatch = Partial<Omit<CommandRecord, 'id' | 'leaseId' | 'owner' | 'createdAt'>>;

/** A lease request's Idempotency-Key, as stored: who used it, for what, until when. */
export interface IdempotencyClaim {
  owner: string;
  key: string;
  leaseId: string;
  /** Digest of the request; a retry with the same key must send the same request. */
  requestHash: string;
  /** The key may be used again (for a new lease) after this. */
  expiresAt: string;
}

export type NullablePatch<T> = { [K in keyof T]?: T[K] | null };

export interface Page<T> {
  items: T[];
  /** Opaque cursor for the next page; absent on the last page. */
  cursor?: string;
}

export interface PageOptions {
  limit?: number;
  cursor?: string;
  /** Type- and owner-index listings only: newest request (or resource) first. @default false */
  newestFirst?: boolean;
}

export interface Store {
  // ---- reads -----------------------------------------------------------------------------
  /** Strongly consistent read. */
  getLease(id: string): Promise<Lease | undefined>;
  getResource(id: string): Promise<Resource | undefined>;
  getBlueprint(id: string): Promise<Blueprint | undefined>;
  /** Strongly consistent batch reads (BatchGetItem, 100 keys a call); missing ids are omitted. */
  getLeases(ids: string[]): Promise<Lease[]>;
  getResources(ids: string[]): Promise<Resource[]>;
  /** Every blueprint (a small set; index query, no scan). */
  listBlueprints(): Promise<Blueprint[]>;
  /**
   * Pending and active resources of a type (one index query, eventually consistent: planning
   * only, never trusted for a decision without a conditional write behind it).
   * `largestPool`: the largest maxResources among the blueprints whose resources the caller
   * looks at (largest-pool.ts). The index spreads live resources by pool slot, so this says
   * which parts to read: one query for pools of up to 32. Omitted: every part a type can have
   * (complete, but more queries). A blueprint whose maxResources was lowered may still have
   * resources above it until they are reclaimed: pass the old maximum to see those.
   */
  listLiveResources(resourceType: string, largestPool?: number): Promise<Resource[]>;
  /**
   * A bounded page (at most `limit`) of the free resources of a blueprint, oldest first, from
   * the free-candidate index's shard that `spreadBy` (a lease id) falls in: the allocator's
   * warm path, whose read does not grow with the pool. Eventually consistent and possibly
   * stale (an entry may hold a lease by now): planning only. Missing a free resource that sits
   * in another shard is expected: the caller falls back to listLiveResources.
   */
  listFreeResources(blueprintId: string, spreadBy: string, limit: number): Promise<Resource[]>;
  /** Resources by status, ordered by sweepAt; `dueBefore` bounds sweepAt (inclusive). */
  listResourcesByStatus(
    status: ResourceStatus,
    options?: PageOptions & { dueBefore?: string },
  ): Promise<Page<Resource>>;
  /**
   * Leases by status, ordered by sweepAt; `dueBefore` bounds sweepAt (inclusive). Destroyed
   * leases are not in this index. `owner` keeps only that principal's leases: a page may then
   * hold fewer than `limit` items and still have a cursor.
   */
  listLeasesByStatus(
    status: LeaseStatus,
    options?: PageOptions & { dueBefore?: string; owner?: string },
  ): Promise<Page<Lease>>;
  /**
   * Leases of a type in a status, oldest request first; `owner` as in listLeasesByStatus.
   * `waitedOnly` keeps leases that waited at least once (waitSeq > 0), with the same caveat.
   */
  listLeasesByType(
    type: string,
    status: LeaseStatus,
    options?: PageOptions & { owner?: string; waitedOnly?: boolean },
  ): Promise<Page<Lease>>;
  /** Resources of a type in a status, by blueprint then creation time (destroyed ones too). */
  listResourcesByType(
    type: string,
    status: ResourceStatus,
    options?: PageOptions,
  ): Promise<Page<Resource>>;
  /**
   * One principal's leases that are not destroyed, oldest request first (`newestFirst`: the
   * other way), each in its current state. Paged on keys that never change while a lease
   * lives, so no lease appears on two pages, whatever status changes happen meanwhile.
   */
  listLeasesOfOwner(owner: string, options?: PageOptions): Promise<Page<Lease>>;
  /** Every resource not destroyed, oldest first, like listLeasesOfOwner. */
  listListedResources(options?: PageOptions): Promise<Page<Resource>>;
  /** How many pending leases of this type were requested before `requestedAt`. */
  countWaitingAhead(type: string, requestedAt: string, leaseId: string): Promise<number>;
  /** Slot locks by key (missing keys are omitted). */
  getSlotLocks(keys: string[]): Promise<SlotLock[]>;
  /** Every slot lock (for the sweep), paginated. */
  listSlotLocks(options?: PageOptions): Promise<Page<SlotLock>>;
  /** Log events of an object, oldest first, after the given seq (exclusive). */
  listLogs(objectId: string, options?: { after?: string; limit?: number }): Promise<LogEvent[]>;
  /** A command record (strongly consistent). */
  getCommand(leaseId: string, commandId: string): Promise<CommandRecord | undefined>;
  /**
   * Commands by status, ordered by sweepAt; `dueBefore` bounds sweepAt (inclusive). Only
   * queued, running and cancelling commands are in this index; other statuses list nothing.
   */
  listCommandsByStatus(
    status: CommandStatus,
    options?: PageOptions & { dueBefore?: string },
  ): Promise<Page<CommandRecord>>;
  /** The unexpired claim on an Idempotency-Key of this owner, if any. */
  getIdempotencyClaim(owner: string, key: string): Promise<IdempotencyClaim | undefined>;

  // ---- writes ----------------------------------------------------------------------------
  /** Atomic conditional writes; throws WriteConflictError if any condition fails. */
  transact(writes: TxWrite[]): Promise<void>;
  /** Create a blueprint; fails with WriteConflictError if the id exists. */
  createBlueprint(blueprint: Blueprint): Promise<void>;
  /** Replace a blueprint's definition; condition version = expectVersion; health untouched. */
  updateBlueprint(blueprint: Blueprint, expectVersion: number): Promise<void>;
  /** Record blueprint health (circuit breaker); not versioned, last writer wins per field. */
  setBlueprintHealth(id: string, health: BlueprintHealth): Promise<void>;
  /** Delete a slot lock only if it is still held by ownerId (sweep of orphaned locks). */
  deleteSlotLockIfOwner(key: string, ownerId: string): Promise<boolean>;

  // ---- blueprint records (append-only, e.g. the synthetic blueprint's host "bill") ------
  appendRecord(scope: string, record: Record<string, unknown>): Promise<void>;
  listRecords(scope: string): Promise<Array<Record<string, unknown>>>;
}

export interface WorkQueue {
  /** Send update messages (each may carry delaySeconds, capped by the queue at 900). */
  send(messages: UpdateMessage[]): Promise<void>;
}

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export function isoAt(clock: Clock, offsetMs = 0): string {
  return new Date(clock.now() + offsetMs).toISOString();
}
