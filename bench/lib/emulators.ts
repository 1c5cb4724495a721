/**
 * The offline world a benchmark runs in: DynamoDB Local (java, in memory) and the fauxqs SQS
 * emulator, started and stopped by the bench itself, plus fresh tables and queues per run and
 * clients pointed at them. Java runs under lib/local/dynamodb-local.ts's watchdog, so even a
 * killed bench leaves no java behind.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DeleteTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  CreateQueueCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { startFauxqs } from 'fauxqs';
import { instrumentDynamoClient } from '../../lambdas/store/clients.ts';
import { ensureTable } from '../../lambdas/store/table.ts';
import {
  assertJava,
  type DynamoDbLocal,
  findDynamoDbLocalDir,
  startDynamoDbLocal,
} from '../../lib/local/dynamodb-local.ts';

export const BENCH_REGION = 'us-east-1';
export const BENCH_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

/** Where the emulators listen; all a benchmark function needs to run. */
export interface BenchEnv {
  dynamoEndpoint: string;
  sqsEndpoint: string;
}

export interface Emulators extends BenchEnv {
  /** The DynamoDB Local java process, for CPU accounting (undefined if not known). */
  javaPid: number | undefined;
  stop(): Promise<void>;
}

/**
 * Points the SDK's environment configuration at the emulators with dummy credentials, so
 * nothing the bench starts (the local runtime included) can reach a real AWS account.
 */
export function useBenchAwsEnv(env: BenchEnv): void {
  process.env.AWS_ENDPOINT_URL_DYNAMODB = env.dynamoEndpoint;
  process.env.AWS_ENDPOINT_URL_SQS = env.sqsEndpoint;
  process.env.AWS_REGION = BENCH_REGION;
  process.env.AWS_ACCESS_KEY_ID = BENCH_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = BENCH_CREDENTIALS.secretAccessKey;
  delete process.env.AWS_SESSION_TOKEN;
  delete process.env.AWS_PROFILE;
}

export async function startEmulators(): Promise<Emulators> {
  assertJava();
  const [dynamo, queue] = await Promise.allSettled([
    startDynamoDbLocal(),
    startFauxqs({ port: 0, logger: false, host: '127.0.0.1' }),
  ]);
  if (dynamo.status === 'rejected' || queue.status === 'rejected') {
    await Promise.allSettled([
      dynamo.status === 'fulfilled' ? dynamo.value.stop() : undefined,
      queue.status === 'fulfilled' ? queue.value.stop() : undefined,
    ]);
    throw dynamo.status === 'rejected' ? dynamo.reason : (queue as PromiseRejectedResult).reason;
  }
  const java: DynamoDbLocal = dynamo.value;
  const fauxqs = queue.value;
  return {
    dynamoEndpoint: java.endpoint,
    sqsEndpoint: `http://127.0.0.1:${fauxqs.port}`,
    javaPid: java.javaPid,
    async stop() {
      await Promise.allSettled([fauxqs.stop(), java.stop()]);
    },
  };
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
 * A DynamoDB client like production's (lambdas/store/clients.ts: 5 adaptive attempts, short
 * timeouts) on DynamoDB Local. Every role in a benchmark gets its own, so call counts can be
 * told apart (engine vs. the holder's polling vs. the bench's own bookkeeping).
 */
export function benchDynamoClient(env: BenchEnv): DynamoDBClient {
  const client = new DynamoDBClient({
    endpoint: env.dynamoEndpoint,
    region: BENCH_REGION,
    credentials: BENCH_CREDENTIALS,
    maxAttempts: 5,
    retryMode: 'adaptive',
    requestHandler: { connectionTimeout: 2_000, requestTimeout: 5_000 },
  });
  // The bench reports capacity per call; production clients never ask for it.
  instrumentDynamoClient(client, { consumedCapacity: true });
  return client;
}

export function benchSqsClient(env: BenchEnv): SQSClient {
  return new SQSClient({
    // Explicit endpoint: fauxqs queue URLs use *.localhost, which does not resolve here.
    endpoint: env.sqsEndpoint,
    region: BENCH_REGION,
    credentials: BENCH_CREDENTIALS,
    maxAttempts: 3,
    requestHandler: { connectionTimeout: 2_000, requestTimeout: 30_000 },
  });
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
  const name = benchName(prefix);
  const dlq = await client.send(new CreateQueueCommand({ QueueName: `${name}-dlq` }));
  const dlqUrl = `${env.sqsEndpoint}${dlq.QueueUrl!.replace(/^[a-z]+:\/\/[^/]+/, '')}`;
  const arn = (
    await client.send(
      new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }),
    )
  ).Attributes?.QueueArn;
  const queue = await client.send(
    new CreateQueueCommand({
      QueueName: name,
      Attributes: {
        VisibilityTimeout: String(options.visibilityTimeoutSeconds ?? 30),
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: arn, maxReceiveCount: 10 }),
      },
    }),
  );
  // The emulator's own URL host (`sqs.<region>.<host>`) need not resolve, nor even parse as a
  // URL (with host 127.0.0.1); the same path on the endpoint names the same queue.
  const queueUrl = `${env.sqsEndpoint}${queue.QueueUrl!.replace(/^[a-z]+:\/\/[^/]+/, '')}`;
  const queueArn = (
    await client.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }),
    )
  ).Attributes?.QueueArn;
  if (!queueArn) throw new Error(`fauxqs returned no QueueArn for ${queueUrl}`);
  return {
    queueUrl,
    queueArn,
    dlqUrl,
    async drop() {
      try {
        await Promise.allSettled([
          client.send(new DeleteQueueCommand({ QueueUrl: queueUrl })),
          client.send(new DeleteQueueCommand({ QueueUrl: dlqUrl })),
        ]);
      } finally {
        client.destroy();
      }
    },
  };
}
