/**
 * The local stand-ins for DynamoDB and SQS: DynamoDB Local (java, under dynamodb-local.ts's
 * watchdog) and the fauxqs SQS emulator in-process, SDK clients pointed at them, and the work
 * queue with its dead-letter queue. The local runtime, the benchmarks and the test run's
 * globalSetup all start and use them through here.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { createDynamoClient, createSqsClient } from '../../lambdas/store/clients.ts';
import type { ConnectionBudget } from '../../lambdas/store/connections.ts';
import { type DynamoDbLocal, startDynamoDbLocal } from './dynamodb-local.ts';
import { LOCAL_REGION } from './lambda-events.ts';

/** Any credentials do; these make sure no real ones are ever sent. */
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

export interface EmulatorOptions {
  /** A persistent database directory. @default in memory */
  dbPath?: string;
  /** Run java's wrapper in its own process group (see DynamoDbLocalOptions). @default false */
  detached?: boolean;
  /** Fully compiled java for a run of minutes (see DynamoDbLocalOptions). @default false */
  longRun?: boolean;
}

export interface Emulators extends LocalEndpoints {
  dynamo: DynamoDbLocal;
  /** Stops both; resolves when java has exited. */
  stop(): Promise<void>;
}

/**
 * Starts DynamoDB Local and fauxqs side by side; if either fails, the other is stopped again
 * and the first failure thrown. Call assertJava() first for an error that says how to install
 * Java.
 */
export async function startEmulators(options: EmulatorOptions = {}): Promise<Emulators> {
  const { startFauxqs } = await import('fauxqs');
  const [dynamo, queue] = await Promise.allSettled([
    startDynamoDbLocal({
      ...(options.dbPath ? { dbPath: options.dbPath } : {}),
      ...(options.detached ? { detached: true } : {}),
      ...(options.longRun ? { longRun: true } : {}),
    }),
    startFauxqs({ port: 0, logger: false, host: '127.0.0.1' }),
  ]);
  if (dynamo.status === 'rejected' || queue.status === 'rejected') {
    // startDynamoDbLocal stops java itself when it fails.
    await Promise.allSettled([
      queue.status === 'fulfilled' ? queue.value.stop() : undefined,
      dynamo.status === 'fulfilled' ? dynamo.value.stop() : undefined,
    ]);
    throw dynamo.status === 'rejected' ? dynamo.reason : (queue as PromiseRejectedResult).reason;
  }
  const java = dynamo.value;
  const fauxqs = queue.value;
  return {
    dynamo: java,
    dynamoEndpoint: java.endpoint,
    sqsEndpoint: `http://127.0.0.1:${fauxqs.port}`,
    async stop() {
      await Promise.allSettled([fauxqs.stop(), java.stop()]);
    },
  };
}

/** Where the emulators listen. */
export interface LocalEndpoints {
  dynamoEndpoint: string;
  sqsEndpoint: string;
}

/**
 * Points the SDK's environment configuration at the emulators with dummy credentials, so
 * nothing in this process that builds its own SDK client can reach a real AWS account.
 */
export function useLocalAwsEnvironment(endpoints: LocalEndpoints): void {
  Object.assign(process.env, {
    AWS_REGION: LOCAL_REGION,
    AWS_DEFAULT_REGION: LOCAL_REGION,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    AWS_ENDPOINT_URL_DYNAMODB: endpoints.dynamoEndpoint,
    AWS_ENDPOINT_URL_SQS: endpoints.sqsEndpoint,
    AWS_EC2_METADATA_DISABLED: 'true',
  });
  delete process.env.AWS_SESSION_TOKEN;
  delete process.env.AWS_PROFILE;
}

/** Production's DynamoDB client (lambdas/store/clients.ts: its retries and timeouts) on DynamoDB Local. */
export function localDynamoClient(
  endpoint: string,
  /** Shared by every DynamoDB client of this process (lambdas/store/connections.ts). */
  connections?: ConnectionBudget,
): DynamoDBClient {
  return createDynamoClient(
    { endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS },
    connections,
  );
}

/**
 * Production's SQS client on fauxqs. The explicit endpoint matters: fauxqs queue URLs use
 * *.localhost, which does not resolve here.
 */
export function localSqsClient(endpoint: string): SQSClient {
  return createSqsClient({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
}

export interface WorkQueue {
  queueUrl: string;
  queueArn: string;
  dlqUrl: string;
}

export interface WorkQueueOptions {
  /** @default 30 */
  visibilityTimeoutSeconds?: number;
  /** Receives before a message moves to the DLQ. @default 5 */
  maxReceiveCount?: number;
}

/**
 * Creates (or finds: CreateQueue is idempotent) queue `name` and its DLQ `<name>-dlq`.
 * The URLs returned are on `sqsEndpoint`: fauxqs names queues `http://sqs.<region>.<bind
 * host>:<port>/...`, which need not resolve (nor, for 127.0.0.1, even parse as a URL), and it
 * serves the same queue at the same path on its own endpoint.
 */
export async function createWorkQueue(
  sqs: SQSClient,
  sqsEndpoint: string,
  name: string,
  options: WorkQueueOptions = {},
): Promise<WorkQueue> {
  const onEndpoint = (url: string | undefined, what: string) => {
    if (!url) throw new Error(`CreateQueue ${what} returned no QueueUrl`);
    return url.replace(/^[a-z]+:\/\/[^/]+/, sqsEndpoint);
  };
  const arnOf = async (queueUrl: string) => {
    const arn = (
      await sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }),
      )
    ).Attributes?.QueueArn;
    if (!arn) throw new Error(`GetQueueAttributes ${queueUrl} returned no QueueArn`);
    return arn;
  };
  const dlq = await sqs.send(new CreateQueueCommand({ QueueName: `${name}-dlq` }));
  const dlqUrl = onEndpoint(dlq.QueueUrl, `${name}-dlq`);
  const dlqArn = await arnOf(dlqUrl);
  const queue = await sqs.send(
    new CreateQueueCommand({
      QueueName: name,
      Attributes: {
        VisibilityTimeout: String(options.visibilityTimeoutSeconds ?? 30),
        RedrivePolicy: JSON.stringify({
          deadLetterTargetArn: dlqArn,
          maxReceiveCount: options.maxReceiveCount ?? 5,
        }),
      },
    }),
  );
  const queueUrl = onEndpoint(queue.QueueUrl, name);
  return { queueUrl, queueArn: await arnOf(queueUrl), dlqUrl };
}
