/**
 * The offline world a benchmark runs in: DynamoDB Local (java, in memory) and the fauxqs SQS
 * emulator, started and stopped by the bench itself (lib/local/emulators.ts, as the local
 * runtime and the tests start them), plus fresh tables and queues per run and clients pointed
 * at them. Java runs under lib/local/dynamodb-local.ts's watchdog, so even a killed bench
 * leaves no java behind.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DeleteTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteQueueCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { instrumentDynamoClient } from '../../lambdas/store/clients.ts';
import type { ConnectionBudget } from '../../lambdas/store/connections.ts';
import { ensureTable } from '../../lambdas/store/table.ts';
import { assertJava, findDynamoDbLocalDir } from '../../lib/local/dynamodb-local.ts';
import {
  createWorkQueue,
  type LocalEndpoints,
  localDynamoClient,
  localSqsClient,
  startEmulators as startLocalEmulators,
} from '../../lib/local/emulators.ts';

/** Where the emulators listen; all a benchmark function needs to run. */
export type BenchEnv = LocalEndpoints;

export interface Emulators extends BenchEnv {
  /** The DynamoDB Local java process, for CPU accounting (undefined if not known). */
  javaPid: number | undefined;
  stop(): Promise<void>;
}

export async function startEmulators(options: { longRun?: boolean } = {}): Promise<Emulators> {
  assertJava();
  const emulators = await startLocalEmulators(options);
  return { ...emulators, javaPid: emulators.dynamo.javaPid };
}

/** "3.3.1": the newest release named in the bundled DynamoDB Local's README. */
export function dynamoDbLocalVersion(): string {
  try {
    const readme = readFileSync(join(findDynamoDbLocalDir(), 'README.txt'), 'utf8');
    return /^\d{4}-\d{2}-\d{2} \((\d+\.\d+\.\d+)\)/m.exec(readme)?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * A DynamoDB client like production's on DynamoDB Local. Every role in a benchmark gets its
 * own, so call counts can be told apart (engine vs. the holder's polling vs. the bench's own
 * bookkeeping).
 */
export function benchDynamoClient(env: BenchEnv, connections?: ConnectionBudget): DynamoDBClient {
  const client = localDynamoClient(env.dynamoEndpoint, connections);
  // The bench reports capacity per call; production clients never ask for it.
  instrumentDynamoClient(client, { consumedCapacity: true });
  return client;
}

export function benchSqsClient(env: BenchEnv): SQSClient {
  return localSqsClient(env.sqsEndpoint);
}

let counter = 0;
/** `<prefix>-<base36 time>-<n>`: unique per run. */
export function benchName(prefix: string): string {
  counter += 1;
  return `bench-${prefix}-${Date.now().toString(36)}-${counter}`;
}

/** A fresh table (deleted again by the returned function, so runs do not pile up in memory). */
export async function freshTable(
  env: BenchEnv,
  prefix: string,
): Promise<{ tableName: string; drop: () => Promise<void> }> {
  const client = benchDynamoClient(env);
  const tableName = benchName(prefix);
  await ensureTable(client, tableName, { timeoutMs: 20_000, intervalMs: 50 });
  return {
    tableName,
    async drop() {
      try {
        await client.send(new DeleteTableCommand({ TableName: tableName }));
      } finally {
        client.destroy();
      }
    },
  };
}

/** A work queue with a DLQ (maxReceiveCount 10, as a production queue would have it). */
export async function freshQueue(
  env: BenchEnv,
  prefix: string,
  options: { visibilityTimeoutSeconds?: number } = {},
): Promise<{ queueUrl: string; queueArn: string; dlqUrl: string; drop: () => Promise<void> }> {
  const client = benchSqsClient(env);
  const queue = await createWorkQueue(client, env.sqsEndpoint, benchName(prefix), {
    visibilityTimeoutSeconds: options.visibilityTimeoutSeconds ?? 30,
    maxReceiveCount: 10,
  });
  return {
    ...queue,
    async drop() {
      try {
        await Promise.allSettled([
          client.send(new DeleteQueueCommand({ QueueUrl: queue.queueUrl })),
          client.send(new DeleteQueueCommand({ QueueUrl: queue.dlqUrl })),
        ]);
      } finally {
        client.destroy();
      }
    },
  };
}
