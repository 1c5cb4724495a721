/**
 * Gives free resources written before the free-candidate index existed their keys (schema.ts,
 * GSI4), so the allocator's warm path sees them. Without it nothing breaks (the allocator falls
 * back to reading every live resource when its page is empty, and a resource enters the index
 * at its next detach), it is only slower on a large pool until then. Idempotent: each write is
 * conditional on the resource still being free by its own item and still without keys. It scans
 * the table, so it runs where a table is known to be old: the local runtime at start. On AWS
 * the index is created by the stack update, and the same function can be run once against it.
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { isFree } from '../core/free.ts';
import type { Resource } from '../core/model.ts';
import { freePartition } from './keys.ts';
import { GSI } from './schema.ts';

/** How many resources got their keys. */
export async function backfillFreeKeys(
  doc: DynamoDBDocumentClient,
  tableName: string,
): Promise<number> {
  let updated = 0;
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await doc.send(
      new ScanCommand({
        TableName: tableName,
        FilterExpression: 'begins_with(PK, :res) AND SK = :res_sk AND attribute_not_exists(#gsi4)',
        ProjectionExpression: 'PK, SK, id, #status, leaseCount, suspectSince, #data',
        ExpressionAttributeNames: {
          '#gsi4': GSI.free.partitionKey,
          '#status': 'status',
          '#data': 'data',
        },
        ExpressionAttributeValues: { ':res': 'RES#', ':res_sk': 'RES' },
        ExclusiveStartKey: startKey,
      }),
    );
    for (const item of page.Items ?? []) {
      if (!isFree(item as Resource)) continue;
      try {
        await doc.send(
          new UpdateCommand({
            TableName: tableName,
            Key: { PK: item.PK, SK: item.SK },
            UpdateExpression: 'SET #pk = :pk, #sk = #typeSk',
            // Still free and still without keys: a lease attached meanwhile keeps it out.
            ConditionExpression:
              'attribute_not_exists(#pk) AND #status IN (:pending, :active) AND leaseCount = :none AND attribute_not_exists(suspectSince) AND attribute_not_exists(#data.retiring)',
            ExpressionAttributeNames: {
              '#pk': GSI.free.partitionKey,
              '#sk': GSI.free.sortKey,
              '#typeSk': GSI.byType.sortKey,
              '#status': 'status',
              '#data': 'data',
            },
            ExpressionAttributeValues: {
              ':pk': freePartition(String(item.id)),
              ':pending': 'pending',
              ':active': 'active',
              ':none': 0,
            },
          }),
        );
        updated++;
      } catch (err) {
        if ((err as Error).name !== 'ConditionalCheckFailedException') throw err;
      }
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return updated;
}
