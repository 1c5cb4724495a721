/**
 * The SDK clients of the store and the queue, as production configures them (the composition
 * root creates one per service per process: a Lambda container reuses them across invocations,
 * keeping TLS connections warm), plus call accounting (and, for benchmarks and tests only,
 * consumed-capacity reporting).
 *
 * Endpoints: on AWS none is given (the SDK finds the region's). The local runtime and the
 * benchmarks pass the emulators' endpoint, region and dummy credentials (lib/local/emulators.ts)
 * and so get production's retries and timeouts. For SQS the explicit endpoint also matters
 * because by default the SQS client sends each request to the host of its QueueUrl, and fauxqs
 * queue URLs use `*.localhost`, which does not resolve.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { type ConnectionBudget, connectionBudget, limitConnections } from './connections.ts';

/** Where a client connects and as whom; all unset on AWS (the SDK's defaults). */
export interface ClientTarget {
  endpoint?: string;
  region?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

/**
 * Retries: 5 attempts, adaptive. On-demand tables still throttle a partition during a sudden
 * burst (a wave of leases); adaptive mode adds a client-side token bucket that slows this
 * container down instead of hammering the partition, and the bucket survives warm invocations.
 * Condition failures and cancelled transactions are never retried by the SDK, so retries never
 * hide a lost race: the store turns them into WriteConflictError and the core re-plans.
 * Timeouts: a stuck connection fails within seconds into a retry instead of eating the
 * Lambda's time budget; one that outlasts the retries is a TemporaryError (connection-faults.ts).
 * Connections: the process's DynamoDB clients share `connections` (connections.ts), a
 * keep-alive agent with a socket limit and a permit per request on the wire, so a burst queues
 * for a socket instead of timing out while queued. Pass the same budget to every DynamoDB
 * client of a process; without one, the client gets its own.
 */
export function createDynamoClient(
  target: ClientTarget = {},
  shared?: ConnectionBudget,
): DynamoDBClient {
  const connections = shared ?? connectionBudget();
  const client = new DynamoDBClient({
    ...target,
    maxAttempts: 5,
    retryMode: 'adaptive',
    requestHandler: {
      connectionTimeout: 2_000,
      requestTimeout: 5_000,
      httpAgent: connections.httpAgent,
      httpsAgent: connections.httpsAgent,
    },
  });
  limitConnections(client, connections);
  if (!shared) {
    // Its own agents: the SDK leaves agents it was given open, so close them with the client.
    const destroy = client.destroy.bind(client);
    client.destroy = () => {
      destroy();
      connections.destroy();
    };
  }
  return client;
}

/**
 * Retries: the SDK's standard 3 attempts; SQS rarely throttles and a failed send surfaces as a
 * TemporaryError that makes SQS redeliver the message being processed. The request timeout must
 * outlast a 20 s long poll.
 */
export function createSqsClient(target: ClientTarget = {}): SQSClient {
  return new SQSClient({
    ...target,
    maxAttempts: 3,
    requestHandler: { connectionTimeout: 2_000, requestTimeout: 30_000 },
  });
}

// ---- call accounting -------------------------------------------------------------------------

export interface DynamoCallStats {
  /** SDK commands sent (one per logical call; SDK retries are not counted again). */
  calls: number;
  /** Calls per DynamoDB operation, e.g. `{ PutItem: 3, TransactWriteItems: 1 }`. */
  byOperation: Record<string, number>;
  /**
   * Capacity units DynamoDB reported for successful calls: only on a client that asks for them
   * (`consumedCapacity: true`, benchmarks and tests); 0 elsewhere.
   */
  consumedCapacity: number;
  reset(): void;
}

export interface InstrumentOptions {
  /**
   * Ask DynamoDB to report the capacity every call consumed (`ReturnConsumedCapacity: TOTAL`).
   * For benchmarks and tests: production clients never send it (it adds response bytes to
   * every call and nothing in production reads it). Once asked, a client keeps asking.
   * @default false
   */
  consumedCapacity?: boolean;
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

const CALL_STATS_MIDDLEWARE = 'drydockCallStats';
const CONSUMED_CAPACITY_MIDDLEWARE = 'drydockConsumedCapacity';

const instrumented = new WeakMap<DynamoDBClient, DynamoCallStats>();

const operationOf = (commandName: string | undefined): string =>
  (commandName ?? 'Unknown').replace(/Command$/, '');

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
 * which shares its middleware stack) and adds up the capacity DynamoDB reports. Counting
 * changes nothing on the wire; `options.consumedCapacity` (bench and tests only) also makes
 * the client ask DynamoDB for that capacity. Idempotent: instrumenting a client twice returns
 * the same stats object.
 */
export function instrumentDynamoClient(
  client: DynamoDBClient,
  options: InstrumentOptions = {},
): DynamoCallStats {
  if (options.consumedCapacity) requestConsumedCapacity(client);
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
      const operation = operationOf(context.commandName);
      stats.calls += 1;
      stats.byOperation[operation] = (stats.byOperation[operation] ?? 0) + 1;
      const result = await next(args);
      const output = result.output as { ConsumedCapacity?: unknown };
      stats.consumedCapacity += capacityUnits(output.ConsumedCapacity);
      return result;
    },
    { step: 'initialize', name: CALL_STATS_MIDDLEWARE, priority: 'high' },
  );
  instrumented.set(client, stats);
  return stats;
}

/** Adds `ReturnConsumedCapacity: TOTAL` to every call of `client` that accepts it (once). */
function requestConsumedCapacity(client: DynamoDBClient): void {
  const present = client.middlewareStack
    .identify()
    .some((entry) => entry.startsWith(`${CONSUMED_CAPACITY_MIDDLEWARE} `));
  if (present) return;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (!CAPACITY_OPERATIONS.has(operationOf(context.commandName))) return next(args);
      const input = { ReturnConsumedCapacity: 'TOTAL', ...(args.input as object) };
      return next({ ...args, input: input as typeof args.input });
    },
    { step: 'initialize', name: CONSUMED_CAPACITY_MIDDLEWARE },
  );
}
