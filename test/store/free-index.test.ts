/**
 * The free-candidate index (schema.ts GSI4) against DynamoDB Local: a resource is in it exactly
 * while it may take a lease, and every write that changes that keeps its keys in step in the
 * same write. Read through the index itself (a raw Query), not the item.
 */
import { DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { beforeEach, describe, expect, it } from 'vitest';
import type { Resource } from '../../lambdas/core/model.ts';
import type { TxWrite } from '../../lambdas/core/ports.ts';
import type { DynamoStore } from '../../lambdas/store/dynamo-store.ts';
import { freePartition, hashShard } from '../../lambdas/store/keys.ts';
import { FREE_SHARDS, GSI } from '../../lambdas/store/schema.ts';
import { makeStore, testClients } from '../support/env.ts';

const T0 = '2026-01-01T00:00:00.000Z';
const at = (minutes: number) => new Date(Date.parse(T0) + minutes * 60_000).toISOString();

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

/** The ids the free index holds in `id`'s shard. */
async function freeIndexHas(store: DynamoStore, id: string): Promise<boolean> {
  const doc = DynamoDBDocumentClient.from(testClients().dynamo);
  const out = await doc.send(
    new QueryCommand({
      TableName: store.tableName,
      IndexName: GSI.free.name,
      KeyConditionExpression: '#pk = :pk',
      ExpressionAttributeNames: { '#pk': GSI.free.partitionKey },
      ExpressionAttributeValues: { ':pk': freePartition(id) },
    }),
  );
  return (out.Items ?? []).some((item) => item.id === id);
}

/** A lease id that falls in the same free-index shard as resource `id` (the reader's key). */
function readerFor(id: string): string {
  const shard = hashShard(id, FREE_SHARDS);
  for (let n = 0; ; n++) if (hashShard(`L${n}`, FREE_SHARDS) === shard) return `L${n}`;
}

type ResourceTransition = Extract<TxWrite, { op: 'updateResource' }>;
const transition = (r: Resource, set: ResourceTransition['set']): ResourceTransition => ({
  op: 'updateResource',
  id: r.id,
  type: r.type,
  expect: { status: r.status, version: r.version },
  set,
});

let store: DynamoStore;
beforeEach(async () => {
  store = await makeStore({ prefix: 'free-index' });
});

describe('the free-candidate index', () => {
  it('holds a new resource only while it may take a lease', async () => {
    await store.transact([
      { op: 'createResource', resource: resource({ id: 'idle' }) },
      { op: 'createResource', resource: resource({ id: 'warming', status: 'pending' }) },
      {
        op: 'createResource',
        resource: resource({ id: 'made-for-a-lease', status: 'pending', leaseCount: 1, uses: 1 }),
      },
      { op: 'createResource', resource: resource({ id: 'suspect', suspectSince: T0 }) },
      {
        op: 'createResource',
        resource: resource({ id: 'retiring', data: { retiring: 'rebalance' } }),
      },
      { op: 'createResource', resource: resource({ id: 'released', status: 'released' }) },
    ]);
    expect(await freeIndexHas(store, 'idle')).toBe(true);
    expect(await freeIndexHas(store, 'warming')).toBe(true);
    expect(await freeIndexHas(store, 'made-for-a-lease')).toBe(false);
    expect(await freeIndexHas(store, 'suspect')).toBe(false);
    expect(await freeIndexHas(store, 'retiring')).toBe(false);
    expect(await freeIndexHas(store, 'released')).toBe(false);
    // The keys are the store's: a read strips them.
    expect(await store.getResource('idle')).toEqual(resource({ id: 'idle' }));
  });

  it('attach takes it out, a detach that may free it puts it back, in the same write', async () => {
    await store.transact([{ op: 'createResource', resource: resource() }]);
    await store.transact([{ op: 'attachLease', resourceId: 'R1', statusIn: ['active'] }]);
    expect(await freeIndexHas(store, 'R1')).toBe(false);

    // A detach that does not say the resource may be free leaves the index alone.
    await store.transact([{ op: 'detachLease', resourceId: 'R1', at: at(1) }]);
    expect(await freeIndexHas(store, 'R1')).toBe(false);

    await store.transact([{ op: 'attachLease', resourceId: 'R1', statusIn: ['active'] }]);
    await store.transact([{ op: 'detachLease', resourceId: 'R1', at: at(2), mayFree: true }]);
    expect(await freeIndexHas(store, 'R1')).toBe(true);

    // A detach conditioned on a live status (release at once) implies it.
    await store.transact([{ op: 'attachLease', resourceId: 'R1', statusIn: ['active'] }]);
    expect(await freeIndexHas(store, 'R1')).toBe(false);
    await store.transact([
      { op: 'detachLease', resourceId: 'R1', at: at(3), statusIn: ['active'] },
    ]);
    expect(await freeIndexHas(store, 'R1')).toBe(true);
    // Back in with the same sort key it was created with: the reader finds it by blueprint.
    expect((await store.listFreeResources('pool', readerFor('R1'), 8)).map((r) => r.id)).toEqual([
      'R1',
    ]);
  });

  it('a shared resource leaves at its first lease; a detach puts it back even if a lease remains (a stale entry the reader filters)', async () => {
    await store.transact([{ op: 'createResource', resource: resource({ capacity: 2 }) }]);
    await store.transact([{ op: 'attachLease', resourceId: 'R1', statusIn: ['active'] }]);
    await store.transact([{ op: 'attachLease', resourceId: 'R1', statusIn: ['active'] }]);
    expect(await freeIndexHas(store, 'R1')).toBe(false);
    await store.transact([{ op: 'detachLease', resourceId: 'R1', at: at(1), mayFree: true }]);
    expect(await freeIndexHas(store, 'R1')).toBe(true);
    const [entry] = await store.listFreeResources('pool', readerFor('R1'), 8);
    expect(entry).toMatchObject({ id: 'R1', leaseCount: 1 });
  });

  it('suspicion, retirement and leaving service take it out; a cleared suspicion puts it back', async () => {
    const r = resource({ status: 'pending', version: 0 });
    await store.transact([{ op: 'createResource', resource: r }]);

    // pending -> active leaves the entry as it is.
    await store.transact([transition(r, { status: 'active', activatedAt: at(1) })]);
    expect(await freeIndexHas(store, 'R1')).toBe(true);
    const active = (await store.getResource('R1'))!;

    await store.transact([transition(active, { suspectSince: at(2), suspectReason: 'x' })]);
    expect(await freeIndexHas(store, 'R1')).toBe(false);
    const suspect = (await store.getResource('R1'))!;
    await store.transact([transition(suspect, { suspectSince: null, suspectReason: null })]);
    expect(await freeIndexHas(store, 'R1')).toBe(true);

    const cleared = (await store.getResource('R1'))!;
    await store.transact([
      transition(cleared, { data: { ...cleared.data, retiring: 'rebalance' } }),
    ]);
    expect(await freeIndexHas(store, 'R1')).toBe(false);

    await store.transact([{ op: 'createResource', resource: resource({ id: 'R2' }) }]);
    const r2 = (await store.getResource('R2'))!;
    await store.transact([
      { ...transition(r2, { status: 'released', releasedAt: at(3) }), requireNoLeases: true },
    ]);
    expect(await freeIndexHas(store, 'R2')).toBe(false);
    const released = (await store.getResource('R2'))!;
    await store.transact([
      transition(released, { status: 'destroyed', destroyedAt: at(4), sweepAt: null }),
    ]);
    expect(await freeIndexHas(store, 'R2')).toBe(false);
  });

  it('pages one shard, one blueprint, oldest first, at most `limit`', async () => {
    const ids = Array.from({ length: 40 }, (_, n) => `R${String(n).padStart(2, '0')}`);
    const writes: TxWrite[] = ids.map((id, n) => ({
      op: 'createResource',
      resource: resource({ id, createdAt: at(40 - n) }),
    }));
    // Another blueprint whose id starts the same way: not in this blueprint's page.
    writes.push({
      op: 'createResource',
      resource: resource({ id: 'other', blueprintId: 'pool-2' }),
    });
    await store.transact(writes);

    const reader = readerFor('R00');
    const shard = hashShard('R00', FREE_SHARDS);
    const inShard = ids.filter((id) => hashShard(id, FREE_SHARDS) === shard);
    const oldestFirst = [...inShard].reverse();
    const page = await store.listFreeResources('pool', reader, 3);
    expect(page.map((r) => r.id)).toEqual(oldestFirst.slice(0, 3));
    const all = await store.listFreeResources('pool', reader, 100);
    expect(all.map((r) => r.id)).toEqual(oldestFirst);
    expect(all.every((r) => r.blueprintId === 'pool')).toBe(true);
    // Every free resource is in exactly one shard's page.
    const shards = await Promise.all(
      Array.from({ length: FREE_SHARDS }, (_, s) => {
        let n = 0;
        while (hashShard(`L${n}`, FREE_SHARDS) !== s) n++;
        return store.listFreeResources('pool', `L${n}`, 100);
      }),
    );
    expect(
      shards
        .flat()
        .map((r) => r.id)
        .sort(),
    ).toEqual(ids);
  });
});
