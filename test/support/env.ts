/**
 * Helpers for test files that talk to the emulators started by global-setup.ts. Importing this
 * module also points the SDK's environment configuration (endpoints, dummy credentials) at the
 * emulators, so no SDK client a test builds can reach a real AWS account.
 */
import { randomBytes } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { inject } from 'vitest';
import type { Clock } from '../../lambdas/core/ports.ts';
import { DynamoStore } from '../../lambdas/store/dynamo-store.ts';
import { ensureTable } from '../../lambdas/store/table.ts';
import {
  createWorkQueue,
  LOCAL_CREDENTIALS,
  useLocalAwsEnvironment,
} from '../../lib/local/emulators.ts';
import { LOCAL_REGION } from '../../lib/local/lambda-events.ts';

export { type WaitForOptions, waitFor } from '../../lib/local/wait.ts';

export const TEST_REGION = LOCAL_REGION;

export function localEndpoints(): { dynamo: string; sqs: string } {
  return { dynamo: inject('dynamoEndpoint'), sqs: inject('sqsEndpoint') };
}

// Set once when this module loads: the standard AWS_* variables point at the emulators.
useLocalAwsEnvironment({
  dynamoEndpoint: inject('dynamoEndpoint'),
  sqsEndpoint: inject('sqsEndpoint'),
});

/**
 * New clients on the emulators (cheap; each has its own call stats once instrumented). Plain
 * SDK retries, unlike lib/local/emulators.ts's production-like clients: adaptive throttling
 * would only make a busy test run slower.
 */
export function testClients(): { dynamo: DynamoDBClient; sqs: SQSClient } {
  const { dynamo, sqs } = localEndpoints();
  const common = { region: TEST_REGION, credentials: LOCAL_CREDENTIALS, maxAttempts: 3 };
  return {
    dynamo: new DynamoDBClient({ ...common, endpoint: dynamo }),
    // Explicit endpoint: fauxqs queue URLs use *.localhost, which does not resolve here.
    sqs: new SQSClient({ ...common, endpoint: sqs }),
  };
}

/** `<prefix>-<base36 time>-<random>`: unique across files, workers and reruns. */
export function uniqueName(prefix: string): string {
  const safe = prefix.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 40);
  return `${safe}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

export async function freshTable(
  prefix = 'drydock',
): Promise<{ client: DynamoDBClient; tableName: string }> {
  const client = testClients().dynamo;
  const tableName = uniqueName(prefix);
  await ensureTable(client, tableName, { timeoutMs: 20_000, intervalMs: 50 });
  return { client, tableName };
}

export interface FreshQueue {
  client: SQSClient;
  queueUrl: string;
  queueArn: string;
  dlqUrl: string;
}

/** A work queue and its DLQ; after `maxReceiveCount` receives a message moves to the DLQ. */
export async function freshQueue(
  prefix = 'updates',
  options: { maxReceiveCount?: number; visibilityTimeoutSeconds?: number } = {},
): Promise<FreshQueue> {
  const { maxReceiveCount = 3, visibilityTimeoutSeconds = 30 } = options;
  const client = testClients().sqs;
  const queue = await createWorkQueue(client, localEndpoints().sqs, uniqueName(prefix), {
    maxReceiveCount,
    visibilityTimeoutSeconds,
  });
  return { client, ...queue };
}

/** A DynamoStore on a fresh table, with its own client (so its call stats are its own). */
export async function makeStore(
  options: { prefix?: string; clock?: Clock } = {},
): Promise<DynamoStore> {
  const { client, tableName } = await freshTable(options.prefix ?? 'store');
  return new DynamoStore({ client, tableName, ...(options.clock ? { clock: options.clock } : {}) });
}
