/**
 * Call accounting for the bench's own clients: DynamoDB through the store's own
 * instrumentDynamoClient (so the bench counts exactly what `DynamoStore.stats` counts), SQS
 * through an equivalent middleware here.
 */
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoCallStats } from '../../lambdas/store/clients.ts';

export interface CallCount {
  calls: number;
  byOperation: Record<string, number>;
  /** DynamoDB capacity units (absent for SQS). */
  consumedCapacity?: number;
}

/** A frozen copy of a client's counters. */
export function snapshot(stats: DynamoCallStats): CallCount {
  return {
    calls: stats.calls,
    byOperation: { ...stats.byOperation },
    consumedCapacity: stats.consumedCapacity,
  };
}

/** `after - before`, per field. */
export function delta(after: CallCount, before: CallCount): CallCount {
  const byOperation: Record<string, number> = {};
  for (const [op, n] of Object.entries(after.byOperation)) {
    const d = n - (before.byOperation[op] ?? 0);
    if (d !== 0) byOperation[op] = d;
  }
  return {
    calls: after.calls - before.calls,
    byOperation,
    ...(after.consumedCapacity === undefined
      ? {}
      : { consumedCapacity: after.consumedCapacity - (before.consumedCapacity ?? 0) }),
  };
}

export function sum(...counts: CallCount[]): CallCount {
  const total: CallCount = { calls: 0, byOperation: {}, consumedCapacity: 0 };
  for (const c of counts) {
    total.calls += c.calls;
    total.consumedCapacity = (total.consumedCapacity ?? 0) + (c.consumedCapacity ?? 0);
    for (const [op, n] of Object.entries(c.byOperation)) {
      total.byOperation[op] = (total.byOperation[op] ?? 0) + n;
    }
  }
  return total;
}

export interface SqsCallStats extends CallCount {
  /** Messages in SendMessage(Batch) calls. */
  messagesSent: number;
  reset(): void;
}

const counted = new WeakMap<SQSClient, SqsCallStats>();

export function countSqsCalls(client: SQSClient): SqsCallStats {
  const existing = counted.get(client);
  if (existing) return existing;
  const stats: SqsCallStats = {
    calls: 0,
    byOperation: {},
    messagesSent: 0,
    reset() {
      stats.calls = 0;
      stats.byOperation = {};
      stats.messagesSent = 0;
    },
  };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const operation = (context.commandName ?? 'Unknown').replace(/Command$/, '');
      stats.calls += 1;
      stats.byOperation[operation] = (stats.byOperation[operation] ?? 0) + 1;
      const input = args.input as { Entries?: unknown[] };
      if (operation === 'SendMessageBatch') stats.messagesSent += input.Entries?.length ?? 0;
      if (operation === 'SendMessage') stats.messagesSent += 1;
      return next(args);
    },
    { step: 'initialize', name: 'benchSqsCalls', priority: 'high' },
  );
  counted.set(client, stats);
  return stats;
}
