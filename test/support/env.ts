/**
 * Helpers for test files that talk to the emulators started by global-setup.ts. Importing this
 * module also points the SDK's environment configuration (and so lambdas/store/clients.ts) at
 * the emulators, with dummy credentials, so no test can reach a real AWS account.
 */
import { randomBytes } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { inject } from 'vitest';
import type { Clock } from '../../lambdas/core/ports.ts';
import { DynamoStore } from '../../lambdas/store/dynamo-store.ts';
import { ensureTable } from '../../lambdas/store/table.ts';

export const TEST_REGION = 'us-east-1';
const TEST_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

export function localEndpoints(): { dynamo: string; sqs: string } {
  return { dynamo: inject('dynamoEndpoint'), sqs: inject('sqsEndpoint') };
}

/** Sets the standard AWS_* variables to the emulators (done once when this module loads). */
export function useLocalAwsEnv(): void {
  const { dynamo, sqs } = localEndpoints();
  process.env.AWS_ENDPOINT_URL_DYNAMODB = dynamo;
  process.env.AWS_ENDPOINT_URL_SQS = sqs;
  process.env.AWS_REGION = TEST_REGION;
  process.env.AWS_ACCESS_KEY_ID = TEST_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = TEST_CREDENTIALS.secretAccessKey;
  delete process.env.AWS_SESSION_TOKEN;
  delete process.env.AWS_PROFILE;
}
useLocalAwsEnv();

/** New clients on the emulators (cheap; each has its own call stats once instrumented). */
export function testClients(): { dynamo: DynamoDBClient; sqs: SQSClient } {
  const { dynamo, sqs } = localEndpoints();
  const common = { region: TEST_REGION, credentials: TEST_CREDENTIALS, maxAttempts: 3 };
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
  dlqUrl: string;
}

/** A work queue and its DLQ; after `maxReceiveCount` receives a message moves to the DLQ. */
export async function freshQueue(
  prefix = 'updates',
  options: { maxReceiveCount?: number; visibilityTimeoutSeconds?: number } = {},
): Promise<FreshQueue> {
  const { maxReceiveCount = 3, visibilityTimeoutSeconds = 30 } = options;
  const client = testClients().sqs;
  const name = uniqueName(prefix);
  const dlq = await client.send(new CreateQueueCommand({ QueueName: `${name}-dlq` }));
  const dlqUrl = dlq.QueueUrl;
  if (!dlqUrl) throw new Error(`CreateQueue ${name}-dlq returned no QueueUrl`);
  const attributes = await client.send(
    new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }),
  );
  const dlqArn = attributes.Attributes?.QueueArn;
  if (!dlqArn) throw new Error(`GetQueueAttributes ${dlqUrl} returned no QueueArn`);
  const queue = await client.send(
    new CreateQueueCommand({
      QueueName: name,
      Attributes: {
        VisibilityTimeout: String(visibilityTimeoutSeconds),
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount }),
      },
    }),
  );
  if (!queue.QueueUrl) throw new Error(`CreateQueue ${name} returned no QueueUrl`);
  return { client, queueUrl: queue.QueueUrl, dlqUrl };
}

/** A DynamoStore on a fresh table, with its own client (so its call stats are its own). */
export async function makeStore(
  options: { prefix?: string; clock?: Clock } = {},
): Promise<DynamoStore> {
  const { client, tableName } = await freshTable(options.prefix ?? 'store');
  return new DynamoStore({ client, tableName, ...(options.clock ? { clock: options.clock } : {}) });
}

export interface WaitForOptions {
  /** @default 10_000 */
  timeoutMs?: number;
  /** @default 50 */
  intervalMs?: number;
  /** What is being waited for, for the timeout error. */
  message?: string;
}

/**
 * Polls `condition` until it returns a truthy value (which is returned) or the deadline
 * passes. Errors thrown by `condition` count as "not yet" and are reported at the deadline.
 * The only place in the tests that waits on the wall clock.
 */
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  options: WaitForOptions = {},
): Promise<NonNullable<T>> {
  const { timeoutMs = 10_000, intervalMs = 50, message = 'condition' } = options;
  const started = Date.now();
  let last: unknown;
  let lastError: unknown;
  for (;;) {
    try {
      last = await condition();
      if (last) return last as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() - started >= timeoutMs) {
      const detail = lastError
        ? `last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`
        : `last value: ${JSON.stringify(last)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${message} (${detail})`, {
        cause: lastError,
      });
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
