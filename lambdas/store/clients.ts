/**
 * One SDK client per service per process (a Lambda container reuses them across invocations,
 * keeping TLS connections warm), plus call accounting for benchmarks and tests.
 *
 * Endpoints: the SDK itself honours AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL_SQS, which is how
 * the local runtime and the tests point these clients at DynamoDB Local and fauxqs. SQS is the
 * exception that needs help: by default the SQS client sends each request to the host of its
 * QueueUrl, and fauxqs queue URLs use `*.localhost`, which does not resolve; an explicit
 * `endpoint` switches that off.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';

let dynamo: DynamoDBClient | undefined;
let sqs: SQSClient | undefined;

/**
 * Retries: 5 attempts, adaptive. On-demand tables still throttle a partition during a sudden
 * burst (a wave of leases); adaptive mode adds a client-side token bucket that slows this
 * container down instead of hammering the partition, and the bucket survives warm invocations.
 * Condition failures and cancelled transactions are never retried by the SDK, so retries never
 * hide a lost race: the store turns them into WriteConflictError and the core re-plans.
 * Timeouts: a stuck connection fails within seconds into a retry instead of eating the
 * Lambda's time budget.
 */
export function dynamoClient(): DynamoDBClient {
  dynamo ??= new DynamoDBClient({
    maxAttempts: 5,
    retryMode: 'adaptive',
    requestHandler: { connectionTimeout: 2_000, requestTimeout: 5_000 },
  });
  return dynamo;
}

/**
 * Retries: the SDK's standard 3 attempts; SQS rarely throttles and a failed send surfaces as a
 * TemporaryError that makes SQS redeliver the message being processed. The request timeout must
 * outlast a 20 s long poll.
 */
export function sqsClient(): SQSClient {
  const endpoint = process.env.AWS_ENDPOINT_URL_SQS;
  sqs ??= new SQSClient({
    maxAttempts: 3,
    requestHandler: { connectionTimeout: 2_000, requestTimeout: 30_000 },
    ...(endpoint ? { endpoint } : {}),
  });
  return sqs;
}

/** Forget the memoised clients (tests that change endpoints between files). */
export function resetClients(): void {
  dynamo?.destroy();
  sqs?.destroy();
  dynamo = undefined;
  sqs = undefined;
}

// ---- call accounting -------------------------------------------------------------------------

export interface DynamoCallStats {
  /** SDK commands sent (one per logical call; SDK retries are not counted again). */
  calls: number;
  /** Calls per DynamoDB operation, e.g. `{ PutItem: 3, TransactWriteItems: 1 }`. */
  byOperation: Record<string, number>;
  /** Capacity units reported by DynamoDB (ReturnConsumedCapacity TOTAL) for successful calls. */
  consumedCapacity: number;
  reset(): void;
}

/** Operations that accept ReturnConsumedCapacity. */
const CAPACITY_OPERATIONS = new Set([
  'GetItem',
  'PutItem',
  'UpdateItem',
  'DeleteItem',
  'Query',
  'Scan',
  'BatchGetItem',
  'BatchWriteItem',
  'TransactGetItems',
  'TransactWriteItems',
  'ExecuteStatement',
  'BatchExecuteStatement',
  'ExecuteTransaction',
]);

const instrumented = new WeakMap<DynamoDBClient, DynamoCallStats>();

function capacityUnits(consumed: unknown): number {
  if (Array.isArray(consumed)) return consumed.reduce((sum, c) => sum + capacityUnits(c), 0);
  if (consumed && typeof consumed === 'object' && 'CapacityUnits' in consumed) {
    const units = (consumed as { CapacityUnits?: unknown }).CapacityUnits;
    return typeof units === 'number' ? units : 0;
  }
  return 0;
}

/**
 * Counts every command sent through `client` (and any DynamoDBDocumentClient built from it,
 * which shares its middleware stack) and asks DynamoDB to report consumed capacity. Idempotent:
 * instrumenting a client twice returns the same stats object.
 */
export function instrumentDynamoClient(client: DynamoDBClient): DynamoCallStats {
  const existing = instrumented.get(client);
  if (existing) return existing;
  const stats: DynamoCallStats = {
    calls: 0,
    byOperation: {},
    consumedCapacity: 0,
    reset() {
      stats.calls = 0;
      stats.byOperation = {};
      stats.consumedCapacity = 0;
    },
  };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const operation = (context.commandName ?? 'Unknown').replace(/Command$/, '');
      stats.calls += 1;
      stats.byOperation[operation] = (stats.byOperation[operation] ?? 0) + 1;
      const input = CAPACITY_OPERATIONS.has(operation)
        ? { ReturnConsumedCapacity: 'TOTAL', ...(args.input as object) }
        : args.input;
      const result = await next({ ...args, input: input as typeof args.input });
      const output = result.output as { ConsumedCapacity?: unknown };
      stats.consumedCapacity += capacityUnits(output.ConsumedCapacity);
      return result;
    },
    { step: 'initialize', name: 'drydockCallStats', priority: 'high' },
  );
  instrumented.set(client, stats);
  return stats;
}
