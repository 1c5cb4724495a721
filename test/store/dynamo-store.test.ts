/**
 * The DynamoDB adapter against DynamoDB Local: conditions, index keys, pagination and the
 * error translation the core relies on.
 */
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { beforeEach, describe, expect, it } from 'vitest';
import { ValidationError, WriteConflictError } from '../../lambdas/core/errors.ts';
import type {
  Blueprint,
  CommandRecord,
  Lease,
  LogEvent,
  Resource,
  SlotLock,
} from '../../lambdas/core/model.ts';
import type { TxWrite } from '../../lambdas/core/ports.ts';
import { instrumentDynamoClient } from '../../lambdas/store/clients.ts';
import { DynamoStore } from '../../lambdas/store/dynamo-store.ts';
import { commandKey, leaseKey, lockShard } from '../../lambdas/store/keys.ts';
import { LOCK_SHARDS, STATUS_SHARDS, TTL_ATTRIBUTE } from '../../lambdas/store/schema.ts';
import { freshTable, makeStore, testClients } from '../support/env.ts';

const T0 = '2026-01-01T00:00:00.000Z';
const at = (minutes: number) => new Date(Date.parse(T0) + minutes * 60_000).toISOString();

function lease(overrides: Partial<Lease> = {}): Lease {
  return {
    id: 'L1',
    type: 'host',
    attributes: { platform: 'linux' },
    owner: 'alice',
    status: 'pending',
    version: 1,
    slotLocks: [],
    requestedAt: T0,
    updatedAt: T0,
    waitSeq: 0,
    requeues: 0,
    ...overrides,
  };
}

function resource(overrides: Partial<Resource> = {}): Resource {
  return {
    id: 'R1',
    blueprintId: 'pool',
    type: 'host',
    attributes: { platform: 'linux' },
    status: 'active',
    version: 1,
    slotLocks: [],
    capacity: 1,
    leaseCount: 0,
    uses: 0,
    createdAt: T0,
    updatedAt: T0,
    data: { hostId: 'h-1' },
    ...overrides,
  };
}

function blueprint(overrides: Partial<Blueprint> = {}): Blueprint {
  return {
    id: 'pool',
    type: 'synthetic',
    resourceType: 'host',
    description: 'a pool',
    attributes: { platform: 'linux' },
    state: 'enabled',
    limits: {
      maxResources: 2,
      leasesPerResource: 1,
      reclaimOnRelease: false,
      idleTtlSeconds: 600,
      idleGraceSeconds: 0,
      setupTimeoutSeconds: 300,
    },
    config: { hosts: 2 },
    version: 1,
    createdAt: T0,
    updatedAt: T0,
    health: { failureCount: 0 },
    ...overrides,
  };
}

function command(overrides: Partial<CommandRecord> = {}): CommandRecord {
  return {
    id: 'C1',
    leaseId: 'L1',
    owner: 'alice',
    status: 'queued',
    argv: ['make', 'test'],
    timeoutSeconds: 60,
    env: { TOKEN: 'secret' },
    attempt: 0,
    createdAt: T0,
    updatedAt: T0,
    ...overrides,
  };
}

const lock = (key: string, ownerId: string, createdAt = T0): SlotLock => ({
  key,
  ownerKind: 'lease',
  ownerId,
  createdAt,
});

const logEvent = (objectId: string, minute: number): LogEvent => ({
  objectId,
  seq: `${at(minute)}#${String(minute).padStart(4, '0')}`,
  at: at(minute),
  type: 'lease.waiting',
  message: `waited ${minute}`,
});

/** The WriteConflictError a promise rejects with (fails the test if it resolves). */
async function conflictOf(promise: Promise<unknown>): Promise<WriteConflictError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WriteConflictError);
  return err as WriteConflictError;
}

async function rawItem(store: DynamoStore, key: { PK: string; SK: string }) {
  const doc = DynamoDBDocumentClient.from(testClients().dynamo);
  return (await doc.send(new GetCommand({ TableName: store.tableName, Key: key }))).Item;
}

let store: DynamoStore;
beforeEach(async () => {
  store = await makeStore({ prefix: 'store-test' });
});

describe('leases', () => {
  it('round-trips a lease without key attributes and refuses a duplicate id', async () => {
    const original = lease({ blueprintIds: ['pool'], ttlSeconds: 60 });
    await store.transact([{ op: 'createLease', lease: original }]);
    expect(await store.getLease('L1')).toEqual(original);
    expect(await store.getLease('missing')).toBeUndefined();

    const err = await conflictOf(store.transact([{ op: 'createLease', lease: original }]));
    // The failed write is named by its label and comes with the item that stood in its way.
    expect(err.failures).toEqual([
      { label: 'createLease:L1', reason: 'condition', item: original },
    ]);
  });

  it('applies a transition only at the expected status and version', async () => {
    await store.transact([{ op: 'createLease', lease: lease() }]);
    await store.transact([
      {
        op: 'updateLease',
        id: 'L1',
        type: 'host',
        expect: { status: 'pending', version: 1 },
        set: { status: 'acquired', resourceId: 'R1', acquiredAt: at(1), updatedAt: at(1) },
      },
    ]);
    const acquired = await store.getLease('L1');
    expect(acquired).toMatchObject({
      status: 'acquired',
      version: 2,
      resourceId: 'R1',
      updatedAt: at(1),
    });

    // A stale writer still believes version 1.
    const err = await conflictOf(
      store.transact([
        {
          op: 'updateLease',
          id: 'L1',
          type: 'host',
          expect: { status: 'pending', version: 1 },
          set: { status: 'broken' },
        },
      ]),
    );
    expect(err.failures).toEqual([
      { label: 'updateLease:L1', reason: 'condition', item: acquired },
    ]);
    expect(err.failed('updateLease:L1', 'condition')).toBe(true);
    expect(err.code).toBe('write_conflict');
    expect(await store.getLease('L1')).toEqual(acquired);

    // A missing lease fails the same way (no item to show).
    const missing = await conflictOf(
      store.transact([
        {
          op: 'updateLease',
          id: 'nope',
          type: 'host',
          expect: { status: 'pending', version: 1 },
          set: { status: 'acquired' },
        },
      ]),
    );
    expect(missing.failures).toEqual([{ label: 'updateLease:nope', reason: 'condition' }]);
  });

  it('removes attributes whose patch value is null', async () => {
    await store.transact([
      { op: 'createLease', lease: lease({ resourceId: 'R1', waitReason: 'no capacity' }) },
    ]);
    await store.transact([
      {
        op: 'updateLease',
        id: 'L1',
        type: 'host',
        expect: { status: 'pending', version: 1 },
        set: { resourceId: null, waitReason: undefined, endReason: 'kept' },
      },
    ]);
    const updated = await store.getLease('L1');
    expect(updated).not.toHaveProperty('resourceId');
    expect(updated).toMatchObject({ waitReason: 'no capacity', endReason: 'kept', version: 2 });
  });

  it('moves the index keys with the status', async () => {
    await store.transact([{ op: 'createLease', lease: lease({ sweepAt: at(5) }) }]);
    expect((await store.listLeasesByType('host', 'pending')).items.map((l) => l.id)).toEqual([
      'L1',
    ]);
    expect((await store.listLeasesByStatus('pending')).items.map((l) => l.id)).toEqual(['L1']);

    await store.transact([
      {
        op: 'updateLease',
        id: 'L1',
        type: 'host',
        expect: { status: 'pending', version: 1 },
        set: { status: 'acquired', sweepAt: at(9) },
      },
    ]);
    expect((await store.listLeasesByType('host', 'pending')).items).toEqual([]);
    expect((await store.listLeasesByStatus('pending')).items).toEqual([]);
    expect((await store.listLeasesByType('host', 'acquired')).items.map((l) => l.id)).toEqual([
      'L1',
    ]);
    const byStatus = await store.listLeasesByStatus('acquired', { dueBefore: at(9) });
    expect(byStatus.items).toEqual([await store.getLease('L1')]);
    expect((await store.listLeasesByStatus('acquired', { dueBefore: at(8) })).items).toEqual([]);
  });

  it('collapses duplicate wait chains: of two writers with the same waitSeq exactly one wins', async () => {
    await store.transact([{ op: 'createLease', lease: lease() }]);
    const mark = (reason: string): TxWrite => ({
      op: 'markLeaseWaiting',
      id: 'L1',
      type: 'host',
      expectWaitSeq: 0,
      set: { waitReason: reason, checkedAt: at(1), sweepAt: at(3) },
    });
    const results = await Promise.allSettled([
      store.transact([mark('first')]),
      store.transact([mark('second')]),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.find((r) => r.status === 'rejected');
    expect(rejected?.status === 'rejected' && rejected.reason).toBeInstanceOf(WriteConflictError);

    const waiting = await store.getLease('L1');
    expect(waiting).toMatchObject({ waitSeq: 1, version: 1, checkedAt: at(1), sweepAt: at(3) });
    expect(['first', 'second']).toContain(waiting?.waitReason);
    expect((await store.listLeasesByStatus('pending', { dueBefore: at(3) })).items).toHaveLength(1);

    // Not pending any more: the chain stops.
    await store.transact([
      {
        op: 'updateLease',
        id: 'L1',
        type: 'host',
        expect: { status: 'pending', version: 1 },
        set: { status: 'acquired' },
      },
    ]);
    await conflictOf(store.transact([{ ...mark('late'), expectWaitSeq: 1 } as TxWrite]));
  });

  it('counts the pending leases of a type requested earlier', async () => {
    await store.transact([
      { op: 'createLease', lease: lease({ id: 'a', requestedAt: at(1) }) },
      { op: 'createLease', lease: lease({ id: 'b', requestedAt: at(2) }) },
      { op: 'createLease', lease: lease({ id: 'c', requestedAt: at(2) }) },
      { op: 'createLease', lease: lease({ id: 'd', requestedAt: at(3) }) },
      { op: 'createLease', lease: lease({ id: 'other', type: 'dir', requestedAt: at(0) }) },
      { op: 'createLease', lease: lease({ id: 'done', status: 'acquired', requestedAt: at(0) }) },
    ]);
    expect(await store.countWaitingAhead('host', at(1), 'a')).toBe(0);
    expect(await store.countWaitingAhead('host', at(2), 'c')).toBe(2); // a, and b (same time, smaller id)
    expect(await store.countWaitingAhead('host', at(3), 'd')).toBe(3);
    const oldestFirst = await store.listLeasesByType('host', 'pending', { limit: 2 });
    expect(oldestFirst.items.map((l) => l.id)).toEqual(['a', 'b']);
    const rest = await store.listLeasesByType('host', 'pending', { cursor: oldestFirst.cursor });
    expect(rest.items.map((l) => l.id)).toEqual(['c', 'd']);
  });

  it('takes destroyed leases out of the status index and gives them a TTL', async () => {
    await store.transact([
      { op: 'createLease', lease: lease({ status: 'released', sweepAt: at(1) }) },
    ]);
    await store.transact([
      {
        op: 'updateLease',
        id: 'L1',
        type: 'host',
        expect: { status: 'released', version: 1 },
        set: { status: 'destroyed', destroyedAt: at(2), sweepAt: null },
      },
    ]);
    expect((await store.listLeasesByStatus('released')).items).toEqual([]);
    expect((await store.listLeasesByStatus('destroyed')).items).toEqual([]);
    expect(await store.getLease('L1')).toMatchObject({ status: 'destroyed', version: 2 });
    const raw = await rawItem(store, leaseKey('L1'));
    expect(raw).not.toHaveProperty('GSI2PK');
    expect(raw).not.toHaveProperty('GSI2SK');
    expect(raw?.[TTL_ATTRIBUTE]).toBe(Date.parse(at(2)) / 1000 + 14 * 86_400);
  });
});

describe('resources', () => {
  const attach = (statusIn: Resource['status'][] = ['pending', 'active']): TxWrite => ({
    op: 'attachLease',
    resourceId: 'R1',
    statusIn,
  });

  it('attaches leases up to capacity, never to a suspect or finished resource', async () => {
    await store.transact([{ op: 'createResource', resource: resource({ capacity: 2 }) }]);
    await store.transact([attach()]);
    await store.transact([attach()]);
    expect((await conflictOf(store.transact([attach()]))).failures).toEqual([
      {
        label: 'attachLease:R1',
        reason: 'condition',
        item: resource({ capacity: 2, leaseCount: 2, uses: 2 }),
      },
    ]);
    expect(await store.getResource('R1')).toMatchObject({ leaseCount: 2, uses: 2, version: 1 });

    await store.transact([{ op: 'detachLease', resourceId: 'R1', at: at(4) }]);
    expect(await store.getResource('R1')).toMatchObject({
      leaseCount: 1,
      uses: 2,
      lastDetachedAt: at(4),
    });

    // Suspect: no new leases until cleared.
    await store.transact([
      {
        op: 'updateResource',
        id: 'R1',
        type: 'host',
        expect: { status: 'active', version: 1 },
        set: { suspectSince: at(5), suspectReason: 'command failed' },
      },
    ]);
    await conflictOf(store.transact([attach()]));
    await store.transact([
      {
        op: 'updateResource',
        id: 'R1',
        type: 'host',
        expect: { status: 'active', version: 2 },
        set: { suspectSince: null, suspectReason: null },
      },
    ]);
    await store.transact([attach()]);

    // Status outside statusIn.
    await conflictOf(store.transact([attach(['pending'])]));
    // Missing resource.
    await conflictOf(
      store.transact([{ op: 'attachLease', resourceId: 'nope', statusIn: ['active'] }]),
    );
    await conflictOf(store.transact([{ op: 'detachLease', resourceId: 'nope', at: at(1) }]));
  });

  it('blocks a requireNoLeases transition while leases are attached', async () => {
    await store.transact([{ op: 'createResource', resource: resource() }]);
    await store.transact([attach()]);
    const reclaim: TxWrite = {
      op: 'updateResource',
      id: 'R1',
      type: 'host',
      expect: { status: 'active', version: 1 },
      set: { status: 'released', releasedAt: at(3) },
      requireNoLeases: true,
    };
    await conflictOf(store.transact([reclaim]));
    await store.transact([{ op: 'detachLease', resourceId: 'R1', at: at(2) }]);
    await store.transact([reclaim]);
    expect(await store.getResource('R1')).toMatchObject({ status: 'released', version: 2 });
  });

  it('lists live (pending and active) resources of a type, not released ones', async () => {
    await store.transact([
      { op: 'createResource', resource: resource({ id: 'p', status: 'pending' }) },
      { op: 'createResource', resource: resource({ id: 'a', status: 'active' }) },
      { op: 'createResource', resource: resource({ id: 'r', status: 'released' }) },
      { op: 'createResource', resource: resource({ id: 'other', type: 'dir' }) },
    ]);
    const live = await store.listLiveResources('host');
    expect(live.map((r) => r.id).sort()).toEqual(['a', 'p']);
    expect(live.find((r) => r.id === 'a')).toEqual(resource({ id: 'a' }));

    await store.transact([
      {
        op: 'updateResource',
        id: 'a',
        type: 'host',
        expect: { status: 'active', version: 1 },
        set: { status: 'broken', endReason: 'broken: gone' },
      },
    ]);
    expect((await store.listLiveResources('host')).map((r) => r.id)).toEqual(['p']);
    expect((await store.listResourcesByStatus('broken')).items.map((r) => r.id)).toEqual(['a']);
  });

  it('filters and pages by sweepAt, unscheduled objects last and never due', async () => {
    await store.transact([
      { op: 'createResource', resource: resource({ id: 'late', sweepAt: at(30) }) },
      { op: 'createResource', resource: resource({ id: 'early', sweepAt: at(10) }) },
      { op: 'createResource', resource: resource({ id: 'mid', sweepAt: at(20) }) },
      { op: 'createResource', resource: resource({ id: 'never' }) },
    ]);
    const due = await store.listResourcesByStatus('active', { dueBefore: at(20) });
    expect(due.items.map((r) => r.id)).toEqual(['early', 'mid']);

    const first = await store.listResourcesByStatus('active', { limit: 3 });
    expect(first.items.map((r) => r.id)).toEqual(['early', 'mid', 'late']);
    expect(first.cursor).toBeDefined();
    const second = await store.listResourcesByStatus('active', { limit: 3, cursor: first.cursor });
    expect(second.items.map((r) => r.id)).toEqual(['never']);
    expect(second.cursor).toBeUndefined();

    await expect(
      store.listLeasesByStatus('pending', { cursor: first.cursor }),
    ).rejects.toBeInstanceOf(ValidationError);
    await expect(
      store.listResourcesByStatus('active', { cursor: 'garbage!' }),
    ).rejects.toBeInstanceOf(ValidationError);
  });

  it('checks a resource status without writing it (alone and in a transaction)', async () => {
    await store.transact([{ op: 'createResource', resource: resource({ status: 'pending' }) }]);
    await store.transact([{ op: 'checkResource', resourceId: 'R1', statusIn: ['pending'] }]);
    await conflictOf(
      store.transact([{ op: 'checkResource', resourceId: 'R1', statusIn: ['active'] }]),
    );
    const err = await conflictOf(
      store.transact([
        { op: 'createLease', lease: lease() },
        { op: 'checkResource', resourceId: 'R1', statusIn: ['active'] },
      ]),
    );
    expect(err.failures).toEqual([
      { label: 'checkResource:R1', reason: 'condition', item: resource({ status: 'pending' }) },
    ]);
    expect(await store.getLease('L1')).toBeUndefined();
  });
});

describe('slot locks', () => {
  it('cancels the whole transaction when a held lock is taken, naming the failed write', async () => {
    await store.transact([{ op: 'takeSlotLock', lock: lock('pool:slot:0', 'L0') }]);
    const err = await conflictOf(
      store.transact([
        { op: 'createLease', lease: lease({ id: 'L2' }) },
        { op: 'takeSlotLock', lock: lock('pool:slot:0', 'L2') },
        { op: 'appendLog', event: logEvent('L2', 1) },
      ]),
    );
    // The lock's holder comes back with the failure: the loser learns who took the slot.
    expect(err.failures).toEqual([
      { label: 'takeSlotLock:pool:slot:0', reason: 'condition', item: lock('pool:slot:0', 'L0') },
    ]);
    expect(err.labels).toEqual(['takeSlotLock:pool:slot:0']);
    expect(err.message).toContain('takeSlotLock:pool:slot:0 (for lease L2): condition');
    expect(await store.getLease('L2')).toBeUndefined();
    expect(await store.listLogs('L2')).toEqual([]);
    expect(await store.getSlotLocks(['pool:slot:0'])).toEqual([lock('pool:slot:0', 'L0')]);
  });

  it('frees a lock only for its owner', async () => {
    await store.transact([{ op: 'takeSlotLock', lock: lock('k', 'owner') }]);
    await conflictOf(store.transact([{ op: 'freeSlotLock', key: 'k', ownerId: 'intruder' }]));
    expect(await store.deleteSlotLockIfOwner('k', 'intruder')).toBe(false);
    await store.transact([{ op: 'freeSlotLock', key: 'k', ownerId: 'owner' }]);
    expect(await store.getSlotLocks(['k'])).toEqual([]);
    // Freeing a missing lock is a failure too.
    await conflictOf(store.transact([{ op: 'freeSlotLock', key: 'k', ownerId: 'owner' }]));
    await store.transact([{ op: 'takeSlotLock', lock: lock('k', 'next') }]);
    expect(await store.deleteSlotLockIfOwner('k', 'next')).toBe(true);
  });

  it('lets exactly one of 20 concurrent takers win a lock', async () => {
    store.resetStats();
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        store.transact([{ op: 'takeSlotLock', lock: lock('contended', `L${i}`) }]),
      ),
    );
    const winners = results.flatMap((r, i) => (r.status === 'fulfilled' ? [`L${i}`] : []));
    expect(winners).toHaveLength(1);
    for (const r of results) {
      if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(WriteConflictError);
    }
    expect((await store.getSlotLocks(['contended']))[0]?.ownerId).toBe(winners[0]);
    expect(store.stats.byOperation.PutItem).toBe(20);
  });

  it('reads many locks in batches and lists them across shards with a cursor', async () => {
    const keys = Array.from({ length: 130 }, (_, i) => `pool:slot:${i}`);
    for (let i = 0; i < keys.length; i += 25) {
      await store.transact(
        keys.slice(i, i + 25).map((key) => ({ op: 'takeSlotLock', lock: lock(key, `o-${key}`) })),
      );
    }
    expect(new Set(keys.map(lockShard)).size).toBe(LOCK_SHARDS);

    store.resetStats();
    const found = await store.getSlotLocks([...keys, 'missing', keys[0] as string]);
    expect(found.map((l) => l.key).sort()).toEqual([...keys].sort());
    expect(store.stats.byOperation.BatchGetItem).toBe(2);

    const listed: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await store.listSlotLocks({ limit: 40, cursor });
      expect(page.items.length).toBeLessThanOrEqual(40);
      listed.push(...page.items.map((l) => l.key));
      cursor = page.cursor;
      pages += 1;
    } while (cursor);
    expect(listed.sort()).toEqual([...keys].sort());
    expect(pages).toBeGreaterThanOrEqual(4);
    expect((await store.listSlotLocks()).items).toHaveLength(130);
  });
});

describe('commands', () => {
  const ids = (page: { items: CommandRecord[] }) => page.items.map((c) => c.id);
  const updateCommand = (
    expect: { status: CommandRecord['status']; attempt: number; polls?: number },
    set: Extract<TxWrite, { op: 'updateCommand' }>['set'],
    id = 'C1',
  ): TxWrite => ({ op: 'updateCommand', leaseId: 'L1', id, expect, set });

  it('lists a queued command by status and moves it with its status and sweepAt', async () => {
    const queued = command({ sweepAt: at(5) });
    await store.transact([{ op: 'createCommand', command: queued }]);
    expect(await store.getCommand('L1', 'C1')).toEqual(queued);
    expect((await store.listCommandsByStatus('queued')).items).toEqual([queued]);

    await store.transact([
      updateCommand(
        { status: 'queued', attempt: 0 },
        { status: 'running', attempt: 1, startedAt: at(1), sweepAt: at(9) },
      ),
    ]);
    expect((await store.listCommandsByStatus('queued')).items).toEqual([]);
    const running = await store.listCommandsByStatus('running', { dueBefore: at(9) });
    expect(running.items).toEqual([await store.getCommand('L1', 'C1')]);
    expect(running.items[0]).toMatchObject({ status: 'running', attempt: 1, sweepAt: at(9) });
    expect((await store.listCommandsByStatus('running', { dueBefore: at(8) })).items).toEqual([]);

    // A new attempt without a sweepAt keeps the command where it is filed.
    await store.transact([
      updateCommand({ status: 'running', attempt: 1 }, { status: 'running', attempt: 2 }),
    ]);
    expect(ids(await store.listCommandsByStatus('running', { dueBefore: at(9) }))).toEqual(['C1']);

    await store.transact([
      updateCommand({ status: 'running', attempt: 2 }, { status: 'cancelling', sweepAt: at(12) }),
    ]);
    expect((await store.listCommandsByStatus('running')).items).toEqual([]);
    expect(ids(await store.listCommandsByStatus('cancelling', { dueBefore: at(12) }))).toEqual([
      'C1',
    ]);
  });

  it('takes a command out of the status index when it ends', async () => {
    await store.transact([{ op: 'createCommand', command: command({ sweepAt: at(5) }) }]);
    await store.transact([
      updateCommand({ status: 'queued', attempt: 0 }, { status: 'running', attempt: 1 }),
    ]);
    // Moved partition, kept its sweepAt position.
    expect(ids(await store.listCommandsByStatus('running', { dueBefore: at(5) }))).toEqual(['C1']);
    await store.transact([
      updateCommand(
        { status: 'running', attempt: 1 },
        { status: 'finished', finishedAt: at(6), env: null, sweepAt: null },
      ),
    ]);
    for (const status of ['queued', 'running', 'cancelling', 'finished'] as const) {
      expect((await store.listCommandsByStatus(status)).items).toEqual([]);
    }
    const raw = await rawItem(store, commandKey('L1', 'C1'));
    expect(raw).not.toHaveProperty('GSI2PK');
    expect(raw).not.toHaveProperty('GSI2SK');
    expect(raw).not.toHaveProperty('env');
    expect(raw?.[TTL_ATTRIBUTE]).toBe(Date.parse(T0) / 1000 + 14 * 86_400);
    expect(await store.getCommand('L1', 'C1')).toMatchObject({ status: 'finished' });

    // Created already ended: never indexed.
    await store.transact([
      { op: 'createCommand', command: command({ id: 'C2', status: 'cancelled', sweepAt: at(1) }) },
    ]);
    expect((await store.listCommandsByStatus('cancelled')).items).toEqual([]);
    expect(await rawItem(store, commandKey('L1', 'C2'))).not.toHaveProperty('GSI2PK');
  });

  it('bounds and pages the listing by sweepAt, unscheduled commands last and never due', async () => {
    await store.transact([
      { op: 'createCommand', command: command({ id: 'late', sweepAt: at(30) }) },
      { op: 'createCommand', command: command({ id: 'early', sweepAt: at(10) }) },
      { op: 'createCommand', command: command({ id: 'mid', sweepAt: at(20) }) },
      { op: 'createCommand', command: command({ id: 'never' }) },
      {
        op: 'createCommand',
        command: command({ id: 'other-lease', leaseId: 'L2', sweepAt: at(15) }),
      },
    ]);
    expect(ids(await store.listCommandsByStatus('queued', { dueBefore: at(20) }))).toEqual([
      'early',
      'other-lease',
      'mid',
    ]);
    expect(ids(await store.listCommandsByStatus('queued', { dueBefore: at(9) }))).toEqual([]);
    const first = await store.listCommandsByStatus('queued', { limit: 4 });
    expect(ids(first)).toEqual(['early', 'other-lease', 'mid', 'late']);
    expect(first.cursor).toBeDefined();
    const second = await store.listCommandsByStatus('queued', { limit: 4, cursor: first.cursor });
    expect(ids(second)).toEqual(['never']);
    expect(second.cursor).toBeUndefined();
    await expect(
      store.listCommandsByStatus('running', { cursor: first.cursor }),
    ).rejects.toBeInstanceOf(ValidationError);
  });

  it('rejects a stale poll: the poll count is part of the condition (missing counts as 0)', async () => {
    await store.transact([
      { op: 'createCommand', command: command({ status: 'running', attempt: 1 }) },
    ]);
    const poll = (polls: number) =>
      updateCommand({ status: 'running', attempt: 1, polls }, { polls: polls + 1 });
    await store.transact([poll(0)]);
    expect(await store.getCommand('L1', 'C1')).toMatchObject({ polls: 1 });

    const stale = await conflictOf(store.transact([poll(0)]));
    expect(stale.labels).toEqual(['updateCommand:L1/C1']);
    expect(stale.failed('updateCommand:L1/C1', 'condition')).toBe(true);
    expect(stale.message).toContain('updateCommand:L1/C1 (expect running attempt 1 polls 0)');
    expect(stale.failures[0]?.item).toMatchObject({ polls: 1, env: { TOKEN: 'secret' } });
    // The existing record stays out of the error's context (logged, shown): it may hold secrets.
    expect(JSON.stringify(stale.context)).not.toContain('secret');
    await conflictOf(store.transact([poll(2)]));

    // Two pollers that read the same count: exactly one records its poll.
    const results = await Promise.allSettled([
      store.transact([poll(1)]),
      store.transact([poll(1)]),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(await store.getCommand('L1', 'C1')).toMatchObject({ polls: 2, status: 'running' });

    // Without expect.polls the poll count is not checked.
    await store.transact([updateCommand({ status: 'running', attempt: 1 }, { polls: 7 })]);
    expect(await store.getCommand('L1', 'C1')).toMatchObject({ polls: 7 });
  });
});

describe('logs, records, blueprints', () => {
  it('pages logs oldest first after a given seq', async () => {
    await store.transact(
      [3, 1, 4, 2, 5].map((m) => ({ op: 'appendLog', event: logEvent('L1', m) })),
    );
    await store.transact([{ op: 'appendLog', event: logEvent('other', 0) }]);
    const first = await store.listLogs('L1', { limit: 2 });
    expect(first.map((e) => e.message)).toEqual(['waited 1', 'waited 2']);
    const next = await store.listLogs('L1', { after: first.at(-1)?.seq, limit: 2 });
    expect(next.map((e) => e.message)).toEqual(['waited 3', 'waited 4']);
    expect(await store.listLogs('L1', { after: next.at(-1)?.seq })).toEqual([logEvent('L1', 5)]);
    expect(await store.listLogs('L1')).toHaveLength(5);
  });

  it('appends and lists records per scope in order', async () => {
    await store.appendRecord('bill', { host: 'h-1', event: 'launch' });
    await store.appendRecord('bill', { host: 'h-1', event: 'terminate', nested: { n: 1 } });
    await store.appendRecord('other', { x: 1 });
    expect(await store.listRecords('bill')).toEqual([
      { host: 'h-1', event: 'launch' },
      { host: 'h-1', event: 'terminate', nested: { n: 1 } },
    ]);
    expect(await store.listRecords('empty')).toEqual([]);
  });

  it('creates, replaces and lists blueprints, leaving health to setBlueprintHealth', async () => {
    await store.createBlueprint(blueprint());
    await conflictOf(store.createBlueprint(blueprint()));
    await store.setBlueprintHealth('pool', { failureCount: 2, lastFailure: 'quota' });

    const { description: _dropped, ...withoutDescription } = blueprint({
      state: 'draining',
      health: { failureCount: 0 },
      updatedAt: at(1),
    });
    await store.updateBlueprint(withoutDescription, 1);
    const stored = await store.getBlueprint('pool');
    expect(stored).toEqual({
      ...withoutDescription,
      version: 2,
      health: { failureCount: 2, lastFailure: 'quota' },
    });
    await conflictOf(store.updateBlueprint(blueprint(), 1));

    await store.createBlueprint(blueprint({ id: 'another' }));
    expect((await store.listBlueprints()).map((b) => b.id)).toEqual(['another', 'pool']);
    await expect(store.setBlueprintHealth('ghost', { failureCount: 1 })).rejects.toMatchObject({
      code: 'not_found',
    });
  });
});

describe('call accounting', () => {
  /** A store on a client that asks DynamoDB for consumed capacity, as the bench's do. */
  async function measuredStore(): Promise<DynamoStore> {
    const { client, tableName } = await freshTable('store-test');
    instrumentDynamoClient(client, { consumedCapacity: true });
    return new DynamoStore({ client, tableName });
  }

  it('counts calls per operation and consumed capacity', async () => {
    const store = await measuredStore();
    store.resetStats();
    expect(store.stats).toMatchObject({ calls: 0, byOperation: {}, consumedCapacity: 0 });
    await store.transact([{ op: 'createLease', lease: lease() }]);
    await store.transact([
      { op: 'createLease', lease: lease({ id: 'L2' }) },
      { op: 'appendLog', event: logEvent('L2', 1) },
    ]);
    await store.getLease('L1');
    await store.listLeasesByStatus('pending');
    // A status listing queries each of its shards (schema.ts, STATUS_SHARDS).
    expect(store.stats.calls).toBe(3 + STATUS_SHARDS);
    expect(store.stats.byOperation).toEqual({
      PutItem: 1,
      TransactWriteItems: 1,
      GetItem: 1,
      Query: STATUS_SHARDS,
    });
    // Put 1 WCU + transaction 2 x 2 WCU + a consistent read 1 RCU + an index query 0.5 RCU.
    expect(store.stats.consumedCapacity).toBeGreaterThanOrEqual(6);
    store.resetStats();
    expect(store.stats.calls).toBe(0);
  });

  it('never asks for consumed capacity unless the client was told to', async () => {
    const sent: string[] = [];
    const { client, tableName } = await freshTable('store-test');
    // What goes on the wire, after every middleware that could add to the request.
    client.middlewareStack.add(
      (next) => async (args) => {
        const body = (args.request as { body?: unknown }).body;
        sent.push(body instanceof Uint8Array ? new TextDecoder().decode(body) : String(body));
        return next(args);
      },
      { step: 'finalizeRequest', name: 'testCaptureBody' },
    );
    const plain = new DynamoStore({ client, tableName });
    await plain.transact([{ op: 'createLease', lease: lease() }]);
    await plain.getLease('L1');
    await plain.listLeasesByStatus('pending');
    expect(plain.stats.calls).toBe(2 + STATUS_SHARDS);
    expect(plain.stats.consumedCapacity).toBe(0);
    expect(sent).toHaveLength(2 + STATUS_SHARDS);
    for (const body of sent) {
      expect(body).toContain('"TableName"');
      expect(body).not.toContain('ReturnConsumedCapacity');
    }

    // Asking later (the bench instruments the shared client after stores were built) works.
    instrumentDynamoClient(client, { consumedCapacity: true });
    await plain.getLease('L1');
    expect(sent.at(-1)).toContain('"ReturnConsumedCapacity":"TOTAL"');
    expect(plain.stats.consumedCapacity).toBeGreaterThan(0);
  });
});
