/**
 * A table made before the listing index existed (a local `.drydock/` from an older version)
 * gets it when the runtime starts: ensureTable adds every index the schema names.
 */
import { CreateTableCommand, DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { GSI } from '../../lambdas/store/schema.ts';
import { createTableInput, ensureTable } from '../../lambdas/store/table.ts';
import { testClients, uniqueName } from '../support/env.ts';

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
