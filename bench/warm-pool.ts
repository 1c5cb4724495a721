/**
 * Warm pool: N synthetic hosts already active and idle; K clients loop request → active →
 * release through the HTTP API of the local runtime (lib/local/runtime.ts: the same handlers
 * as on AWS behind a local API server, workers on the SQS emulator, DynamoDB Local). Measures
 * what a CI job waits for a lease when a host is free, and what each lease lifecycle costs:
 * DynamoDB calls and capacity (the holder's own polling counted apart), worker updates, and
 * how an acquisition compares with the floor — the fewest DynamoDB calls any acquisition
 * needs (one Query for candidates + one TransactWriteItems), issued directly with the SDK
 * against the same table.
 *
 * Counting: the runtime's handlers share one DynamoDB client per process
 * (lambdas/store/clients.ts); `instrumentDynamoClient` on it returns the very stats object the
 * handlers' store counts with. The holder's polls are GET /v1/leases/{id}; what one costs is
 * calibrated on an idle system and subtracted. Worker updates are counted from the worker
 * handler's `update processed` log lines (read back, not printed; the handlers' logger runs at
 * INFO for the bench, as on AWS).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  QueryCommand as DocQueryCommand,
  DynamoDBDocumentClient,
  PutCommand,
  TransactWriteCommand,
} from '@aws-sdk/lib-dynamodb';
import type { Lease, Resource } from '../lambdas/core/model.ts';
import { logger } from '../lambdas/handlers/runtime.ts';
import { type DynamoCallStats, instrumentDynamoClient } from '../lambdas/store/clients.ts';
import { DynamoStore } from '../lambdas/store/dynamo-store.ts';
import {
  leaseItem,
  leaseKey,
  leaseStatusPartition,
  leaseTypePartition,
  resourceKey,
  resourceTypePartition,
  slotLockItem,
  slotLockKey,
  sweepSortKey,
} from '../lambdas/store/keys.ts';
import { GSI } from '../lambdas/store/schema.ts';
import { startLocalRuntime } from '../lib/local/runtime.ts';
import { waitFor } from '../lib/local/wait.ts';
import { type CallCount, delta, snapshot } from './lib/calls.ts';
import { type CpuUse, cpuSince, sampleCpu } from './lib/cpu.ts';
import {
  type DynamoProfile,
  type OperationCost,
  profileDynamoClient,
  summarizeProfile,
} from './lib/dynamo-profile.ts';
import { benchDynamoClient } from './lib/emulators.ts';
import { checkHostBill, checkNoOverlap, mapLimit } from './lib/invariants.ts';
import { captureJsonLogs } from './lib/lambda.ts';
import { startProfiling } from './lib/profiler.ts';
import { type BenchContext, type BenchResult, markdownTable, type Row } from './lib/report.ts';
import { figureOf, type LatencySummary, latencySummary, median, round } from './lib/stats.ts';

/** The runtime's table (lib/local/runtime.ts). */
const TABLE_NAME = 'drydock';
const BLUEPRINT_ID = 'warm';

export const WARM_POOL_SIZES = {
  /** N hosts, K clients, M lifecycles per client per run, S sequential acquisitions. */
  full: { hosts: 8, clients: 4, lifecyclesPerClient: 25, sequential: 10, pollMs: 20 },
  quick: { hosts: 2, clients: 2, lifecyclesPerClient: 5, sequential: 3, pollMs: 20 },
};
export type WarmPoolSizes = (typeof WARM_POOL_SIZES)['full'];

export interface WarmPoolRun {
  lifecycles: number;
  wallMs: number;
  lifecyclesPerSecond: number;
  /** POST /v1/leases until a GET shows it active, as the client saw it. */
  requestToActiveMs: LatencySummary;
  /** requestedAt → activatedAt of the same leases (server timestamps: no poll granularity). */
  serverRequestToActiveMs: LatencySummary;
  /** Per lease lifecycle (request, activation, release, teardown), polls excluded. */
  engine: {
    callsPerLifecycle: number;
    capacityPerLifecycle: number;
    byOperation: Record<string, number>;
  };
  holder: { pollsPerLifecycle: number; callsPerLifecycle: number; capacityPerLifecycle: number };
  /** Worker updates (messages processed) per lifecycle. */
  workerUpdatesPerLifecycle: number;
  /** Of those, updates that waited or found nothing to do (stale, none). */
  wastedUpdatesPerLifecycle: number;
  workerActions: Record<string, number>;
  /** Engine calls from POST /v1/leases until the lease is active (sequential, one client). */
  acquisition: {
    /** requestedAt → activatedAt with nothing else going on. */
    serverMs: LatencySummary;
    calls: number;
    capacity: number;
    byShape: OperationCost[];
  };
  floor: { calls: number; capacity: number; latencyMs: number };
  /** acquisition calls / floor calls. */
  ratioToFloor: number;
  hostsLaunchedDuringRun: number;
  peakHostsAlive: number;
  errors: string[];
  cpu: CpuUse;
  violations: string[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The local runtime's API, as a CI client would call it. */
class ApiClient {
  constructor(
    private readonly url: string,
    private readonly token: string,
  ) {}

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await fetch(`${this.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path}: HTTP ${response.status} ${text}`);
    return JSON.parse(text) as T;
  }

  async request(): Promise<Lease> {
    return (await this.call<{ lease: Lease }>('POST', '/v1/leases', { type: 'host' })).lease;
  }

  async get(id: string): Promise<Lease> {
    return (await this.call<{ lease: Lease }>('GET', `/v1/leases/${id}`)).lease;
  }

  async release(id: string): Promise<Lease> {
    return (await this.call<{ lease: Lease }>('POST', `/v1/leases/${id}/release`)).lease;
  }

  /** Polls until the lease is active; throws if it ends or the deadline passes. */
  async waitActive(
    id: string,
    pollMs: number,
    deadlineMs = 30_000,
  ): Promise<{ lease: Lease; polls: number }> {
    const deadline = Date.now() + deadlineMs;
    for (let polls = 1; ; polls++) {
      const lease = await this.get(id);
      if (lease.status === 'active') return { lease, polls };
      if (lease.status !== 'pending' && lease.status !== 'acquired') {
        throw new Error(`lease ${id} is ${lease.status} (${lease.endReason ?? 'no reason'})`);
      }
      if (Date.now() > deadline) {
        throw new Error(`lease ${id} not active after ${deadlineMs} ms (${lease.status})`);
      }
      await sleep(pollMs);
    }
  }
}

/** Waits until the runtime's DynamoDB client has been idle for `quietMs`. */
async function quiesce(stats: { calls: number }, quietMs = 300, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const before = stats.calls;
    await sleep(quietMs);
    if (stats.calls === before || Date.now() > deadline) return;
  }
}

function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 60_000) {
  return waitFor(check, { timeoutMs, intervalMs: 50, message: what });
}

async function activeIdleHosts(audit: DynamoStore): Promise<Resource[]> {
  return (await audit.listLiveResources('host')).filter(
    (r) => r.blueprintId === BLUEPRINT_ID && r.status === 'active' && r.leaseCount === 0,
  );
}

/**
 * The floor: one Query for candidates and one TransactWriteItems that acquires (and activates)
 * a lease on a free host with the same conditions the engine uses, issued with the SDK. The
 * lease item is put before and everything undone after, outside the measurement; its type is
 * one no blueprint serves, so no engine update ever touches it.
 */
async function measureFloor(
  doc: DynamoDBDocumentClient,
  stats: { calls: number; consumedCapacity: number },
): Promise<{ calls: number; capacity: number; latencyMs: number }> {
  const at = new Date().toISOString();
  const lease: Lease = {
    id: `lease-floor-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`,
    type: 'bench-floor',
    attributes: {},
    owner: 'bench',
    status: 'pending',
    version: 0,
    slotLocks: [],
    ttlSeconds: 600,
    requestedAt: at,
    updatedAt: at,
    waitSeq: 0,
    requeues: 0,
    sweepAt: '9999-12-31T00:00:00.000Z',
  };
  await doc.send(new PutCommand({ TableName: TABLE_NAME, Item: leaseItem(lease) }));

  const before = { calls: stats.calls, capacity: stats.consumedCapacity };
  const started = performance.now();
  const candidates = await doc.send(
    new DocQueryCommand({
      TableName: TABLE_NAME,
      IndexName: GSI.byType.name,
      KeyConditionExpression: '#pk = :pk',
      ExpressionAttributeNames: { '#pk': GSI.byType.partitionKey },
      ExpressionAttributeValues: { ':pk': resourceTypePartition('host', 'active') },
    }),
  );
  const free = (candidates.Items ?? []).find(
    (r) => r.status === 'active' && r.leaseCount < r.capacity && !r.suspectSince,
  );
  if (!free) throw new Error('floor: no free host to acquire');
  const key = `resource:${free.id}:lease-slot:0`;
  const expiresAt = new Date(Date.now() + 600_000).toISOString();
  await doc.send(
    new TransactWriteCommand({
      TransactItems: [
        {
          Update: {
            TableName: TABLE_NAME,
            Key: leaseKey(lease.id),
            UpdateExpression:
              'SET #status = :active, #version = #version + :one, resourceId = :rid, blueprintId = :bid, slotLocks = :locks, activatedAt = :now, acquiredAt = :now, expiresAt = :exp, updatedAt = :now, #g1 = :g1, #g2 = :g2, #g2s = :g2s',
            ConditionExpression: '#status = :pending AND #version = :zero',
            ExpressionAttributeNames: {
              '#status': 'status',
              '#version': 'version',
              '#g1': GSI.byType.partitionKey,
              '#g2': GSI.byStatus.partitionKey,
              '#g2s': GSI.byStatus.sortKey,
            },
            ExpressionAttributeValues: {
              ':active': 'active',
              ':pending': 'pending',
              ':zero': 0,
              ':one': 1,
              ':rid': free.id,
              ':bid': free.blueprintId,
              ':locks': [key],
              ':now': at,
              ':exp': expiresAt,
              ':g1': leaseTypePartition(lease.type, 'active'),
              ':g2': leaseStatusPartition('active', lease.id),
              ':g2s': sweepSortKey(expiresAt),
            },
          },
        },
        {
          Put: {
            TableName: TABLE_NAME,
            Item: slotLockItem({ key, ownerKind: 'lease', ownerId: lease.id, createdAt: at }),
            ConditionExpression: 'attribute_not_exists(PK)',
          },
        },
        {
          Update: {
            TableName: TABLE_NAME,
            Key: resourceKey(free.id),
            UpdateExpression: 'ADD leaseCount :one, #uses :one',
            ConditionExpression:
              '#status = :active AND attribute_not_exists(suspectSince) AND leaseCount < #capacity',
            ExpressionAttributeNames: {
              '#status': 'status',
              '#uses': 'uses',
              '#capacity': 'capacity',
            },
            ExpressionAttributeValues: { ':one': 1, ':active': 'active' },
          },
        },
      ],
    }),
  );
  const latencyMs = performance.now() - started;
  const measured = {
    calls: stats.calls - before.calls,
    capacity: round(stats.consumedCapacity - before.capacity, 1),
    latencyMs,
  };

  // Undo (not measured): the host is as it was, the lease and its lock are gone.
  await doc.send(
    new TransactWriteCommand({
      TransactItems: [
        { Delete: { TableName: TABLE_NAME, Key: leaseKey(lease.id) } },
        { Delete: { TableName: TABLE_NAME, Key: slotLockKey(key) } },
        {
          Update: {
            TableName: TABLE_NAME,
            Key: resourceKey(free.id),
            UpdateExpression: 'ADD leaseCount :minus, #uses :minus',
            ExpressionAttributeNames: { '#uses': 'uses' },
            ExpressionAttributeValues: { ':minus': -1 },
          },
        },
      ],
    }),
  );
  return measured;
}

interface Lifecycle {
  leaseId: string;
  clientMs: number;
  polls: number;
}

async function clientLoop(api: ApiClient, count: number, pollMs: number): Promise<Lifecycle[]> {
  const done: Lifecycle[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    const lease = await api.request();
    const { polls } = await api.waitActive(lease.id, pollMs);
    done.push({ leaseId: lease.id, clientMs: performance.now() - started, polls });
    await api.release(lease.id);
  }
  return done;
}

export async function warmPoolBenchmark(ctx: BenchContext): Promise<BenchResult> {
  const sizes = ctx.quick ? WARM_POOL_SIZES.quick : WARM_POOL_SIZES.full;
  const started = performance.now();
  const dataDir = mkdtempSync(join(tmpdir(), 'drydock-bench-runtime-'));
  const errors: string[] = [];
  const workerActions: Record<string, number> = {};
  // The handlers' logger at INFO, read back instead of printed: `update processed` lines are
  // how worker updates are counted.
  const level = logger.getLevelName();
  logger.setLogLevel('INFO');
  const restoreLogs = captureJsonLogs((entry) => {
    if (entry.message === 'update processed' && typeof entry.action === 'string') {
      // `<kind> <action>`, plus the detail for updates that did nothing (numbers blanked).
      const detail =
        entry.action === 'stale' || entry.action === 'none'
          ? `: ${String(entry.detail ?? '(no detail)').replace(/\b(lease|res)-[0-9a-z]+/g, '<$1>')}`
          : '';
      const key = `${String(entry.kind ?? '?')} ${entry.action}${detail}`;
      workerActions[key] = (workerActions[key] ?? 0) + 1;
    } else if (entry.level === 'WARN' || entry.level === 'ERROR' || entry.level === 'CRITICAL') {
      if (errors.length < 20) errors.push(`${entry.level}: ${entry.message}`);
    }
  });
  const progress: string[] = [];
  let runtime: Awaited<ReturnType<typeof startLocalRuntime>> | undefined;
  try {
    ctx.log('warm-pool: starting the local runtime');
    runtime = await startLocalRuntime({
      dataDir,
      port: 0,
      defaultBlueprint: false,
      // No sweep during the measurement (it would add calls no lease made).
      sweepIntervalSeconds: 3600,
      progress: (m) => progress.push(m),
      warn: (m) => {
        if (errors.length < 20) errors.push(m);
      },
    });
    // The client the runtime's engine (so every handler's store) sends its calls through.
    const stats = instrumentDynamoClient(runtime.dynamoClient, { consumedCapacity: true });
    const profile = profileDynamoClient(runtime.dynamoClient);
    const endpoint = process.env.AWS_ENDPOINT_URL_DYNAMODB!;
    const auditClient = benchDynamoClient({ dynamoEndpoint: endpoint, sqsEndpoint: '' });
    const audit = new DynamoStore({ client: auditClient, tableName: TABLE_NAME });
    const floorClient = benchDynamoClient({ dynamoEndpoint: endpoint, sqsEndpoint: '' });
    const floorStats = instrumentDynamoClient(floorClient);
    const floorDoc = DynamoDBDocumentClient.from(floorClient);
    const api = new ApiClient(runtime.url, runtime.token);

    try {
      await api.call('POST', '/v1/blueprints', {
        id: BLUEPRINT_ID,
        type: 'synthetic',
        resourceType: 'host',
        limits: {
          maxResources: sizes.hosts,
          leasesPerResource: 1,
          idleTtlSeconds: 7 * 24 * 3600,
          idleGraceSeconds: 7 * 24 * 3600,
        },
      });
      // Warm up: N leases at once make N hosts; releasing them leaves N idle active hosts.
      const warmup = await Promise.all(Array.from({ length: sizes.hosts }, () => api.request()));
      await Promise.all(warmup.map((l) => api.waitActive(l.id, 50)));
      await Promise.all(warmup.map((l) => api.release(l.id)));
      await waitUntil(
        `${sizes.hosts} idle active hosts`,
        async () => (await activeIdleHosts(audit)).length === sizes.hosts,
      );
      await quiesce(stats);

      // What one holder poll (GET /v1/leases/{id}) costs the API, on an idle system.
      const pollBefore = snapshot(stats);
      for (let i = 0; i < 20; i++) await api.get(warmup[0]!.id);
      const pollCost = delta(snapshot(stats), pollBefore);
      const perPoll = {
        calls: pollCost.calls / 20,
        capacity: (pollCost.consumedCapacity ?? 0) / 20,
      };
      ctx.log(
        `warm-pool: ${sizes.hosts} hosts warm; one poll costs ${perPoll.calls} DynamoDB calls (${JSON.stringify(pollCost.byOperation)})`,
      );

      const runs: WarmPoolRun[] = [];
      for (let r = 0; r < ctx.runs; r++) {
        const run = await measureRun(ctx, {
          profileFile:
            r === 0 && ctx.profileDir ? join(ctx.profileDir, 'warm-pool.cpuprofile') : undefined,
          api,
          audit,
          stats,
          profile,
          perPoll,
          floorDoc,
          floorStats,
          sizes,
          workerActions,
          errors,
          javaPid: runtime.javaPid,
        });
        ctx.log(
          `warm-pool run ${r + 1}/${ctx.runs}: ${run.lifecycles} lifecycles, request→active p50 ${run.requestToActiveMs.p50.toFixed(0)} ms ` +
            `p99 ${run.requestToActiveMs.p99.toFixed(0)} ms, ${run.engine.callsPerLifecycle} engine calls/lifecycle, ` +
            `acquisition ${run.acquisition.calls} calls vs floor ${run.floor.calls}` +
            (run.violations.length ? `; VIOLATIONS: ${run.violations.slice(0, 3).join('; ')}` : ''),
        );
        runs.push(run);
      }
      return warmPoolResult(ctx, sizes, runs, perPoll, Math.round(performance.now() - started));
    } finally {
      auditClient.destroy();
      floorClient.destroy();
    }
  } catch (err) {
    if (progress.length) ctx.log(`warm-pool: runtime progress: ${progress.join(' / ')}`);
    throw err;
  } finally {
    await runtime?.stop();
    restoreLogs();
    logger.setLogLevel(level);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

interface MeasureDeps {
  api: ApiClient;
  audit: DynamoStore;
  stats: DynamoCallStats;
  profile: DynamoProfile;
  perPoll: { calls: number; capacity: number };
  floorDoc: DynamoDBDocumentClient;
  floorStats: { calls: number; consumedCapacity: number };
  sizes: WarmPoolSizes;
  workerActions: Record<string, number>;
  errors: string[];
  javaPid: number | undefined;
  /** CPU profile of the concurrent phase. */
  profileFile: string | undefined;
}

async function measureRun(ctx: BenchContext, deps: MeasureDeps): Promise<WarmPoolRun> {
  const { api, audit, stats, profile, perPoll, sizes, workerActions } = deps;
  const violations: string[] = [];
  const hostsBefore = (await checkHostBill(audit, BLUEPRINT_ID, sizes.hosts, [])).launched;
  for (const key of Object.keys(workerActions)) delete workerActions[key];
  const errorsBefore = deps.errors.length;

  // ---- K clients, concurrently --------------------------------------------------------------
  await quiesce(stats);
  const before = snapshot(stats);
  const profiling = deps.profileFile ? await startProfiling(deps.profileFile) : undefined;
  const cpuStart = sampleCpu(deps.javaPid);
  const wallStart = performance.now();
  const perClient = await Promise.all(
    Array.from({ length: sizes.clients }, () =>
      clientLoop(api, sizes.lifecyclesPerClient, sizes.pollMs),
    ),
  );
  const wallMs = performance.now() - wallStart;
  const lifecycles = perClient.flat();
  // Every lease destroyed and every host idle again: the lifecycle is complete.
  await waitUntil('every lease to be destroyed and every host idle', async () => {
    const live = await Promise.all(
      (['pending', 'acquired', 'active', 'released', 'broken'] as const).map((s) =>
        audit.listLeasesByStatus(s, { limit: 1 }),
      ),
    );
    return (
      live.every((p) => p.items.length === 0) &&
      (await activeIdleHosts(audit)).length === sizes.hosts
    );
  });
  await quiesce(stats);
  const cpu = cpuSince(cpuStart, deps.javaPid, ctx.cores);
  await profiling?.stop();
  const window: CallCount = delta(snapshot(stats), before);
  const n = lifecycles.length;
  const polls = lifecycles.reduce((s, l) => s + l.polls, 0);
  const updates = Object.values(workerActions).reduce((s, k) => s + k, 0);
  const actions = { ...workerActions };

  // ---- checks (uncounted) -------------------------------------------------------------------
  const leases = (await mapLimit(lifecycles, 16, (l) => audit.getLease(l.leaseId))).filter(
    (l): l is Lease => l !== undefined,
  );
  if (leases.length !== n) violations.push(`${n - leases.length} leases disappeared`);
  checkNoOverlap(leases, violations);
  const bill = await checkHostBill(audit, BLUEPRINT_ID, sizes.hosts, violations);
  const ended = leases.filter((l) => l.status !== 'destroyed' || !l.activatedAt);
  if (ended.length > 0) {
    violations.push(
      `${ended.length} leases did not end destroyed after being active, e.g. ${ended[0]!.id} (${ended[0]!.status})`,
    );
  }
  if (deps.errors.length > errorsBefore) {
    violations.push(
      `runtime reported problems: ${deps.errors.slice(errorsBefore, errorsBefore + 3).join(' | ')}`,
    );
  }

  // ---- one acquisition at a time, against the floor ------------------------------------------
  const acquisitions: Array<{ calls: number; capacity: number }> = [];
  let sequentialPolls = 0;
  const sequentialServerMs: number[] = [];
  const floors: Array<{ calls: number; capacity: number; latencyMs: number }> = [];
  profile.reset();
  const profiled = new Map<string, { durationsMs: number[]; capacity: number }>();
  for (let i = 0; i < sizes.sequential; i++) {
    await quiesce(stats);
    const start = snapshot(stats);
    profile.reset();
    const lease = await api.request();
    const { lease: active, polls: p } = await api.waitActive(lease.id, sizes.pollMs);
    sequentialPolls += p;
    sequentialServerMs.push(Date.parse(active.activatedAt!) - Date.parse(active.requestedAt));
    await quiesce(stats);
    const used = delta(snapshot(stats), start);
    acquisitions.push({
      calls: used.calls - p * perPoll.calls,
      capacity: (used.consumedCapacity ?? 0) - p * perPoll.capacity,
    });
    for (const [key, s] of profile.samples) {
      const entry = profiled.get(key) ?? { durationsMs: [], capacity: 0 };
      entry.durationsMs.push(...s.durationsMs);
      entry.capacity += s.capacity;
      profiled.set(key, entry);
    }
    await api.release(lease.id);
    await waitUntil('the released lease to be destroyed', async () => {
      return (await audit.getLease(lease.id))?.status === 'destroyed';
    });
    await quiesce(stats);
    floors.push(await measureFloor(deps.floorDoc, deps.floorStats));
  }
  // The polls' GetItems are in the profile too: take them out of the GetItem LEASE row.
  const byShape = summarizeProfile(profiled, { byShape: true })
    .map((row) =>
      row.category === 'core' && row.operation === 'GetItem LEASE'
        ? { ...row, calls: row.calls - sequentialPolls * perPoll.calls }
        : row,
    )
    .filter((row) => row.calls > 0);
  const acquisitionCalls = median(acquisitions.map((a) => a.calls));
  const floorCalls = median(floors.map((f) => f.calls));

  return {
    lifecycles: n,
    wallMs: Math.round(wallMs),
    lifecyclesPerSecond: round(n / (wallMs / 1000), 2),
    requestToActiveMs: latencySummary(lifecycles.map((l) => l.clientMs)),
    serverRequestToActiveMs: latencySummary(
      leases
        .filter((l) => l.activatedAt)
        .map((l) => Date.parse(l.activatedAt!) - Date.parse(l.requestedAt)),
    ),
    engine: {
      callsPerLifecycle: round((window.calls - polls * perPoll.calls) / n, 2),
      capacityPerLifecycle: round(
        ((window.consumedCapacity ?? 0) - polls * perPoll.capacity) / n,
        2,
      ),
      byOperation: window.byOperation,
    },
    holder: {
      pollsPerLifecycle: round(polls / n, 2),
      callsPerLifecycle: round((polls * perPoll.calls) / n, 2),
      capacityPerLifecycle: round((polls * perPoll.capacity) / n, 2),
    },
    workerUpdatesPerLifecycle: round(updates / n, 2),
    wastedUpdatesPerLifecycle: round(
      Object.entries(actions)
        .filter(([key]) => / (stale|none|waited)\b/.test(key))
        .reduce((sum, [, k]) => sum + k, 0) / n,
      2,
    ),
    workerActions: actions,
    acquisition: {
      serverMs: latencySummary(sequentialServerMs),
      calls: acquisitionCalls,
      capacity: round(median(acquisitions.map((a) => a.capacity)), 1),
      byShape,
    },
    floor: {
      calls: floorCalls,
      capacity: median(floors.map((f) => f.capacity)),
      latencyMs: round(median(floors.map((f) => f.latencyMs)), 1),
    },
    ratioToFloor: round(acquisitionCalls / floorCalls, 2),
    hostsLaunchedDuringRun: bill.launched - hostsBefore,
    peakHostsAlive: bill.peakAlive,
    errors: deps.errors.slice(errorsBefore),
    cpu,
    violations,
  };
}

function warmPoolResult(
  ctx: BenchContext,
  sizes: WarmPoolSizes,
  runs: WarmPoolRun[],
  perPoll: { calls: number; capacity: number },
  wallMs: number,
): BenchResult {
  const f = (pick: (r: WarmPoolRun) => number) => figureOf(runs, pick);
  const rows: Row[] = [
    {
      label: 'request→active p50 (client)',
      unit: 'ms',
      figure: f((r) => r.requestToActiveMs.p50),
      digits: 0,
    },
    {
      label: 'request→active p95 (client)',
      unit: 'ms',
      figure: f((r) => r.requestToActiveMs.p95),
      digits: 0,
    },
    {
      label: 'request→active p99 (client)',
      unit: 'ms',
      figure: f((r) => r.requestToActiveMs.p99),
      digits: 0,
    },
    {
      label: 'request→active p50 (server timestamps)',
      unit: 'ms',
      figure: f((r) => r.serverRequestToActiveMs.p50),
      digits: 0,
    },
    {
      label: 'request→active p99 (server timestamps)',
      unit: 'ms',
      figure: f((r) => r.serverRequestToActiveMs.p99),
      digits: 0,
    },
    {
      label: 'request→active p50, one client alone (server timestamps)',
      unit: 'ms',
      figure: f((r) => r.acquisition.serverMs.p50),
      digits: 0,
    },
    { label: 'lease lifecycles per second', figure: f((r) => r.lifecyclesPerSecond), digits: 2 },
    { label: 'engine DynamoDB calls per lifecycle', figure: f((r) => r.engine.callsPerLifecycle) },
    {
      label: 'engine consumed capacity per lifecycle',
      unit: 'CU',
      figure: f((r) => r.engine.capacityPerLifecycle),
    },
    { label: 'holder polls per lifecycle', figure: f((r) => r.holder.pollsPerLifecycle) },
    {
      label: 'holder polling DynamoDB calls per lifecycle',
      figure: f((r) => r.holder.callsPerLifecycle),
    },
    {
      label: 'worker updates per lifecycle',
      figure: f((r) => r.workerUpdatesPerLifecycle),
      digits: 2,
    },
    {
      label: '… of which waited or found nothing to do',
      figure: f((r) => r.wastedUpdatesPerLifecycle),
      digits: 2,
    },
    {
      label: 'engine calls per acquisition (request → active)',
      figure: f((r) => r.acquisition.calls),
    },
    {
      label: 'floor: calls per acquisition (Query + TransactWriteItems)',
      figure: f((r) => r.floor.calls),
      digits: 0,
    },
    { label: 'ratio engine / floor', unit: '×', figure: f((r) => r.ratioToFloor), digits: 2 },
    {
      label: 'engine capacity per acquisition',
      unit: 'CU',
      figure: f((r) => r.acquisition.capacity),
    },
    { label: 'floor capacity per acquisition', unit: 'CU', figure: f((r) => r.floor.capacity) },
    {
      label: 'floor latency (Query + TransactWriteItems)',
      unit: 'ms',
      figure: f((r) => r.floor.latencyMs),
    },
    {
      label: 'hosts launched during the run (warm: 0)',
      figure: f((r) => r.hostsLaunchedDuringRun),
      digits: 0,
    },
    { label: 'peak hosts alive (bill)', figure: f((r) => r.peakHostsAlive), digits: 0 },
    {
      label: 'CPU: node (runtime, API, workers)',
      unit: 's',
      figure: f((r) => r.cpu.nodeMs / 1000),
    },
    {
      label: 'CPU: DynamoDB Local (java)',
      unit: 's',
      figure: f((r) => (r.cpu.javaMs ?? Number.NaN) / 1000),
    },
  ];
  const typical = [...runs].sort((a, b) => a.requestToActiveMs.p50 - b.requestToActiveMs.p50)[
    Math.floor((runs.length - 1) / 2)
  ]!;
  const acquisitionTable = markdownTable(
    ['call of one acquisition (request → active)', 'calls', 'p50 ms'],
    typical.acquisition.byShape
      .sort((a, b) => b.calls - a.calls)
      .map((c) => [
        `${c.operation}${c.category === 'records' ? ' (synthetic host bill)' : ''}`,
        (c.calls / sizes.sequential).toFixed(2),
        c.p50.toFixed(1),
      ]),
  );
  return {
    name: 'warm-pool',
    title: `warm pool: ${sizes.hosts} idle synthetic hosts, ${sizes.clients} clients × ${sizes.lifecyclesPerClient} request → active → release through the local runtime's HTTP API`,
    config: { ...sizes, runs: ctx.runs, runtimeWorkers: 4, runtimeBatchSize: 10, perPoll },
    rows,
    extraMarkdown: `The engine's calls for one acquisition (mean of ${sizes.sequential} sequential acquisitions in the run with the median p50; the holder's polls taken out):\n\n${acquisitionTable}`,
    notes: [
      `Client latency is POST /v1/leases until a GET /v1/leases/{id} (every ${sizes.pollMs} ms) shows the lease active, so it includes up to ${sizes.pollMs} ms of poll granularity; the server-timestamp rows do not.`,
      `Holder polls are the client's cost: one poll costs the API ${perPoll.calls} DynamoDB call(s) (${perPoll.capacity} CU), calibrated on an idle system and subtracted from the engine's figures.`,
      'A lifecycle = request, allocation, activation, release and teardown of one lease (the host stays, idle).',
      'The runtime: 4 queue workers, SQS batches of up to 10, production engine settings except a 15 s backoff cap (LOCAL_SETTINGS); DynamoDB Local with a persistent database (-dbPath), unlike the in-memory one of the other benchmarks.',
      `Worker update actions of that run: ${JSON.stringify(typical.workerActions)}.`,
    ],
    runsPerFigure: ctx.runs,
    runs,
    violations: runs.flatMap((r, i) => r.violations.map((v) => `run ${i + 1}: ${v}`)),
    wallMs,
  };
}
