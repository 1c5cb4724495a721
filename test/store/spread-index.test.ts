/**
 * The spread index partitions (issue 14 item 4, schema.ts) against DynamoDB Local: GSI2 status
 * partitions are spread over STATUS_SHARDS shards by a hash of the id, and GSI1's live
 * resources over pool-slot blocks. Items land in their shard (read through the index itself,
 * a raw Query), every reader still finds every item (also items written before the spread,
 * with shard 0's key, i.e. an upgrade), paging visits every item once in sort order, and a pool
 * of up to 32 per blueprint costs one query.
 */
import { DynamoDBDocumentClient, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { beforeEach, describe, expect, it } from 'vitest';
import { slotKeys } from '../../lambdas/core/engine.ts';
import { ValidationError } from '../../lambdas/core/errors.ts';
import type { CommandRecord, Lease, Resource } from '../../lambdas/core/model.ts';
import type { Page, PageOptions } from '../../lambdas/core/ports.ts';
import { encodeCursor } from '../../lambdas/store/cursors.ts';
import type { DynamoStore } from '../../lambdas/store/dynamo-store.ts';
import {
  blocksFor,
  commandItem,
  leaseItem,
  liveResourcePartitions,
  poolBlock,
  resourceItem,
  shardedPartition,
  statusShard,
} from '../../lambdas/store/keys.ts';
import { GSI, STATUS_SHARDS } from '../../lambdas/store/schema.ts';
import { makeStore, testClients } from '../support/env.ts';

const T0 = '2026-01-01T00:00:00.000Z';
const at = (minutes: number) => new Date(Date.parse(T0) + minutes * 60_000).toISOString();

function lease(id: string, overrides: Partial<Lease> = {}): Lease {
  return {
    id,
    type: 'host',
    attributes: {},
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

function resource(id: string, slot: number | undefined, overrides: Partial<Resource> = {}) {
  return {
    id,
    blueprintId: 'pool',
    type: 'host',
    attributes: {},
    status: 'active',
    version: 1,
    slotLocks: slot === undefined ? [] : [slotKeys.pool('pool', slot)],
    capacity: 1,
    leaseCount: 1,
    uses: 1,
    createdAt: T0,
    updatedAt: T0,
    data: {},
    ...overrides,
  } satisfies Resource;
}

/** `count` ids per status shard, so every shard holds some. */
function idsOverShards(prefix: string, count: number): string[] {
  const perShard = new Map<number, string[]>();
  for (
    let n = 0;
    [...perShard.values()].filter((ids) => ids.length >= count).length < STATUS_SHARDS;
    n++
  ) {
    const id = `${prefix}${n}`;
    const ids = perShard.get(statusShard(id)) ?? [];
    if (ids.length < count) ids.push(id);
    perShard.set(statusShard(id), ids);
  }
  return [...perShard.values()].flat();
}

const doc = () => DynamoDBDocumentClient.from(testClients().dynamo);

/** The ids a raw query of one index partition returns. */
async function partitionHolds(
  store: DynamoStore,
  index: (typeof GSI)[keyof typeof GSI],
  partition: string,
): Promise<string[]> {
  const out = await doc().send(
    new QueryCommand({
      TableName: store.tableName,
      IndexName: index.name,
      KeyConditionExpression: '#pk = :pk',
      ExpressionAttributeNames: { '#pk': index.partitionKey },
      ExpressionAttributeValues: { ':pk': partition },
    }),
  );
  return (out.Items ?? []).map((item) => String(item.id)).sort();
}

/** Every page of a listing, and how many pages it took. */
async function allPages<T>(
  fetch: (o: PageOptions) => Promise<Page<T>>,
  limit: number,
): Promise<{ items: T[]; pages: number }> {
  const items: T[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await fetch({ limit, ...(cursor ? { cursor } : {}) });
    expect(page.items.length).toBeLessThanOrEqual(limit);
    items.push(...page.items);
    cursor = page.cursor;
    pages++;
    expect(pages).toBeLessThan(100);
  } while (cursor);
  return { items, pages };
}

let store: DynamoStore;
beforeEach(async () => {
  store = await makeStore({ prefix: 'spread-index' });
});

describe('GSI2 status partitions spread over shards', () => {
  it('puts each lease, resource and command in its shard, shard 0 under the old key', async () => {
    const ids = idsOverShards('L', 1);
    await store.transact(ids.map((id) => ({ op: 'createLease', lease: lease(id) })));
    for (const id of ids) {
      const shard = statusShard(id);
      const partition = shardedPartition('LEASE#pending', shard);
      expect(partition).toBe(shard === 0 ? 'LEASE#pending' : `LEASE#pending#${shard}`);
      expect(await partitionHolds(store, GSI.byStatus, partition)).toEqual([id]);
    }
    expect(resourceItem(resource('R7', 1)).GSI2PK).toBe(
      shardedPartition('RES#active', statusShard('R7')),
    );
    const cmd: CommandRecord = {
      id: 'C9',
      leaseId: 'L1',
      owner: 'alice',
      status: 'queued',
      argv: ['true'],
      timeoutSeconds: 60,
      env: {},
      attempt: 0,
      createdAt: T0,
      updatedAt: T0,
    };
    expect(commandItem(cmd).GSI2PK).toBe(shardedPartition('CMD#queued', statusShard('C9')));

    // A transition moves it to the new status's partition of the same shard.
    const [moved] = ids;
    await store.transact([
      {
        op: 'updateLease',
        id: moved as string,
        type: 'host',
        expect: { status: 'pending', version: 1 },
        set: { status: 'acquired', sweepAt: at(5) },
      },
    ]);
    expect(
      await partitionHolds(
        store,
        GSI.byStatus,
        shardedPartition('LEASE#acquired', statusShard(moved as string)),
      ),
    ).toEqual([moved]);
  });

  it('pages every shard in sweepAt order, each item once, with dueBefore and a filter', async () => {
    const ids = idsOverShards('L', 3);
    // sweepAt interleaves the shards; one lease per shard is bob's.
    const leases = ids.map((id, n) =>
      lease(id, { sweepAt: at((n * 7) % ids.length), owner: n % 4 === 0 ? 'bob' : 'alice' }),
    );
    await store.transact(leases.map((l) => ({ op: 'createLease', lease: l })));

    const { items, pages } = await allPages((o) => store.listLeasesByStatus('pending', o), 2);
    expect(items.map((l) => l.id).sort()).toEqual([...ids].sort());
    expect(pages).toBeGreaterThanOrEqual(ids.length / 2);
    const order = items.map((l) => l.sweepAt as string);
    expect(order).toEqual([...order].sort());

    const dueBefore = at(5);
    const due = await allPages((o) => store.listLeasesByStatus('pending', { ...o, dueBefore }), 3);
    expect(due.items.map((l) => l.id).sort()).toEqual(
      leases
        .filter((l) => (l.sweepAt as string) <= dueBefore)
        .map((l) => l.id)
        .sort(),
    );

    const bobs = await allPages(
      (o) => store.listLeasesByStatus('pending', { ...o, owner: 'bob' }),
      1,
    );
    // A filter empties some shards' pages: still in order, since no page runs ahead of a
    // shard that stopped early.
    const bobOrder = bobs.items.map((l) => l.sweepAt as string);
    expect(bobOrder).toEqual([...bobOrder].sort());
    expect(bobs.items.map((l) => l.id).sort()).toEqual(
      leases
        .filter((l) => l.owner === 'bob')
        .map((l) => l.id)
        .sort(),
    );

    // One call without a limit sees everything (no page of DynamoDB's was cut short here).
    const whole = await store.listLeasesByStatus('pending');
    expect(whole.cursor).toBeUndefined();
    expect(whole.items).toHaveLength(ids.length);
  });

  it('a filter that empties the page of a shard does not let the page run ahead of that shard', async () => {
    const ids = idsOverShards('L', 3);
    const [x0, x1, x2, y0] = ids as [string, string, string, string];
    expect(statusShard(x0)).toBe(statusShard(x2));
    expect(statusShard(y0)).not.toBe(statusShard(x0));
    // Shard X: alice at 0, bob at 1 and 3; shard Y: bob at 2. With a limit of 1, X's first page
    // is alice's (filtered out, so empty but cut short at 0): bob at 2 must wait for bob at 1.
    const leases = [
      lease(x0, { sweepAt: at(0) }),
      lease(x1, { sweepAt: at(1), owner: 'bob' }),
      lease(x2, { sweepAt: at(3), owner: 'bob' }),
      lease(y0, { sweepAt: at(2), owner: 'bob' }),
    ];
    await store.transact(leases.map((l) => ({ op: 'createLease', lease: l })));
    const bobs = await allPages(
      (o) => store.listLeasesByStatus('pending', { ...o, owner: 'bob' }),
      1,
    );
    expect(bobs.items.map((l) => l.id)).toEqual([x1, y0, x2]);
  });

  it('finds items written before the spread (shard 0 key), and a write moves them to their shard', async () => {
    const ids = idsOverShards('old', 1);
    const raw = doc();
    for (const id of ids) {
      // As the store wrote them before: every lease of a status under one key.
      const item = { ...leaseItem(lease(id, { sweepAt: at(1) })), GSI2PK: 'LEASE#pending' };
      await raw.send(new PutCommand({ TableName: store.tableName, Item: item }));
    }
    const listed = await allPages((o) => store.listLeasesByStatus('pending', o), 2);
    expect(listed.items.map((l) => l.id).sort()).toEqual([...ids].sort());
    const due = await store.listLeasesByStatus('pending', { dueBefore: at(2) });
    expect(due.items).toHaveLength(ids.length);

    const elsewhere = ids.find((id) => statusShard(id) !== 0) as string;
    await store.transact([
      {
        op: 'updateLease',
        id: elsewhere,
        type: 'host',
        expect: { status: 'pending', version: 1 },
        set: { status: 'acquired', sweepAt: at(3) },
      },
    ]);
    expect(
      await partitionHolds(
        store,
        GSI.byStatus,
        shardedPartition('LEASE#acquired', statusShard(elsewhere)),
      ),
    ).toEqual([elsewhere]);
    expect((await store.listLeasesByStatus('acquired')).items.map((l) => l.id)).toEqual([
      elsewhere,
    ]);
  });

  it('refuses a cursor from before the spread, or from another listing, saying what to do', async () => {
    const old = encodeCursor({ GSI2PK: 'LEASE#pending', GSI2SK: '~', PK: 'LEASE#x', SK: 'LEASE' });
    await expect(store.listLeasesByStatus('pending', { cursor: old })).rejects.toThrow(
      /list again without a cursor/,
    );
    await store.transact(
      idsOverShards('L', 2).map((id) => ({ op: 'createLease', lease: lease(id) })),
    );
    const page = await store.listLeasesByStatus('pending', { limit: 1 });
    expect(page.cursor).toBeDefined();
    await expect(
      store.listResourcesByStatus('active', { cursor: page.cursor as string }),
    ).rejects.toBeInstanceOf(ValidationError);
    await expect(
      store.listCommandsByStatus('queued', { cursor: page.cursor as string }),
    ).rejects.toBeInstanceOf(ValidationError);
  });
});

describe('GSI2 commands and resources', () => {
  it('lists commands and resources of every shard, old shard-0 keys included', async () => {
    const ids = idsOverShards('C', 2);
    const command = (id: string, minutes: number): CommandRecord => ({
      id,
      leaseId: 'L1',
      owner: 'alice',
      status: 'queued',
      argv: ['true'],
      timeoutSeconds: 60,
      env: {},
      attempt: 0,
      createdAt: T0,
      updatedAt: T0,
      sweepAt: at(minutes),
    });
    await store.transact(ids.map((id, n) => ({ op: 'createCommand', command: command(id, n) })));
    const oldCommand = { ...commandItem(command('C-old', 100)), GSI2PK: 'CMD#queued' };
    const oldResource = {
      ...resourceItem(resource('R-old', 3, { sweepAt: at(1) })),
      GSI2PK: 'RES#active',
    };
    for (const item of [oldCommand, oldResource]) {
      await doc().send(new PutCommand({ TableName: store.tableName, Item: item }));
    }
    const resources = idsOverShards('R', 1);
    await store.transact(
      resources.map((id) => ({
        op: 'createResource',
        resource: resource(id, undefined, { sweepAt: at(2) }),
      })),
    );

    const commands = await allPages((o) => store.listCommandsByStatus('queued', o), 3);
    expect(commands.items.map((c) => c.id)).toEqual([...ids, 'C-old']);
    const due = await store.listResourcesByStatus('active', { dueBefore: at(2) });
    expect(due.items.map((r) => r.id).sort()).toEqual(['R-old', ...resources].sort());
  });
});

describe('pool blocks', () => {
  it('come from the pool slot lock alone, whatever else a resource holds', () => {
    expect(poolBlock([])).toBe(0);
    expect(poolBlock(undefined)).toBe(0);
    expect(poolBlock(['resource:R1:lease-slot:40', 'host:build-7'])).toBe(0);
    expect(poolBlock(['host:build-7', slotKeys.pool('a:b', 64)])).toBe(2);
    expect(poolBlock([slotKeys.pool('pool', 999)])).toBe(31);
    expect([1, 32, 33, 64, 65, 1000].map(blocksFor)).toEqual([1, 1, 2, 2, 3, 32]);
    expect(liveResourcePartitions('host', 3)).toEqual([
      'RES#host#live',
      'RES#host#live#1',
      'RES#host#live#2',
    ]);
  });
});

describe('GSI1 live resources spread over pool-slot blocks', () => {
  it('puts a resource in the block of its pool slot; block 0 keeps the old key', async () => {
    await store.transact([
      { op: 'createResource', resource: resource('slot-0', 0) },
      { op: 'createResource', resource: resource('slot-31', 31) },
      { op: 'createResource', resource: resource('slot-32', 32) },
      { op: 'createResource', resource: resource('slot-70', 70) },
      { op: 'createResource', resource: resource('no-slot', undefined) },
    ]);
    expect(await partitionHolds(store, GSI.byType, 'RES#host#live')).toEqual([
      'no-slot',
      'slot-0',
      'slot-31',
    ]);
    expect(await partitionHolds(store, GSI.byType, 'RES#host#live#1')).toEqual(['slot-32']);
    expect(await partitionHolds(store, GSI.byType, 'RES#host#live#2')).toEqual(['slot-70']);

    // The reader reads the blocks the largest pool spans; omitted, every block.
    expect((await store.listLiveResources('host', 96)).map((r) => r.id).sort()).toEqual([
      'no-slot',
      'slot-0',
      'slot-31',
      'slot-32',
      'slot-70',
    ]);
    expect((await store.listLiveResources('host')).map((r) => r.id).sort()).toHaveLength(5);
    expect((await store.listLiveResources('host', 32)).map((r) => r.id).sort()).toEqual([
      'no-slot',
      'slot-0',
      'slot-31',
    ]);
    // In one partition's order (blueprint, createdAt, id) across blocks.
    const ids = (await store.listLiveResources('host', 96)).map((r) => r.id);
    expect(ids).toEqual([...ids].sort());
  });

  it('one query per listLiveResources for a pool of up to 32, one per block above', async () => {
    await store.transact([{ op: 'createResource', resource: resource('slot-3', 3) }]);
    const queries = async (largestPool: number) => {
      store.resetStats();
      await store.listLiveResources('host', largestPool);
      return store.stats.byOperation.Query ?? 0;
    };
    expect(await queries(1)).toBe(1);
    expect(await queries(32)).toBe(1);
    expect(await queries(33)).toBe(2);
    expect(await queries(500)).toBe(16);
    expect(await queries(1000)).toBe(32);
  });

  it('a status change within the live phase keeps the block; leaving it goes to the phase partition', async () => {
    await store.transact([
      { op: 'createResource', resource: resource('R40', 40, { status: 'pending' }) },
    ]);
    await store.transact([
      {
        op: 'updateResource',
        id: 'R40',
        type: 'host',
        expect: { status: 'pending', version: 1 },
        set: { status: 'active' },
      },
    ]);
    expect(await partitionHolds(store, GSI.byType, 'RES#host#live#1')).toEqual(['R40']);
    expect((await store.listResourcesByType('host', 'active')).items.map((r) => r.id)).toEqual([
      'R40',
    ]);
    await store.transact([
      {
        op: 'updateResource',
        id: 'R40',
        type: 'host',
        expect: { status: 'active', version: 2 },
        set: { status: 'released', sweepAt: at(1) },
      },
    ]);
    expect(await partitionHolds(store, GSI.byType, 'RES#host#live#1')).toEqual([]);
    expect(await partitionHolds(store, GSI.byType, 'RES#host#released')).toEqual(['R40']);
  });

  it('pages the resources of a type across blocks, and finds ones written before the spread', async () => {
    const raw = doc();
    const created: string[] = [];
    for (let slot = 0; slot < 100; slot += 9) {
      const id = `R${String(slot).padStart(3, '0')}`;
      created.push(id);
      await store.transact([
        {
          op: 'createResource',
          resource: resource(id, slot, { createdAt: at(100 - slot) }),
        },
      ]);
    }
    // Written before the spread: slot 64, but under block 0's key.
    const old = { ...resourceItem(resource('R-old', 64)), GSI1PK: 'RES#host#live' };
    await raw.send(new PutCommand({ TableName: store.tableName, Item: old }));
    created.push('R-old');

    for (const newestFirst of [false, true]) {
      const { items } = await allPages(
        (o) => store.listResourcesByType('host', 'active', { ...o, newestFirst }),
        3,
      );
      expect(items.map((r) => r.id).sort()).toEqual([...created].sort());
      const order = items.map((r) => `${r.blueprintId}#${r.createdAt}#${r.id}`);
      const sorted = [...order].sort();
      expect(order).toEqual(newestFirst ? sorted.reverse() : sorted);
    }
    expect((await store.listLiveResources('host', 100)).map((r) => r.id).sort()).toEqual(
      [...created].sort(),
    );
  });
});
