/**
 * The Store port on one DynamoDB table (layout: schema.ts). Every state change is a conditional
 * write; a transaction of several TxWrites is one TransactWriteItems, so either every condition
 * held and everything was written, or nothing was.
 *
 * Why the conditions look the way they do (a race between two workers W1, W2 on lease L, v3):
 *
 *   W1: read L (pending, v3) ─ plan ─ transact[updateLease L expect v3, takeSlotLock S] ─ ok (v4)
 *   W2: read L (pending, v3) ─ plan ───────── transact[updateLease L expect v3, ...] ─ cancelled
 *                                             (failures [{ index 0, condition }]) → re-read, re-plan
 *
 * Slot locks are plain items whose existence is the lock: `attribute_not_exists(PK)` on take,
 * `ownerId = :owner` on free. Two allocations racing for the last slot therefore cannot both
 * commit, and the loser learns which write (the lock) failed.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { AttributeValue, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  TransactWriteCommand,
  type TransactWriteCommandInput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import {
  DrydockError,
  errorMessage,
  NotFoundError,
  TemporaryError,
  ValidationError,
  WriteConflictError,
  type WriteFailure,
} from '../core/errors.ts';
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
  writeLabel,
} from '../core/ports.ts';
import { type DynamoCallStats, instrumentDynamoClient } from './clients.ts';
import {
  BLUEPRINT_PARTITION,
  blueprintKey,
  commandItem,
  commandKey,
  commandStatusPartition,
  idempotencyKey,
  isIndexedCommandStatus,
  KEY_ATTRIBUTES,
  leaseItem,
  leaseKey,
  leaseStatusPartition,
  leaseTypePartition,
  leaseTypeSortKey,
  lockShardPartition,
  logPartition,
  recordPartition,
  resourceItem,
  resourceKey,
  resourcePhase,
  resourceStatusPartition,
  resourceTypePartition,
  retentionEpoch,
  slotLockItem,
  slotLockKey,
  stripKeys,
  sweepSortKey,
} from './keys.ts';
import { GSI, LOCK_SHARDS, TTL_ATTRIBUTE, UNSCHEDULED_SWEEP_KEY } from './schema.ts';

export interface DynamoStoreOptions {
  client: DynamoDBClient;
  tableName: string;
  /** Source of `now` for updatedAt defaults, TTLs and record keys. @default systemClock */
  clock?: Clock;
}

// ---- expressions -----------------------------------------------------------------------------

type Names = Record<string, string>;
type Values = Record<string, unknown>;

/** A piece of a condition or update expression with the placeholders it uses. */
interface Fragment {
  expression: string;
  names: Names;
  values: Values;
}

const ATTRIBUTE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function placeholder(attribute: string): string {
  if (!ATTRIBUTE_NAME.test(attribute)) {
    throw new Error(`attribute name '${attribute}' cannot be used in an expression`);
  }
  return `#${attribute}`;
}

const fragment = (expression: string, names: Names = {}, values: Values = {}): Fragment => ({
  expression,
  names,
  values,
});

function mergeInto(target: Record<string, unknown>, source: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(source)) {
    if (key in target && target[key] !== value) {
      throw new Error(`expression placeholder ${key} used for two different values`);
    }
    target[key] = value;
  }
}

/** All fragments must hold. */
function allOf(...fragments: Fragment[]): Fragment {
  const combined = fragment(fragments.map((f) => f.expression).join(' AND '));
  for (const f of fragments) {
    mergeInto(combined.names, f.names);
    mergeInto(combined.values, f.values);
  }
  return combined;
}

/*
 * Condition fragments, named after what they assert; each TxWrite's condition is composed from
 * them exactly as its contract in ports.ts reads.
 */
const itemIsNew = fragment('attribute_not_exists(#PK)', { '#PK': 'PK' });
const itemExists = fragment('attribute_exists(#PK)', { '#PK': 'PK' });
const statusIs = (status: string) =>
  fragment('#status = :expectStatus', { '#status': 'status' }, { ':expectStatus': status });
const versionIs = (version: number) =>
  fragment('#version = :expectVersion', { '#version': 'version' }, { ':expectVersion': version });
const hasNoLeases = fragment(
  '#leaseCount = :zero',
  { '#leaseCount': 'leaseCount' },
  { ':zero': 0 },
);
const hasFreeCapacity = fragment('#leaseCount < #capacity', {
  '#leaseCount': 'leaseCount',
  '#capacity': 'capacity',
});
const usedFewerThan = (maxUses: number) =>
  fragment('#uses < :maxUses', { '#uses': 'uses' }, { ':maxUses': maxUses });
const notSuspect = fragment('attribute_not_exists(#suspectSince)', {
  '#suspectSince': 'suspectSince',
});
function statusIn(statuses: readonly string[]): Fragment {
  if (statuses.length === 0) throw new Error('statusIn needs at least one status');
  const values = Object.fromEntries(statuses.map((s, i) => [`:statusIn${i}`, s]));
  return fragment(
    `#status IN (${Object.keys(values).join(', ')})`,
    { '#status': 'status' },
    values,
  );
}
const heldBy = (ownerId: string) =>
  fragment('#ownerId = :owner', { '#ownerId': 'ownerId' }, { ':owner': ownerId });
const waitSeqIs = (waitSeq: number) =>
  fragment('#waitSeq = :expectWaitSeq', { '#waitSeq': 'waitSeq' }, { ':expectWaitSeq': waitSeq });
const attemptIs = (attempt: number) =>
  fragment('#attempt = :expectAttempt', { '#attempt': 'attempt' }, { ':expectAttempt': attempt });
/** A command's poll counter; commands written before polling existed have none (count 0). */
const pollsAre = (polls: number) =>
  polls === 0
    ? fragment(
        '(attribute_not_exists(#polls) OR #polls = :expectPolls)',
        { '#polls': 'polls' },
        { ':expectPolls': polls },
      )
    : fragment('#polls = :expectPolls', { '#polls': 'polls' }, { ':expectPolls': polls });
/**
 * An item that is absent, or present but past its TTL. DynamoDB deletes expired items lazily
 * (often within days, not seconds), so "expired" must count as "free" in the condition itself.
 * The TTL is rounded up and now down, so an item never counts as expired early.
 */
const itemIsNewOrExpired = (nowEpoch: number) =>
  fragment(
    '(attribute_not_exists(#PK) OR #ttl <= :nowEpoch)',
    { '#PK': 'PK', '#ttl': TTL_ATTRIBUTE },
    { ':nowEpoch': nowEpoch },
  );
/** Listing filter (applied after the key condition, so a page may come back short). */
const ownedBy = (owner: string) =>
  fragment('#owner = :owner', { '#owner': 'owner' }, { ':owner': owner });

/** Collects SET / REMOVE / ADD clauses of one UpdateExpression. */
class UpdateExpression {
  private readonly sets: string[] = [];
  private readonly removes: string[] = [];
  private readonly adds: string[] = [];
  private readonly names: Names = {};
  private readonly values: Values = {};

  /** SET #attribute = :attribute */
  set(attribute: string, value: unknown): this {
    const name = placeholder(attribute);
    const valueName = `:${attribute}`;
    this.sets.push(`${name} = ${valueName}`);
    mergeInto(this.names, { [name]: attribute });
    mergeInto(this.values, { [valueName]: value });
    return this;
  }

  /** SET #attribute = if_not_exists(#attribute, :attribute): keeps a present value. */
  setIfAbsent(attribute: string, value: unknown): this {
    const name = placeholder(attribute);
    const valueName = `:${attribute}`;
    this.sets.push(`${name} = if_not_exists(${name}, ${valueName})`);
    mergeInto(this.names, { [name]: attribute });
    mergeInto(this.values, { [valueName]: value });
    return this;
  }

  /** SET #attribute = #attribute + :delta */
  increment(attribute: string, delta: number): this {
    const name = placeholder(attribute);
    const valueName = `:${attribute}Delta`;
    this.sets.push(`${name} = ${name} + ${valueName}`);
    mergeInto(this.names, { [name]: attribute });
    mergeInto(this.values, { [valueName]: delta });
    return this;
  }

  /** ADD #attribute :delta (creates the attribute at 0 if missing) */
  add(attribute: string, delta: number): this {
    const name = placeholder(attribute);
    const valueName = `:${attribute}Delta`;
    this.adds.push(`${name} ${valueName}`);
    mergeInto(this.names, { [name]: attribute });
    mergeInto(this.values, { [valueName]: delta });
    return this;
  }

  remove(attribute: string): this {
    const name = placeholder(attribute);
    this.removes.push(name);
    mergeInto(this.names, { [name]: attribute });
    return this;
  }

  /** SETs non-null values, REMOVEs null ones, skips undefined ones. */
  patch(fields: Record<string, unknown>): this {
    for (const [attribute, value] of Object.entries(fields)) {
      if (value === undefined) continue;
      if (value === null) this.remove(attribute);
      else this.set(attribute, value);
    }
    return this;
  }

  toFragment(): Fragment {
    const clauses = [
      this.sets.length > 0 ? `SET ${this.sets.join(', ')}` : '',
      this.removes.length > 0 ? `REMOVE ${this.removes.join(', ')}` : '',
      this.adds.length > 0 ? `ADD ${this.adds.join(', ')}` : '',
    ].filter(Boolean);
    return fragment(clauses.join(' '), this.names, this.values);
  }
}

/** ExpressionAttributeNames/Values for the given fragments; empty maps are omitted (DynamoDB rejects them). */
function expressionAttributes(...fragments: Fragment[]) {
  const names: Names = {};
  const values: Values = {};
  for (const f of fragments) {
    mergeInto(names, f.names);
    mergeInto(values, f.values);
  }
  return {
    ...(Object.keys(names).length > 0 ? { ExpressionAttributeNames: names } : {}),
    ...(Object.keys(values).length > 0 ? { ExpressionAttributeValues: values } : {}),
  };
}

// ---- writes ----------------------------------------------------------------------------------

type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

/**
 * One planned write: its label (writeLabel), what it expects in words (for error messages) and
 * its parameters, typed as a transaction item so the same plan can be sent alone or inside
 * TransactWriteItems.
 */
type PlannedWrite = { label: string; detail?: string } & (
  | { kind: 'Put'; params: NonNullable<TransactItem['Put']> }
  | { kind: 'Update'; params: NonNullable<TransactItem['Update']> }
  | { kind: 'Delete'; params: NonNullable<TransactItem['Delete']> }
  | {
      kind: 'ConditionCheck';
      params: NonNullable<TransactItem['ConditionCheck']>;
      /** The condition, evaluated locally when the check is sent alone (see checkAlone). */
      holds: (item: Record<string, unknown>) => boolean;
    }
);

/** `label (detail)`: how a write appears in error messages. */
const describeWrite = (w: Pick<PlannedWrite, 'label' | 'detail'>): string =>
  w.detail ? `${w.label} (${w.detail})` : w.label;

/** Patch fields that are identity, index keys or owned by another writer. */
const LEASE_FIXED = new Set([...KEY_ATTRIBUTES, 'id', 'type', 'version', 'owner', 'requestedAt']);
const RESOURCE_FIXED = new Set([
  ...KEY_ATTRIBUTES,
  'id',
  'type',
  'blueprintId',
  'version',
  'leaseCount',
  'uses',
  'createdAt',
]);

const COMMAND_FIXED = new Set([...KEY_ATTRIBUTES, 'id', 'leaseId', 'owner', 'createdAt']);

/**
 * Keeps a command's status-index keys in step with an update: a new indexed status moves it
 * to that partition, any other new status removes it from the index. Without a new sweepAt the
 * command keeps its sort key (`if_not_exists`: one written before the index existed becomes
 * unscheduled rather than invisible, since an item lacking either key is not in the index).
 */
function fileCommandInStatusIndex(
  update: UpdateExpression,
  newStatus: CommandStatus | undefined,
  expectedStatus: CommandStatus,
  sweepAt: string | null | undefined,
): void {
  const status = newStatus ?? expectedStatus;
  if (!isIndexedCommandStatus(status)) {
    if (newStatus !== undefined) {
      update.remove(GSI.byStatus.partitionKey).remove(GSI.byStatus.sortKey);
    }
    return;
  }
  if (sweepAt !== undefined) update.set(GSI.byStatus.sortKey, sweepSortKey(sweepAt));
  if (newStatus === undefined) return;
  update.set(GSI.byStatus.partitionKey, commandStatusPartition(status));
  if (sweepAt === undefined) update.setIfAbsent(GSI.byStatus.sortKey, UNSCHEDULED_SWEEP_KEY);
}

function assertPatchable(patch: object, fixed: Set<string>, what: string): void {
  for (const [key, value] of Object.entries(patch)) {
    if (value !== undefined && fixed.has(key)) {
      throw new Error(`${what} may not set '${key}'`);
    }
  }
}

/**
 * Every Blueprint field updateBlueprint replaces (all but id, version and health). Listed as a
 * `satisfies` record so a new Blueprint field fails to compile here until it is classified.
 */
const REPLACED_BLUEPRINT_FIELDS = Object.keys({
  type: true,
  resourceType: true,
  description: true,
  attributes: true,
  state: true,
  limits: true,
  config: true,
  createdAt: true,
  updatedAt: true,
} satisfies Record<Exclude<keyof Blueprint, 'id' | 'version' | 'health'>, true>);

function toTransactItem(planned: PlannedWrite): TransactItem {
  switch (planned.kind) {
    case 'Put':
      return { Put: planned.params };
    case 'Update':
      return { Update: planned.params };
    case 'Delete':
      return { Delete: planned.params };
    case 'ConditionCheck':
      return { ConditionCheck: planned.params };
  }
}

// ---- errors ----------------------------------------------------------------------------------

const TEMPORARY_ERRORS = new Set([
  'ThrottlingException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'TransactionInProgressException',
  'InternalServerError',
  'ServiceUnavailable',
  'LimitExceededException',
]);

const CANCELLATION_REASONS: Record<string, WriteFailure['reason'] | 'temporary'> = {
  ConditionalCheckFailed: 'condition',
  TransactionConflict: 'conflict',
  ThrottlingError: 'temporary',
  ProvisionedThroughputExceeded: 'temporary',
  RequestLimitExceeded: 'temporary',
};

type RawItem = Record<string, AttributeValue>;

interface SdkError {
  name?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  /** The item whose condition failed (ReturnValuesOnConditionCheckFailure), raw: lib-dynamodb does not unmarshall errors. */
  Item?: RawItem;
  /** Per-write reasons, raw like Item. */
  CancellationReasons?: Array<{ Code?: string; Message?: string; Item?: RawItem }>;
}

/** The domain object DynamoDB returned with a failed condition, if any. */
function existingItem(raw: RawItem | undefined): Pick<WriteFailure, 'item'> {
  return raw ? { item: stripKeys<Record<string, unknown>>(unmarshall(raw)) } : {};
}

/**
 * Turns an SDK exception into a domain error. `writes` are the writes of a transaction (or the
 * one write) so a conflict names the writes that failed by their labels.
 */
function translateError(
  err: unknown,
  what: string,
  writes: ReadonlyArray<Pick<PlannedWrite, 'label' | 'detail'>> = [],
): DrydockError {
  const sdk = (err ?? {}) as SdkError;
  const [only] = writes;
  switch (sdk.name) {
    case 'ConditionalCheckFailedException':
    case 'TransactionConflictException': {
      const reason = sdk.name === 'TransactionConflictException' ? 'conflict' : 'condition';
      return new WriteConflictError(
        `${only ? describeWrite(only) : what}: ${reason === 'condition' ? 'condition failed' : 'conflicts with a concurrent transaction'}`,
        [{ label: only?.label ?? what, reason, ...existingItem(sdk.Item) }],
        { cause: err },
      );
    }
    case 'TransactionCanceledException': {
      const reasons = sdk.CancellationReasons ?? [];
      const failures: WriteFailure[] = [];
      const described: string[] = [];
      let temporary = false;
      reasons.forEach((r, index) => {
        if (!r.Code || r.Code === 'None') return;
        const mapped = CANCELLATION_REASONS[r.Code] ?? 'other';
        if (mapped === 'temporary') {
          temporary = true;
          return;
        }
        const write = writes[index];
        failures.push({
          label: write?.label ?? `write ${index}`,
          reason: mapped,
          ...existingItem(r.Item),
        });
        described.push(`${write ? describeWrite(write) : `write ${index}`}: ${mapped}`);
      });
      if (failures.some((f) => f.reason === 'condition' || f.reason === 'conflict')) {
        return new WriteConflictError(`${what} cancelled: ${described.join('; ')}`, failures, {
          cause: err,
        });
      }
      if (temporary) {
        return new TemporaryError(`${what} cancelled by throttling`, { cause: err });
      }
      const codes = reasons.map(
        (r, i) => `${writes[i]?.label ?? i}:${r.Code ?? '?'}${r.Message ? ` (${r.Message})` : ''}`,
      );
      return new DrydockError('store_failure', `${what} cancelled: ${codes.join(', ')}`, {
        cause: err,
        context: { writes: writes.map((w) => w.label) },
      });
    }
  }
  if ((sdk.name && TEMPORARY_ERRORS.has(sdk.name)) || (sdk.$metadata?.httpStatusCode ?? 0) >= 500) {
    return new TemporaryError(`DynamoDB ${what} failed temporarily: ${errorMessage(err)}`, {
      cause: err,
    });
  }
  return new DrydockError('store_failure', `DynamoDB ${what} failed: ${errorMessage(err)}`, {
    cause: err,
  });
}

// ---- cursors ---------------------------------------------------------------------------------

type StartKey = Record<string, string>;

function encodeCursor(value: unknown): string {
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
function startKeyFromCursor(
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

function checkLimit(limit: number | undefined): number | undefined {
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) {
    throw new ValidationError(`limit must be a positive integer, got ${limit}`);
  }
  return limit;
}

const MAX_TRANSACTION_WRITES = 100;
const MAX_BATCH_GET_KEYS = 100;
const BATCH_GET_ATTEMPTS = 8;

// ---- the store -------------------------------------------------------------------------------

export class DynamoStore implements Store {
  /** Calls and consumed capacity of the underlying client (shared by stores on one client). */
  readonly stats: DynamoCallStats;
  readonly tableName: string;
  private readonly doc: DynamoDBDocumentClient;
  private readonly clock: Clock;

  constructor(options: DynamoStoreOptions) {
    this.tableName = options.tableName;
    this.clock = options.clock ?? systemClock;
    this.stats = instrumentDynamoClient(options.client);
    this.doc = DynamoDBDocumentClient.from(options.client, {
      marshallOptions: { removeUndefinedValues: true },
    });
  }

  resetStats(): void {
    this.stats.reset();
  }

  // ---- reads ---------------------------------------------------------------------------------

  getLease(id: string): Promise<Lease | undefined> {
    return this.getItem<Lease>(leaseKey(id), `getLease ${id}`);
  }

  getResource(id: string): Promise<Resource | undefined> {
    return this.getItem<Resource>(resourceKey(id), `getResource ${id}`);
  }

  getBlueprint(id: string): Promise<Blueprint | undefined> {
    return this.getItem<Blueprint>(blueprintKey(id), `getBlueprint ${id}`);
  }

  async listBlueprints(): Promise<Blueprint[]> {
    const items = await this.queryAll(
      this.indexQuery(GSI.byStatus, BLUEPRINT_PARTITION),
      'listBlueprints',
    );
    return items.map((item) => stripKeys<Blueprint>(item));
  }

  async listLiveResources(resourceType: string): Promise<Resource[]> {
    const items = await this.queryAll(
      this.indexQuery(GSI.byType, resourceTypePartition(resourceType, 'active')),
      `listLiveResources ${resourceType}`,
    );
    return items.map((item) => stripKeys<Resource>(item));
  }

  listResourcesByStatus(
    status: ResourceStatus,
    options: PageOptions & { dueBefore?: string } = {},
  ): Promise<Page<Resource>> {
    return this.listByStatus<Resource>(resourceStatusPartition(status), options);
  }

  listLeasesByStatus(
    status: LeaseStatus,
    options: PageOptions & { dueBefore?: string; owner?: string } = {},
  ): Promise<Page<Lease>> {
    const { owner, ...rest } = options;
    return this.listByStatus<Lease>(
      leaseStatusPartition(status),
      rest,
      owner === undefined ? undefined : ownedBy(owner),
    );
  }

  listLeasesByType(
    type: string,
    status: LeaseStatus,
    options: PageOptions & { owner?: string } = {},
  ): Promise<Page<Lease>> {
    return this.listByType<Lease>(
      leaseTypePartition(type, status),
      options,
      `listLeasesByType ${type} ${status}`,
      options.owner === undefined ? undefined : ownedBy(options.owner),
    );
  }

  listResourcesByType(
    type: string,
    status: ResourceStatus,
    options: PageOptions = {},
  ): Promise<Page<Resource>> {
    // Pending and active resources share the `live` partition: the status is then a filter.
    return this.listByType<Resource>(
      resourceTypePartition(type, status),
      options,
      `listResourcesByType ${type} ${status}`,
      resourcePhase(status) === status ? undefined : statusIs(status),
    );
  }

  async countWaitingAhead(type: string, requestedAt: string, leaseId: string): Promise<number> {
    const { partitionKey, sortKey } = GSI.byType;
    let count = 0;
    let startKey: Record<string, unknown> | undefined;
    do {
      const output = await this.read(`countWaitingAhead ${leaseId}`, () =>
        this.doc.send(
          new QueryCommand({
            TableName: this.tableName,
            IndexName: GSI.byType.name,
            KeyConditionExpression: '#pk = :pk AND #sk < :sk',
            ExpressionAttributeNames: { '#pk': partitionKey, '#sk': sortKey },
            ExpressionAttributeValues: {
              ':pk': leaseTypePartition(type, 'pending'),
              ':sk': leaseTypeSortKey(requestedAt, leaseId),
            },
            Select: 'COUNT',
            ExclusiveStartKey: startKey,
          }),
        ),
      );
      count += output.Count ?? 0;
      startKey = output.LastEvaluatedKey;
    } while (startKey);
    return count;
  }

  async getSlotLocks(keys: string[]): Promise<SlotLock[]> {
    // BatchGetItem rejects duplicate keys in one request.
    const unique = [...new Set(keys)];
    const locks: SlotLock[] = [];
    for (let i = 0; i < unique.length; i += MAX_BATCH_GET_KEYS) {
      let pending: Array<Record<string, unknown>> = unique
        .slice(i, i + MAX_BATCH_GET_KEYS)
        .map((key) => ({ ...slotLockKey(key) }));
      for (let attempt = 1; pending.length > 0; attempt++) {
        if (attempt > BATCH_GET_ATTEMPTS) {
          throw new TemporaryError(
            `getSlotLocks: ${pending.length} keys still unprocessed after ${BATCH_GET_ATTEMPTS} attempts`,
          );
        }
        if (attempt > 1) await backoff(attempt);
        const output = await this.read('getSlotLocks', () =>
          this.doc.send(
            new BatchGetCommand({
              RequestItems: { [this.tableName]: { Keys: pending, ConsistentRead: true } },
            }),
          ),
        );
        for (const item of output.Responses?.[this.tableName] ?? []) {
          locks.push(stripKeys<SlotLock>(item));
        }
        pending = output.UnprocessedKeys?.[this.tableName]?.Keys ?? [];
      }
    }
    return locks;
  }

  /**
   * Walks the lock shards in order; the cursor remembers the shard and the position in it.
   */
  async listSlotLocks(options: PageOptions = {}): Promise<Page<SlotLock>> {
    const limit = checkLimit(options.limit);
    let shard = 0;
    let startKey: StartKey | undefined;
    if (options.cursor !== undefined) {
      const decoded = decodeCursor(options.cursor) as { shard?: unknown; key?: unknown };
      if (
        typeof decoded?.shard !== 'number' ||
        !Number.isInteger(decoded.shard) ||
        decoded.shard < 0 ||
        decoded.shard >= LOCK_SHARDS ||
        (decoded.key !== undefined && !isStartKey(decoded.key))
      ) {
        throw new ValidationError('page cursor does not belong to the slot lock listing');
      }
      shard = decoded.shard;
      startKey = decoded.key as StartKey | undefined;
    }
    const items: SlotLock[] = [];
    while (shard < LOCK_SHARDS) {
      const remaining = limit === undefined ? undefined : limit - items.length;
      if (remaining === 0) break;
      const page = await this.queryPage(
        {
          ...this.indexQuery(GSI.byStatus, lockShardPartition(shard)),
          Limit: remaining,
          ExclusiveStartKey: startKey,
        },
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
      ...(shard < LOCK_SHARDS ? { cursor: encodeCursor({ shard, key: startKey }) } : {}),
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
      const page = await this.queryPage(
        {
          TableName: this.tableName,
          KeyConditionExpression:
            options.after === undefined ? '#PK = :pk' : '#PK = :pk AND #SK > :after',
          ExpressionAttributeNames: {
            '#PK': 'PK',
            ...(options.after === undefined ? {} : { '#SK': 'SK' }),
          },
          ExpressionAttributeValues: {
            ':pk': logPartition(objectId),
            ...(options.after === undefined ? {} : { ':after': options.after }),
          },
          ConsistentRead: true,
          ScanIndexForward: true,
          Limit: limit === undefined ? undefined : limit - events.length,
          ExclusiveStartKey: startKey,
        },
        `listLogs ${objectId}`,
      );
      events.push(...page.items.map((item) => stripKeys<LogEvent>(item)));
      startKey = page.lastKey;
    } while (startKey && (limit === undefined || events.length < limit));
    return events;
  }

  getCommand(leaseId: string, commandId: string): Promise<CommandRecord | undefined> {
    return this.getItem<CommandRecord>(
      commandKey(leaseId, commandId),
      `getCommand ${leaseId}/${commandId}`,
    );
  }

  listCommandsByStatus(
    status: CommandStatus,
    options: PageOptions & { dueBefore?: string } = {},
  ): Promise<Page<CommandRecord>> {
    return this.listByStatus<CommandRecord>(commandStatusPartition(status), options);
  }

  async getIdempotencyClaim(owner: string, key: string): Promise<IdempotencyClaim | undefined> {
    const item = await this.getItem<IdempotencyClaim>(
      idempotencyKey(owner, key),
      `getIdempotencyClaim ${owner}`,
    );
    if (!item || Date.parse(item.expiresAt) <= this.clock.now()) return undefined;
    return item;
  }

  // ---- writes --------------------------------------------------------------------------------

  async transact(writes: TxWrite[]): Promise<void> {
    if (writes.length === 0) return;
    if (writes.length > MAX_TRANSACTION_WRITES) {
      throw new Error(
        `a transaction holds at most ${MAX_TRANSACTION_WRITES} writes, got ${writes.length}`,
      );
    }
    const planned = writes.map((write) => this.plan(write));
    const [only] = planned;
    if (planned.length === 1 && only) {
      // One write: a plain conditional write costs half a transactional one.
      await this.write(only);
      return;
    }
    const labels = planned.map((p) => p.label);
    try {
      await this.doc.send(
        new TransactWriteCommand({
          TransactItems: planned.map(toTransactItem),
          // Makes SDK retries of this call idempotent: a retry after a lost response returns
          // success instead of failing the conditions the first attempt already consumed.
          ClientRequestToken: randomUUID(),
        }),
      );
    } catch (err) {
      throw translateError(err, `transaction [${labels.join(', ')}]`, planned);
    }
  }

  async createBlueprint(blueprint: Blueprint): Promise<void> {
    await this.write({
      kind: 'Put',
      label: `createBlueprint:${blueprint.id}`,
      params: {
        TableName: this.tableName,
        Item: {
          ...blueprint,
          ...blueprintKey(blueprint.id),
          GSI2PK: BLUEPRINT_PARTITION,
          GSI2SK: blueprint.id,
        },
        ConditionExpression: itemIsNew.expression,
        ...expressionAttributes(itemIsNew),
      },
    });
  }

  async updateBlueprint(blueprint: Blueprint, expectVersion: number): Promise<void> {
    const update = new UpdateExpression();
    const fields = blueprint as unknown as Record<string, unknown>;
    for (const field of REPLACED_BLUEPRINT_FIELDS) {
      // A replace: fields absent from the new definition are removed.
      update.patch({ [field]: fields[field] ?? null });
    }
    update.set('version', expectVersion + 1);
    await this.write(
      this.updateWrite(
        `updateBlueprint:${blueprint.id}`,
        blueprintKey(blueprint.id),
        update,
        versionIs(expectVersion),
        `expect v${expectVersion}`,
      ),
    );
  }

  async setBlueprintHealth(id: string, health: BlueprintHealth): Promise<void> {
    try {
      await this.write(
        this.updateWrite(
          `setBlueprintHealth:${id}`,
          blueprintKey(id),
          new UpdateExpression().set('health', health),
          itemExists,
        ),
      );
    } catch (err) {
      if (err instanceof WriteConflictError) throw new NotFoundError('blueprint', id);
      throw err;
    }
  }

  async deleteSlotLockIfOwner(key: string, ownerId: string): Promise<boolean> {
    try {
      await this.write(this.plan({ op: 'freeSlotLock', key, ownerId }));
      return true;
    } catch (err) {
      if (err instanceof WriteConflictError) return false;
      throw err;
    }
  }

  async appendRecord(scope: string, record: Record<string, unknown>): Promise<void> {
    await this.write({
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
    const items = await this.queryAll(
      {
        TableName: this.tableName,
        KeyConditionExpression: '#PK = :pk',
        ExpressionAttributeNames: { '#PK': 'PK' },
        ExpressionAttributeValues: { ':pk': recordPartition(scope) },
        ConsistentRead: true,
        ScanIndexForward: true,
      },
      `listRecords ${scope}`,
    );
    return items.map((item) => item.record as Record<string, unknown>);
  }

  // ---- planning: TxWrite -> conditional write ------------------------------------------------

  private plan(write: TxWrite): PlannedWrite {
    const label = writeLabel(write);
    switch (write.op) {
      case 'createLease':
        return this.putNew(label, leaseItem(write.lease));
      case 'createResource':
        return this.putNew(label, resourceItem(write.resource));
      case 'takeSlotLock':
        return this.putNew(
          label,
          slotLockItem(write.lock),
          `for ${write.lock.ownerKind} ${write.lock.ownerId}`,
        );
      case 'updateLease': {
        const { id, type, expect, set } = write;
        assertPatchable(set, LEASE_FIXED, 'updateLease');
        const update = new UpdateExpression().patch(set).increment('version', 1);
        if (set.updatedAt === undefined) update.set('updatedAt', this.nowIso());
        const status = set.status ?? undefined;
        this.moveIndexKeys(update, {
          status: status ?? expect.status,
          statusChanged: status !== undefined,
          typePartition: leaseTypePartition(type, status ?? expect.status),
          statusPartition: leaseStatusPartition(status ?? expect.status),
          sweepAt: set.sweepAt,
          endedAt: set.destroyedAt ?? undefined,
        });
        return this.updateWrite(
          label,
          leaseKey(id),
          update,
          allOf(statusIs(expect.status), versionIs(expect.version)),
          `expect ${expect.status} v${expect.version}`,
        );
      }
      case 'markLeaseWaiting': {
        const { id, expectWaitSeq, set } = write;
        const update = new UpdateExpression()
          .increment('waitSeq', 1)
          .set('checkedAt', set.checkedAt)
          .set('sweepAt', set.sweepAt)
          .set(GSI.byStatus.sortKey, sweepSortKey(set.sweepAt));
        if (set.waitReason !== undefined) update.set('waitReason', set.waitReason);
        return this.updateWrite(
          label,
          leaseKey(id),
          update,
          allOf(statusIs('pending'), waitSeqIs(expectWaitSeq)),
          `expect pending waitSeq ${expectWaitSeq}`,
        );
      }
      case 'updateResource': {
        const { id, type, expect, set, requireNoLeases } = write;
        assertPatchable(set, RESOURCE_FIXED, 'updateResource');
        const update = new UpdateExpression().patch(set).increment('version', 1);
        if (set.updatedAt === undefined) update.set('updatedAt', this.nowIso());
        const status = set.status ?? undefined;
        this.moveIndexKeys(update, {
          status: status ?? expect.status,
          statusChanged: status !== undefined,
          typePartition: resourceTypePartition(type, status ?? expect.status),
          statusPartition: resourceStatusPartition(status ?? expect.status),
          sweepAt: set.sweepAt,
          endedAt: set.destroyedAt ?? undefined,
        });
        const conditions = [statusIs(expect.status), versionIs(expect.version)];
        if (requireNoLeases) conditions.push(hasNoLeases);
        return this.updateWrite(
          label,
          resourceKey(id),
          update,
          allOf(...conditions),
          `expect ${expect.status} v${expect.version}${requireNoLeases ? ', no leases' : ''}`,
        );
      }
      case 'attachLease':
        return this.updateWrite(
          label,
          resourceKey(write.resourceId),
          new UpdateExpression().add('leaseCount', 1).add('uses', 1),
          write.maxUses === undefined
            ? allOf(statusIn(write.statusIn), notSuspect, hasFreeCapacity)
            : allOf(
                statusIn(write.statusIn),
                notSuspect,
                hasFreeCapacity,
                usedFewerThan(write.maxUses),
              ),
          `status in [${write.statusIn.join(', ')}], free capacity`,
        );
      case 'checkResource': {
        const condition = statusIn(write.statusIn);
        return {
          kind: 'ConditionCheck',
          label,
          detail: `status in [${write.statusIn.join(', ')}]`,
          params: {
            TableName: this.tableName,
            Key: resourceKey(write.resourceId),
            ConditionExpression: condition.expression,
            ...expressionAttributes(condition),
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          },
          holds: (item) => write.statusIn.includes(item.status as ResourceStatus),
        };
      }
      case 'detachLease':
        return this.updateWrite(
          label,
          resourceKey(write.resourceId),
          new UpdateExpression().add('leaseCount', -1).set('lastDetachedAt', write.at),
          itemExists,
        );
      case 'freeSlotLock': {
        const condition = heldBy(write.ownerId);
        return {
          kind: 'Delete',
          label,
          detail: `held by ${write.ownerId}`,
          params: {
            TableName: this.tableName,
            Key: slotLockKey(write.key),
            ConditionExpression: condition.expression,
            ...expressionAttributes(condition),
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          },
        };
      }
      case 'appendLog': {
        const { event } = write;
        const at = Date.parse(event.at);
        return {
          kind: 'Put',
          label,
          detail: event.type,
          params: {
            TableName: this.tableName,
            Item: {
              ...event,
              PK: logPartition(event.objectId),
              SK: event.seq,
              [TTL_ATTRIBUTE]: retentionEpoch(Number.isNaN(at) ? this.clock.now() : at),
            },
          },
        };
      }
      case 'createCommand':
        return this.putNew(label, commandItem(write.command));
      case 'updateCommand': {
        const { leaseId, id, expect, set } = write;
        assertPatchable(set, COMMAND_FIXED, 'updateCommand');
        const update = new UpdateExpression().patch(set);
        if (set.updatedAt === undefined) update.set('updatedAt', this.nowIso());
        fileCommandInStatusIndex(update, set.status ?? undefined, expect.status, set.sweepAt);
        const conditions = [statusIs(expect.status), attemptIs(expect.attempt)];
        if (expect.polls !== undefined) conditions.push(pollsAre(expect.polls));
        return this.updateWrite(
          label,
          commandKey(leaseId, id),
          update,
          allOf(...conditions),
          `expect ${expect.status} attempt ${expect.attempt}${expect.polls === undefined ? '' : ` polls ${expect.polls}`}`,
        );
      }
      case 'takeIdempotencyKey': {
        const { claim } = write;
        const condition = itemIsNewOrExpired(Math.floor(this.clock.now() / 1000));
        return {
          kind: 'Put',
          label,
          detail: `owner ${claim.owner}`,
          params: {
            TableName: this.tableName,
            Item: {
              ...claim,
              ...idempotencyKey(claim.owner, claim.key),
              [TTL_ATTRIBUTE]: Math.ceil(Date.parse(claim.expiresAt) / 1000),
            },
            ConditionExpression: condition.expression,
            ...expressionAttributes(condition),
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          },
        };
      }
      default: {
        const unknown: never = write;
        throw new Error(`unknown transaction write ${JSON.stringify(unknown)}`);
      }
    }
  }

  /**
   * Index keys follow the status: GSI1PK/GSI2PK move with it and GSI2SK with sweepAt. A destroyed
   * object leaves GSI2 (the sweep never needs it) and gets a TTL so DynamoDB deletes it later.
   */
  private moveIndexKeys(
    update: UpdateExpression,
    next: {
      status: string;
      statusChanged: boolean;
      typePartition: string;
      statusPartition: string;
      sweepAt: string | null | undefined;
      endedAt: string | undefined;
    },
  ): void {
    if (next.statusChanged) update.set(GSI.byType.partitionKey, next.typePartition);
    if (next.status === 'destroyed') {
      if (next.statusChanged) {
        update.remove(GSI.byStatus.partitionKey).remove(GSI.byStatus.sortKey);
        const endedAt = next.endedAt === undefined ? Number.NaN : Date.parse(next.endedAt);
        update.set(
          TTL_ATTRIBUTE,
          retentionEpoch(Number.isNaN(endedAt) ? this.clock.now() : endedAt),
        );
      }
      return;
    }
    if (next.statusChanged) update.set(GSI.byStatus.partitionKey, next.statusPartition);
    if (next.sweepAt !== undefined) update.set(GSI.byStatus.sortKey, sweepSortKey(next.sweepAt));
  }

  private putNew(label: string, item: Record<string, unknown>, detail?: string): PlannedWrite {
    return {
      kind: 'Put',
      label,
      ...(detail ? { detail } : {}),
      params: {
        TableName: this.tableName,
        Item: item,
        ConditionExpression: itemIsNew.expression,
        ...expressionAttributes(itemIsNew),
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      },
    };
  }

  private updateWrite(
    label: string,
    key: Record<string, string>,
    update: UpdateExpression,
    condition: Fragment,
    detail?: string,
  ): PlannedWrite {
    const updateFragment = update.toFragment();
    return {
      kind: 'Update',
      label,
      ...(detail ? { detail } : {}),
      params: {
        TableName: this.tableName,
        Key: key,
        UpdateExpression: updateFragment.expression,
        ConditionExpression: condition.expression,
        ...expressionAttributes(updateFragment, condition),
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      },
    };
  }

  private async write(planned: PlannedWrite): Promise<void> {
    try {
      switch (planned.kind) {
        case 'Put':
          await this.doc.send(new PutCommand(planned.params));
          return;
        case 'Update':
          await this.doc.send(new UpdateCommand(planned.params));
          return;
        case 'Delete':
          await this.doc.send(new DeleteCommand(planned.params));
          return;
        case 'ConditionCheck':
          await this.checkAlone(planned);
          return;
      }
    } catch (err) {
      if (err instanceof DrydockError) throw err;
      throw translateError(err, planned.label, [planned]);
    }
  }

  /**
   * A lone condition check is a consistent read evaluated here: TransactWriteItems would cost
   * twice as much for the same answer, and nothing is written either way.
   */
  private async checkAlone(planned: Extract<PlannedWrite, { kind: 'ConditionCheck' }>) {
    const output = await this.doc.send(
      new GetCommand({ TableName: this.tableName, Key: planned.params.Key, ConsistentRead: true }),
    );
    if (!output.Item || !planned.holds(output.Item)) {
      throw new WriteConflictError(`${describeWrite(planned)}: condition failed`, [
        {
          label: planned.label,
          reason: 'condition',
          ...(output.Item ? { item: stripKeys<Record<string, unknown>>(output.Item) } : {}),
        },
      ]);
    }
  }

  // ---- read helpers --------------------------------------------------------------------------

  private async getItem<T>(key: Record<string, string>, what: string): Promise<T | undefined> {
    const output = await this.read(what, () =>
      this.doc.send(new GetCommand({ TableName: this.tableName, Key: key, ConsistentRead: true })),
    );
    return output.Item ? stripKeys<T>(output.Item) : undefined;
  }

  private indexQuery(
    index: { name: string; partitionKey: string },
    partition: string,
  ): QueryCommandInput {
    return {
      TableName: this.tableName,
      IndexName: index.name,
      KeyConditionExpression: '#pk = :pk',
      ExpressionAttributeNames: { '#pk': index.partitionKey },
      ExpressionAttributeValues: { ':pk': partition },
    };
  }

  private async listByType<T>(
    partition: string,
    options: PageOptions,
    what: string,
    filter?: Fragment,
  ): Promise<Page<T>> {
    const { items, lastKey } = await this.queryPage(
      withFilter(
        {
          ...this.indexQuery(GSI.byType, partition),
          ScanIndexForward: !options.newestFirst,
          Limit: checkLimit(options.limit),
          ExclusiveStartKey: startKeyFromCursor(options.cursor, GSI.byType.partitionKey, partition),
        },
        filter,
      ),
      what,
    );
    return this.page<T>(items, lastKey);
  }

  private async listByStatus<T>(
    partition: string,
    options: PageOptions & { dueBefore?: string },
    filter?: Fragment,
  ): Promise<Page<T>> {
    const base = this.indexQuery(GSI.byStatus, partition);
    const query: QueryCommandInput =
      options.dueBefore === undefined
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
              ':dueBefore': options.dueBefore,
            },
          };
    const { items, lastKey } = await this.queryPage(
      withFilter(
        {
          ...query,
          ScanIndexForward: true,
          Limit: checkLimit(options.limit),
          ExclusiveStartKey: startKeyFromCursor(
            options.cursor,
            GSI.byStatus.partitionKey,
            partition,
          ),
        },
        filter,
      ),
      `listByStatus ${partition}`,
    );
    return this.page<T>(items, lastKey);
  }

  private page<T>(
    items: Array<Record<string, unknown>>,
    lastKey: Record<string, unknown> | undefined,
  ): Page<T> {
    return {
      items: items.map((item) => stripKeys<T>(item)),
      ...(lastKey ? { cursor: encodeCursor(lastKey) } : {}),
    };
  }

  private async queryPage(
    input: QueryCommandInput,
    what: string,
  ): Promise<{ items: Array<Record<string, unknown>>; lastKey?: Record<string, unknown> }> {
    const output = await this.read(what, () => this.doc.send(new QueryCommand(input)));
    return { items: output.Items ?? [], lastKey: output.LastEvaluatedKey };
  }

  private async queryAll(
    input: QueryCommandInput,
    what: string,
  ): Promise<Array<Record<string, unknown>>> {
    const items: Array<Record<string, unknown>> = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.queryPage({ ...input, ExclusiveStartKey: startKey }, what);
      items.push(...page.items);
      startKey = page.lastKey;
    } while (startKey);
    return items;
  }

  /** Runs a read, translating SDK errors. */
  private async read<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw translateError(err, what);
    }
  }

  private nowIso(): string {
    return new Date(this.clock.now()).toISOString();
  }
}

/** Adds a FilterExpression to a query (placeholders merged with the key condition's). */
function withFilter(input: QueryCommandInput, filter: Fragment | undefined): QueryCommandInput {
  if (!filter) return input;
  const names: Names = { ...(input.ExpressionAttributeNames ?? {}) };
  const values: Values = { ...(input.ExpressionAttributeValues ?? {}) };
  mergeInto(names, filter.names);
  mergeInto(values, filter.values);
  return {
    ...input,
    FilterExpression: filter.expression,
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: values,
  };
}

function backoff(attempt: number): Promise<void> {
  const ms = Math.min(1_000, 25 * 2 ** attempt) * (0.5 + Math.random() / 2);
  return new Promise((resolve) => setTimeout(resolve, ms));
}
