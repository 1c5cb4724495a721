/**
 * Per-operation profile of DynamoDB calls, measured by a client middleware — the "where the
 * time goes" view that needs no profiler: how many calls of each operation, how long each took
 * from the caller's point of view (serialisation, the HTTP round trip to DynamoDB Local and its
 * work, deserialisation; SDK retries included), and the capacity DynamoDB reported.
 *
 * Calls are split by what they touch: `records` are the synthetic blueprint's append-only
 * records (its host bill, partition `REC#...`) — the plug-in's bookkeeping, which an ec2-host
 * blueprint would do with EC2 API calls instead — and `core` is everything else: leases,
 * resources, slot locks, logs, blueprints.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { latencySummary, round } from './stats.ts';

export type CallCategory = 'core' | 'records';

export interface OperationSamples {
  durationsMs: number[];
  capacity: number;
}

export interface DynamoProfile {
  /** `<category>|<operation>|<shape>` -> samples (see callShape). */
  samples: Map<string, OperationSamples>;
  reset(): void;
}

const profiled = new WeakMap<DynamoDBClient, DynamoProfile>();

/** A key value, plain (document client input) or marshalled (`{ S: '...' }`). */
function text(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  const s = (value as { S?: unknown } | undefined)?.S;
  return typeof s === 'string' ? s : undefined;
}

function touchesRecords(input: Record<string, unknown>): boolean {
  const values = input.ExpressionAttributeValues as Record<string, unknown> | undefined;
  const item = input.Item as Record<string, unknown> | undefined;
  return [text(values?.[':pk']), text(item?.PK)].some((pk) => pk?.startsWith('REC#'));
}

/** `LEASE#host#pending` -> `LEASE#*#pending`, `LOG#lease-1` -> `LOG#*`: ids out, kinds in. */
function keyKind(pk: string | undefined): string {
  if (pk === undefined) return '?';
  const parts = pk.split('#');
  if (parts.length === 1) return pk;
  if ((parts[0] === 'LEASE' || parts[0] === 'RES') && parts.length === 3) {
    return `${parts[0]}#*#${parts[2]}`;
  }
  return parts[0] === 'LOCK' && /^\d+$/.test(parts[1] ?? '') ? 'LOCK#<shard>' : parts[0]!;
}

function itemKind(item: unknown): string {
  const record = item as { Key?: Record<string, unknown>; Item?: Record<string, unknown> };
  return keyKind(text((record.Key ?? record.Item)?.PK));
}

/**
 * What a call touched, without ids: `Query GSI1 LEASE#*#pending COUNT`,
 * `TransactWriteItems Update LEASE + Put LOCK + Update RES + Put LOG`. Tells which step of
 * the engine a call belongs to (a wait's count of leases ahead, an acquisition, a teardown).
 */
export function callShape(operation: string, input: Record<string, unknown>): string {
  switch (operation) {
    case 'Query': {
      const values = input.ExpressionAttributeValues as Record<string, unknown> | undefined;
      const pk = text(values?.[':pk']);
      return `${(input.IndexName as string | undefined) ?? 'table'} ${keyKind(pk)}${input.Select === 'COUNT' ? ' COUNT' : ''}`;
    }
    case 'TransactWriteItems': {
      const items = (input.TransactItems as Array<Record<string, unknown>> | undefined) ?? [];
      return items
        .map((entry) => {
          const [op, body] = Object.entries(entry)[0] ?? ['?', {}];
          return `${op} ${itemKind(body)}`;
        })
        .join(' + ');
    }
    case 'BatchGetItem': {
      const requests = Object.values(
        (input.RequestItems as Record<string, { Keys?: unknown[] }> | undefined) ?? {},
      );
      const kinds = new Set(
        requests.flatMap((r) =>
          (r.Keys ?? []).map((k) => keyKind(text((k as { PK?: unknown }).PK))),
        ),
      );
      return [...kinds].join(', ');
    }
    default:
      return itemKind(input);
  }
}

function capacityUnits(consumed: unknown): number {
  if (Array.isArray(consumed)) return consumed.reduce((s, c) => s + capacityUnits(c), 0);
  const units = (consumed as { CapacityUnits?: unknown } | undefined)?.CapacityUnits;
  return typeof units === 'number' ? units : 0;
}

/**
 * Profiles every command sent through `client` (idempotent per client). The capacity it reads
 * is reported only by a client instrumented with `{ consumedCapacity: true }` (every bench
 * client is: benchDynamoClient, and the runtime's shared client in each benchmark).
 */
export function profileDynamoClient(client: DynamoDBClient): DynamoProfile {
  const existing = profiled.get(client);
  if (existing) return existing;
  const profile: DynamoProfile = {
    samples: new Map(),
    reset() {
      profile.samples = new Map();
    },
  };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const operation = (context.commandName ?? 'Unknown').replace(/Command$/, '');
      const input = args.input as Record<string, unknown>;
      const category: CallCategory = touchesRecords(input) ? 'records' : 'core';
      const shape = callShape(operation, input);
      const started = performance.now();
      let capacity = 0;
      try {
        const result = await next(args);
        capacity = capacityUnits(
          (result.output as { ConsumedCapacity?: unknown }).ConsumedCapacity,
        );
        return result;
      } finally {
        const key = `${category}|${operation}|${shape}`;
        const entry = profile.samples.get(key) ?? { durationsMs: [], capacity: 0 };
        entry.durationsMs.push(performance.now() - started);
        entry.capacity += capacity;
        profile.samples.set(key, entry);
      }
    },
    // After the document client's marshalling and the middleware that sets
    // ReturnConsumedCapacity, around everything that goes on the wire, retries included.
    { step: 'initialize', name: 'benchProfile', priority: 'low' },
  );
  profiled.set(client, profile);
  return profile;
}

/** Several clients' profiles as one. */
export function mergeProfiles(profiles: readonly DynamoProfile[]): Map<string, OperationSamples> {
  const merged = new Map<string, OperationSamples>();
  for (const p of profiles) {
    for (const [key, s] of p.samples) {
      const entry = merged.get(key) ?? { durationsMs: [], capacity: 0 };
      entry.durationsMs.push(...s.durationsMs);
      entry.capacity += s.capacity;
      merged.set(key, entry);
    }
  }
  return merged;
}

export interface OperationCost {
  category: CallCategory;
  operation: string;
  calls: number;
  capacity: number;
  totalMs: number;
  p50: number;
  p95: number;
  /** Share of all DynamoDB call time (0..1). */
  share: number;
}

/**
 * Per category and operation (or, with `byShape`, per call shape): calls, capacity, time;
 * biggest total time first.
 */
export function summarizeProfile(
  samples: Map<string, OperationSamples>,
  options: { byShape?: boolean } = {},
): OperationCost[] {
  const grouped = new Map<string, OperationSamples>();
  for (const [key, s] of samples) {
    const [category, operation, shape] = key.split('|') as [CallCategory, string, string];
    const group = options.byShape
      ? `${category}|${operation} ${shape}`
      : `${category}|${operation}`;
    const entry = grouped.get(group) ?? { durationsMs: [], capacity: 0 };
    entry.durationsMs.push(...s.durationsMs);
    entry.capacity += s.capacity;
    grouped.set(group, entry);
  }
  const rows = [...grouped].map(([key, s]) => {
    const [category, operation] = key.split('|') as [CallCategory, string];
    const stats = latencySummary(s.durationsMs);
    return {
      category,
      operation,
      calls: s.durationsMs.length,
      capacity: round(s.capacity, 1),
      totalMs: s.durationsMs.reduce((sum, ms) => sum + ms, 0),
      p50: round(stats.p50),
      p95: round(stats.p95),
    };
  });
  const total = rows.reduce((sum, r) => sum + r.totalMs, 0) || 1;
  return rows
    .map((r) => ({ ...r, totalMs: Math.round(r.totalMs), share: round(r.totalMs / total, 3) }))
    .sort((a, b) => b.totalMs - a.totalMs);
}

/** Calls and capacity of one category. */
export function categoryTotals(
  costs: readonly OperationCost[],
  category: CallCategory,
): { calls: number; capacity: number } {
  return costs
    .filter((c) => c.category === category)
    .reduce((t, c) => ({ calls: t.calls + c.calls, capacity: t.capacity + c.capacity }), {
      calls: 0,
      capacity: 0,
    });
}
