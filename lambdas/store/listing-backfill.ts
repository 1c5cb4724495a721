/**
 * Gives leases and resources written before the byOwner index existed their listing keys
 * (schema.ts, GSI3), so listings that page that index still show them. Idempotent: only live
 * items (they have GSI2 keys; destroyed ones leave the listings anyway) without GSI3 keys are
 * touched, each with a conditional write that a concurrent writer cannot be hurt by. It scans
 * the table, so it runs once where a table is known to be old: the local runtime at start.
 */

import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { leaseOwnerPartition, listingSortKey, RESOURCE_LISTING_PARTITION } from './keys.ts';
import { GSI } from './schema.ts';

/** How many items got their keys. */
export async function backfillListingKeys(
  doc: DynamoDBDocumentClient,
  tableName: string,
): Promise<number> {
  let updated = 0;
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await doc.send(
      new ScanCommand({
        TableName: tableName,
        FilterExpression:
          '(begins_with(PK, :lease) OR begins_with(PK, :res)) AND attribute_exists(#gsi2) AND attribute_not_exists(#gsi3)',
        ProjectionExpression: 'PK, SK, id, #owner, requestedAt, createdAt',
        ExpressionAttributeNames: {
          '#gsi2': GSI.byStatus.partitionKey,
          '#gsi3': GSI.byOwner.partitionKey,
          '#owner': 'owner',
        },
        ExpressionAttributeValues: { ':lease': 'LEASE#', ':res': 'RES#' },
        ExclusiveStartKey: startKey,
      }),
    );
    for (const item of page.Items ?? []) {
      const isLease = String(item.PK).startsWith('LEASE#');
      const partition = isLease
        ? leaseOwnerPartition(String(item.owner))
        : RESOURCE_LISTING_PARTITION;
      const sortKey = listingSortKey(
        String(isLease ? item.requestedAt : item.createdAt),
        String(item.id),
      );
      try {
        await doc.send(
          new UpdateCommand({
            TableName: tableName,
            Key: { PK: item.PK, SK: item.SK },
            UpdateExpression: 'SET #pk = :pk, #sk = :sk',
            // Still live and still without keys: a destroy meanwhile removed GSI2 (keep it out).
            ConditionExpression: 'attribute_exists(#gsi2) AND attribute_not_exists(#pk)',
            ExpressionAttributeNames: {
              '#pk': GSI.byOwner.partitionKey,
              '#sk': GSI.byOwner.sortKey,
              '#gsi2': GSI.byStatus.partitionKey,
            },
            ExpressionAttributeValues: { ':pk': partition, ':sk': sortKey },
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
