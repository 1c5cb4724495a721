/**
 * The table definition for DynamoDB Local and the local runtime. The CDK stack builds the same
 * table from schema.ts (and adds TTL on TTL_ATTRIBUTE, which DynamoDB Local ignores anyway).
 */
import {
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  type DynamoDBClient,
  type TableDescription,
  UpdateTableCommand,
} from '@aws-sdk/client-dynamodb';
import { GSI, GSI_PROJECTION, KEY_ATTRIBUTE_TYPE, TABLE_KEYS } from './schema.ts';

export function createTableInput(tableName: string): CreateTableCommandInput {
  const attribute = (AttributeName: string) => ({
    AttributeName,
    AttributeType: KEY_ATTRIBUTE_TYPE,
  });
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      attribute(TABLE_KEYS.partitionKey),
      attribute(TABLE_KEYS.sortKey),
      ...Object.values(GSI).flatMap((index) => [
        attribute(index.partitionKey),
        attribute(index.sortKey),
      ]),
    ],
    KeySchema: [
      { AttributeName: TABLE_KEYS.partitionKey, KeyType: 'HASH' },
      { AttributeName: TABLE_KEYS.sortKey, KeyType: 'RANGE' },
    ],
    GlobalSecondaryIndexes: Object.entries(GSI).map(([role, index]) => ({
      IndexName: index.name,
      KeySchema: [
        { AttributeName: index.partitionKey, KeyType: 'HASH' },
        { AttributeName: index.sortKey, KeyType: 'RANGE' },
      ],
      Projection: { ProjectionType: GSI_PROJECTION[role as keyof typeof GSI] },
    })),
  };
}

/**
 * A table made before an index was added to the schema (a local `.drydock/` from an older
 * version) gets it now, one index per call as DynamoDB allows; the wait below covers it.
 */
async function addMissingIndex(
  client: DynamoDBClient,
  tableName: string,
  table: TableDescription,
): Promise<TableDescription | undefined> {
  const have = new Set((table.GlobalSecondaryIndexes ?? []).map((i) => i.IndexName));
  const wanted = createTableInput(tableName);
  const missing = wanted.GlobalSecondaryIndexes?.find((i) => !have.has(i.IndexName));
  if (!missing || table.TableStatus !== 'ACTIVE') return table;
  const keys = new Set(missing.KeySchema?.map((k) => k.AttributeName));
  const output = await client.send(
    new UpdateTableCommand({
      TableName: tableName,
      AttributeDefinitions: wanted.AttributeDefinitions?.filter((a) => keys.has(a.AttributeName)),
      GlobalSecondaryIndexUpdates: [{ Create: missing }],
    }),
  );
  return output.TableDescription;
}

function isActive(table: TableDescription | undefined): boolean {
  return (
    table?.TableStatus === 'ACTIVE' &&
    (table.GlobalSecondaryIndexes ?? []).every((index) => index.IndexStatus === 'ACTIVE')
  );
}

async function describe(client: DynamoDBClient, tableName: string) {
  try {
    return (await client.send(new DescribeTableCommand({ TableName: tableName }))).Table;
  } catch (err) {
    if ((err as Error).name === 'ResourceNotFoundException') return undefined;
    throw err;
  }
}

/**
 * Creates the table if it does not exist and waits until it and its indexes are ACTIVE.
 * Safe to call concurrently (a lost create race is fine).
 */
export async function ensureTable(
  client: DynamoDBClient,
  tableName: string,
  options: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<void> {
  const { timeoutMs = 120_000, intervalMs = 250 } = options;
  const deadline = Date.now() + timeoutMs;
  let table = await describe(client, tableName);
  if (!table) {
    try {
      table = (await client.send(new CreateTableCommand(createTableInput(tableName))))
        .TableDescription;
    } catch (err) {
      if ((err as Error).name !== 'ResourceInUseException') throw err;
    }
  }
  for (;;) {
    if (table && isActive(table)) {
      const updated = await addMissingIndex(client, tableName, table);
      if (updated === table) return;
      table = updated;
      continue;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `table '${tableName}' not ACTIVE after ${timeoutMs} ms (status ${table?.TableStatus ?? 'missing'}, indexes ${JSON.stringify(
          (table?.GlobalSecondaryIndexes ?? []).map((i) => `${i.IndexName}:${i.IndexStatus}`),
        )})`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
    table = await describe(client, tableName);
  }
}
