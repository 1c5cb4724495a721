/**
 * A table made before the listing index existed (a local `.drydock/` from an older version)
 * gets it when the runtime starts: ensureTable adds every index the schema names.
 */
import { CreateTableCommand, DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import type { Lease, Resource } from '../../lambdas/core/model.ts';
import { DynamoStore } from '../../lambdas/store/dynamo-store.ts';
import { backfillFreeKeys } from '../../lambdas/store/free-backfill.ts';
import { leaseKey, resourceKey } from '../../lambdas/store/keys.ts';
import { backfillListingKeys } from '../../lambdas/store/listing-backfill.ts';
import { GSI } from '../../lambdas/store/schema.ts';
import { createTableInput, ensureTable } from '../../lambdas/store/table.ts';
import { freshTable, testClients, uniqueName } from '../support/env.ts';

describe('ensureTable on an existing table', () => {
  it('adds the byOwner index a table made without it lacks, keys only', async () => {
    const { dynamo } = testClients();
    const tableName = uniqueName('upgrade');
    const full = createTableInput(tableName);
    const old = full.GlobalSecondaryIndexes!.filter((i) => i.IndexName !== GSI.byOwner.name);
    await dynamo.send(
      new CreateTableCommand({
        ...full,
        GlobalSecondaryIndexes: old,
        AttributeDefinitions: full.AttributeDefinitions!.filter(
          (a) => !a.AttributeName!.startsWith('GSI3'),
        ),
      }),
    );
    await ensureTable(dynamo, tableName, { timeoutMs: 20_000, intervalMs: 50 });
    const table = (await dynamo.send(new DescribeTableCommand({ TableName: tableName }))).Table!;
    const byOwner = table.GlobalSecondaryIndexes?.find((i) => i.IndexName === GSI.byOwner.name);
    expect(byOwner).toMatchObject({
      IndexStatus: 'ACTIVE',
      Projection: { ProjectionType: 'KEYS_ONLY' },
    });
    expect(table.GlobalSecondaryIndexes?.map((i) => i.IndexName).sort()).toEqual(
      Object.values(GSI)
        .map((i) => i.name)
        .sort(),
    );
  });
});

const T0 = '2026-01-01T00:00:00.000Z';

const lease = (id: string, status: Lease['status']): Lease => ({
  id,
  type: 'host',
  attributes: {},
  owner: 'alice',
  status,
  version: 1,
  slotLocks: [],
  requestedAt: T0,
  updatedAt: T0,
  waitSeq: 0,
  requeues: 0,
});

const resource: Resource = {
  id: 'R1',
  blueprintId: 'pool',
  type: 'host',
  attributes: {},
  status: 'active',
  version: 1,
  slotLocks: [],
  capacity: 1,
  leaseCount: 0,
  uses: 0,
  createdAt: T0,
  updatedAt: T0,
  data: {},
};

describe('backfillListingKeys', () => {
  it('gives live leases and resources written before the index their listing keys, once', async () => {
    const { client, tableName } = await freshTable('backfill');
    const store = new DynamoStore({ client, tableName });
    const doc = DynamoDBDocumentClient.from(client);
    await store.transact([
      { op: 'createLease', lease: lease('L1', 'active') },
      { op: 'createLease', lease: lease('L2', 'destroyed') },
      { op: 'createResource', resource },
    ]);
    // As an older version wrote them: no GSI3 keys.
    for (const key of [leaseKey('L1'), resourceKey('R1')]) {
      await doc.send(
        new UpdateCommand({
          TableName: tableName,
          Key: key,
          UpdateExpression: 'REMOVE GSI3PK, GSI3SK',
        }),
      );
    }
    expect((await store.listLeasesOfOwner('alice')).items).toEqual([]);
    expect((await store.listListedResources()).items).toEqual([]);

    expect(await backfillListingKeys(doc, tableName)).toBe(2);
    expect((await store.listLeasesOfOwner('alice')).items.map((l) => l.id)).toEqual(['L1']);
    expect((await store.listListedResources()).items.map((r) => r.id)).toEqual(['R1']);
    const destroyed = await doc.send(new GetCommand({ TableName: tableName, Key: leaseKey('L2') }));
    expect(destroyed.Item).not.toHaveProperty('GSI3PK');
    expect(await backfillListingKeys(doc, tableName)).toBe(0);
  });
});

describe('backfillFreeKeys', () => {
  it('puts free resources written before the free index into it, and only those, once', async () => {
    const { client, tableName } = await freshTable('backfill-free');
    const store = new DynamoStore({ client, tableName });
    const doc = DynamoDBDocumentClient.from(client);
    await store.transact([
      { op: 'createResource', resource },
      { op: 'createResource', resource: { ...resource, id: 'R2', leaseCount: 1, uses: 1 } },
      { op: 'createResource', resource: { ...resource, id: 'R3', status: 'released' } },
      { op: 'createResource', resource: { ...resource, id: 'R4', suspectSince: T0 } },
    ]);
    // As an older version wrote them: no GSI4 keys.
    await doc.send(
      new UpdateCommand({
        TableName: tableName,
        Key: resourceKey('R1'),
        UpdateExpression: 'REMOVE GSI4PK, GSI4SK',
      }),
    );
    const page = () =>
      Promise.all(
        ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map((k) => store.listFreeResources('pool', k, 10)),
      );
    expect((await page()).flat()).toEqual([]);

    expect(await backfillFreeKeys(doc, tableName)).toBe(1);
    expect([...new Set((await page()).flat().map((r) => r.id))]).toEqual(['R1']);
    expect(await backfillFreeKeys(doc, tableName)).toBe(0);
  });
});
