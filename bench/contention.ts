/**
 * Contention: a burst of leases requested at once on a small synthetic pool (one lease per
 * host), served by W concurrent workers pulling update messages from the SQS emulator. Each
 * holder releases its lease as soon as it sees it active. Measures how long until every lease
 * was served, what it cost in DynamoDB calls and worker updates, and how much of that work was
 * wasted (updates that only waited or lost a race) — and checks from the recorded history that
 * the pool cap held and no host ever had two leases at once.
 *
 * Roles get separate DynamoDB clients, so their calls are counted apart:
 *   api     requestLease / releaseLease (what the API Lambda would do)
 *   worker  the worker Lambda handler with SQS events (or processUpdate directly, workerMode)
 *   holder  the holders' polling for "is my lease active yet" (the client's cost, not the engine's)
 *   audit   the bench's own drain detection and checks (not reported as cost)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { localRegistry } from '../lambdas/blueprints/registry.ts';
import { type Engine, type EngineSettings, makeEngine } from '../lambdas/core/engine.ts';
import { errorMessage } from '../lambdas/core/errors.ts';
import type { Lease, LeaseStatus, Resource } from '../lambdas/core/model.ts';
import {
  type AnyOutcome,
  describeOutcome,
  outcomeDetail,
  parseOutcome,
  wastedAs,
} from '../lambdas/core/outcomes.ts';
import { type Store, systemClock, type WorkQueue } from '../lambdas/core/ports.ts';
import {
  createBlueprint,
  processUpdate,
  releaseLease,
  requestLease,
} from '../lambdas/core/use-cases.ts';
import { logger } from '../lambdas/handlers/runtime.ts';
import { makeWorkerHandler } from '../lambdas/handlers/worker.ts';
import { SqsWorkQueue } from '../lambdas/queue/sqs-queue.ts';
import { type DynamoCallStats, instrumentDynamoClient } from '../lambdas/store/clients.ts';
import { connectionBudget } from '../lambdas/store/connections.ts';
import { DynamoStore } from '../lambdas/store/dynamo-store.ts';
import { QueuePump, type QueuePumpOptions } from '../lib/local/queue-pump.ts';
import { type CallCount, countSqsCalls, type SqsCallStats, snapshot, sum } from './lib/calls.ts';
import { type CpuUse, cpuSince, sampleCpu } from './lib/cpu.ts';
import {
  categoryTotals,
  type DynamoProfile,
  mergeProfiles,
  type OperationCost,
  profileDynamoClient,
  summarizeProfile,
} from './lib/dynamo-profile.ts';
import {
  type BenchEnv,
  benchDynamoClient,
  benchSqsClient,
  freshQueue,
  freshTable,
} from './lib/emulators.ts';
import { checkHostBill, checkNoOverlap, checkServedOnce, mapLimit } from './lib/invariants.ts';
import { captureJsonLogs, lambdaContext, sqsEvent } from './lib/lambda.ts';
import { startProfiling } from './lib/profiler.ts';
import {
  type BenchContext,
  type BenchResult,
  markdownTable,
  type Row,
  requireEnv,
} from './lib/report.ts';
import { figureOf, type LatencySummary, latencySummary, round } from './lib/stats.ts';

export interface ContentionOptions {
  /** Leases requested at once. */
  leases: number;
  /** The synthetic blueprint's maxResources (one lease per host). */
  cap: number;
  /** Concurrent workers (receive/handle loops, one message each). */
  workers: number;
  /**
   * A fresh host per lease (reclaim on release), as in test/engine/contention.test.ts: every
   * lease then costs an allocation, a host launch and a teardown, and the pool's slot locks
   * are contended the whole time. @default true
   */
  reclaimOnRelease?: boolean;
  /** Engine settings over the production defaults (DEFAULT_SETTINGS). @default {} */
  settings?: Partial<EngineSettings>;
  /** Give up (a violation) if not every lease is active by then. @default 300_000 */
  servedTimeoutMs?: number;
  /** Give up (a violation) when no lease became active for this long. @default 60_000 */
  stallMs?: number;
  /** How often holders look for newly active leases. @default 50 */
  holderPollMs?: number;
  /**
   * `handler`: the worker Lambda handler with SQS events (what runs on AWS); `direct`:
   * processUpdate on an engine of the bench's own. @default 'handler'
   */
  workerMode?: 'handler' | 'direct';
  /** Write a CPU profile of the measured window (requests to drain) to this file. */
  profileFile?: string;
  /** DynamoDB Local's pid, to account its CPU time. */
  javaPid?: number;
  /** Cores of the machine, for CPU utilisation. @default 2 */
  cores?: number;
}

/** Calls of one role, per lease. */
export interface RoleCost {
  calls: number;
  callsPerLease: number;
  capacityPerLease: number;
  byOperation: Record<string, number>;
}

export interface ContentionRun {
  config: Required<
    Pick<ContentionOptions, 'leases' | 'cap' | 'workers' | 'reclaimOnRelease' | 'workerMode'>
  >;
  /** First request to the last lease becoming active. */
  servedMs: number;
  /** First request to every lease destroyed and every host reclaimed. */
  drainedMs: number;
  /** Leases served per second (leases / servedMs). */
  leasesPerSecond: number;
  /** requestedAt -> activatedAt of each lease (server timestamps). */
  requestToActiveMs: LatencySummary;
  /** Where a pool slot's time goes, phase by phase (see slotCycle). */
  slotCycle: Record<string, LatencySummary>;
  peakHostsAlive: number;
  hostsLaunched: number;
  dynamo: {
    /** api + worker: the engine's cost, the synthetic plug-in's record calls included. */
    engine: RoleCost;
    /** The engine's cost without the synthetic plug-in's record calls (its host bill). */
    core: { callsPerLease: number; capacityPerLease: number };
    /** The synthetic plug-in's record calls alone. */
    records: { callsPerLease: number; capacityPerLease: number };
    api: RoleCost;
    worker: RoleCost;
    /** The holders' polling (client cost). */
    holder: RoleCost;
  };
  sqs: { calls: number; messagesSent: number; byOperation: Record<string, number> };
  updates: {
    total: number;
    perLease: number;
    /** processUpdate's returned actions, counted. */
    actions: Record<string, number>;
    /** Why updates were stale (message kind and processUpdate's detail, numbers blanked). */
    staleDetails: Record<string, number>;
    /** Why leases waited, the same way. */
    waitDetails: Record<string, number>;
    waited: number;
    stale: number;
    /** waited + stale. */
    wasted: number;
    /** wasted / total. */
    wastedShare: number;
  };
  workerErrors: number;
  errorSamples: string[];
  dlqMessages: number;
  cpu: CpuUse;
  /** Engine-side DynamoDB calls, capacity and time per operation. */
  operations: OperationCost[];
  /** The same per call shape (which items a call touched: which engine step it was). */
  callShapes: OperationCost[];
  violations: string[];
}

const HOLDER = 'bench';
const BLUEPRINT_ID = 'pool';
const LIVE_LEASE_STATUSES: LeaseStatus[] = ['pending', 'acquired', 'active', 'released', 'broken'];

function cost(count: CallCount, leases: number): RoleCost {
  return {
    calls: count.calls,
    callsPerLease: round(count.calls / leases, 2),
    capacityPerLease: round((count.consumedCapacity ?? 0) / leases, 2),
    byOperation: count.byOperation,
  };
}

/** Which bucket a processUpdate outcome falls in ("wait" and "stale" are wasted work). */
export function classifyAction(outcome: AnyOutcome): 'waited' | 'stale' | 'other' {
  return wastedAs(outcome) ?? 'other';
}

async function allLeasesInStatus(store: DynamoStore, status: LeaseStatus): Promise<Lease[]> {
  const leases: Lease[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.listLeasesByStatus(status, { limit: 100, cursor });
    leases.push(...page.items);
    cursor = page.cursor;
  } while (cursor);
  return leases;
}

const at = (iso: string | undefined) => (iso ? Date.parse(iso) : Number.NaN);

/**
 * The life of a pool slot under saturation, from the stored timestamps: a host is allocated
 * for a waiting lease, set up, the lease activated on it, held, released, destroyed; the host
 * is torn down, and its freed slot goes to the next waiting lease. With every slot busy the
 * whole time, throughput is cap / (sum of the phases), so the biggest phase is where the wall
 * time goes. "slot free → next allocation" pairs the k-th teardown with the (k + cap)-th
 * allocation (the pool is full, so each allocation after the first `cap` needed a teardown).
 */
export function slotCycle(
  leases: readonly Lease[],
  resources: readonly Resource[],
  cap: number,
): Record<string, LatencySummary> {
  const byId = new Map(resources.map((r) => [r.id, r]));
  const phase = (pick: (l: Lease, r: Resource) => number) =>
    latencySummary(
      leases
        .flatMap((l) => {
          const r = l.resourceId ? byId.get(l.resourceId) : undefined;
          return r ? [pick(l, r)] : [];
        })
        .filter((ms) => Number.isFinite(ms)),
    );
  const created = resources.map((r) => at(r.createdAt)).sort((a, b) => a - b);
  const destroyed = resources
    .map((r) => at(r.destroyedAt))
    .filter(Number.isFinite)
    .sort((a, b) => a - b);
  const handovers = destroyed
    .map((t, k) => (created[k + cap] ?? Number.NaN) - t)
    .filter(Number.isFinite);
  return {
    'host allocated → host active': phase((_, r) => at(r.activatedAt) - at(r.createdAt)),
    'host active → lease active': phase((l, r) => at(l.activatedAt) - at(r.activatedAt)),
    'lease active → released by holder': phase((l) => at(l.releasedAt) - at(l.activatedAt)),
    'released → lease destroyed': phase((l) => at(l.destroyedAt) - at(l.releasedAt)),
    'lease destroyed → host destroyed': phase((l, r) => at(r.destroyedAt) - at(l.destroyedAt)),
    'host destroyed (slot free) → next allocation': latencySummary(handovers),
  };
}

export function slotCycleTable(cycle: Record<string, LatencySummary>): string {
  return markdownTable(
    ['phase of a pool slot', 'p50 ms', 'p95 ms', 'samples'],
    Object.entries(cycle).map(([name, s]) => [
      name,
      s.p50.toFixed(0),
      s.p95.toFixed(0),
      String(s.samples),
    ]),
  );
}

/** The worker side of a run: how messages are handled and where its calls are counted. */
interface WorkerSide {
  handle: QueuePumpOptions['handle'];
  /** The workers' DynamoDB calls. */
  stats: DynamoCallStats;
  profile: DynamoProfile;
  /** The workers' own SQS client, when it is not the bench's. */
  sqsStats?: SqsCallStats;
  close(): void;
}

interface WorkerSideOptions {
  dataDir: string;
  options: ContentionOptions;
  /** What one update did: the message kind and processUpdate's outcome. */
  record: (kind: string, outcome: AnyOutcome) => void;
  errors: unknown[];
}

/** An engine as a Lambda container builds one (composition.ts), on the bench's parts. */
function benchEngine(
  store: Store,
  queue: WorkQueue,
  dataDir: string,
  settings: Partial<EngineSettings> = {},
): Engine {
  return makeEngine({
    store,
    queue,
    clock: systemClock,
    registry: localRegistry(),
    dataDir,
    settings,
  });
}

/** processUpdate on an engine of our own: every action is seen directly. */
function directWorkers({
  client,
  store,
  workQueue,
  dataDir,
  options,
  record,
  errors,
}: WorkerSideOptions & {
  client: DynamoDBClient;
  store: DynamoStore;
  workQueue: SqsWorkQueue;
}): WorkerSide {
  const engine = benchEngine(store, workQueue, dataDir, options.settings);
  return {
    stats: store.stats,
    profile: profileDynamoClient(client),
    handle: async (batch) => {
      const failed: string[] = [];
      for (const received of batch) {
        if (!received.message) {
          errors.push(received.error);
          continue; // malformed: acknowledged (a Lambda would let it go to the DLQ)
        }
        try {
          const { outcome } = await processUpdate(engine, received.message);
          record(received.message.kind, outcome);
        } catch (err) {
          errors.push(err);
          failed.push(received.messageId);
        }
      }
      return { failedMessageIds: failed };
    },
    close() {},
  };
}

/**
 * The real worker Lambda handler (lambdas/handlers/worker.ts) on an engine built like a Lambda
 * container's (lambdas/handlers/composition.ts), invoked with SQS events. The engine has SDK
 * clients of its own, so the handler's DynamoDB and SQS calls are counted apart from everyone
 * else's. What each update did is read from the handler's `update processed` log lines (at INFO
 * for the run, and not printed).
 */
function handlerWorkers({
  env,
  tableName,
  queue,
  dataDir,
  options,
  record,
  errors,
}: WorkerSideOptions & {
  env: BenchEnv;
  tableName: string;
  queue: { queueUrl: string; queueArn: string };
}): WorkerSide {
  const dynamo = benchDynamoClient(env);
  const sqs = benchSqsClient(env);
  const engine = benchEngine(
    new DynamoStore({ client: dynamo, tableName }),
    new SqsWorkQueue({ client: sqs, queueUrl: queue.queueUrl }),
    dataDir,
    options.settings,
  );
  const workerHandler = makeWorkerHandler({ engine });
  const stats = instrumentDynamoClient(dynamo);
  const profile = profileDynamoClient(dynamo);
  const sqsStats = countSqsCalls(sqs);
  const level = logger.getLevelName();
  logger.setLogLevel('INFO');
  const restoreLogs = captureJsonLogs((entry) => {
    const outcome = entry.message === 'update processed' ? parseOutcome(entry.outcome) : undefined;
    if (outcome) {
      record(typeof entry.kind === 'string' ? entry.kind : '?', outcome);
    } else if (entry.level === 'WARN' || entry.level === 'ERROR' || entry.level === 'CRITICAL') {
      const error = entry.error as { message?: string } | undefined;
      errors.push(new Error(`${entry.message}${error?.message ? `: ${error.message}` : ''}`));
    }
  });
  return {
    stats,
    profile,
    sqsStats,
    handle: async (batch) => {
      const response = await workerHandler(
        sqsEvent(batch, queue.queueArn),
        lambdaContext('worker', 60_000),
      );
      return { failedMessageIds: (response?.batchItemFailures ?? []).map((f) => f.itemIdentifier) };
    },
    close() {
      restoreLogs();
      logger.setLogLevel(level);
      dynamo.destroy();
      sqs.destroy();
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function runContention(
  env: BenchEnv,
  options: ContentionOptions,
): Promise<ContentionRun> {
  const {
    leases: n,
    cap,
    workers,
    reclaimOnRelease = true,
    servedTimeoutMs = 300_000,
    stallMs = 60_000,
    holderPollMs = 50,
  } = options;
  const violations: string[] = [];
  const table = await freshTable(env, 'contention');
  const queue = await freshQueue(env, 'contention');
  const dataDir = mkdtempSync(join(tmpdir(), 'drydock-bench-'));
  // One process, so one bounded set of connections for all its clients (connections.ts): a
  // burst of requests queues for a socket instead of timing out while queued.
  const connections = connectionBudget();
  const clients = {
    api: benchDynamoClient(env, connections),
    worker: benchDynamoClient(env, connections),
    holder: benchDynamoClient(env, connections),
    audit: benchDynamoClient(env, connections),
  };
  const sqs = benchSqsClient(env);
  const sqsStats = countSqsCalls(sqs);
  const store = (client: (typeof clients)['api']) =>
    new DynamoStore({ client, tableName: table.tableName });
  const stores = {
    api: store(clients.api),
    worker: store(clients.worker),
    holder: store(clients.holder),
    audit: store(clients.audit),
  };
  const workQueue = new SqsWorkQueue({ client: sqs, queueUrl: queue.queueUrl });
  const api = benchEngine(stores.api, workQueue, dataDir, options.settings);

  const actions: Record<string, number> = {};
  const staleDetails: Record<string, number> = {};
  const waitDetails: Record<string, number> = {};
  const errors: unknown[] = [];
  const wasted = { waited: 0, stale: 0 };
  const record = (kind: string, outcome: AnyOutcome) => {
    const action = describeOutcome(outcome);
    actions[action] = (actions[action] ?? 0) + 1;
    const kindOf = classifyAction(outcome);
    if (kindOf !== 'other') {
      wasted[kindOf]++;
      // Numbers and ids blanked, so equal reasons count together.
      const why = `${kind} update: ${(outcomeDetail(outcome) ?? '(no detail)')
        .replace(/\b(lease|res)-[0-9a-z]+/g, '<$1>')
        .replace(/\d+/g, 'N')}`;
      const into = kindOf === 'stale' ? staleDetails : waitDetails;
      into[why] = (into[why] ?? 0) + 1;
    }
  };
  const workerSide =
    (options.workerMode ?? 'handler') === 'handler'
      ? handlerWorkers({ env, tableName: table.tableName, queue, dataDir, options, record, errors })
      : directWorkers({
          client: clients.worker,
          store: stores.worker,
          workQueue,
          dataDir,
          options,
          record,
          errors,
        });
  const profiles = [profileDynamoClient(clients.api), workerSide.profile];

  let pump: QueuePump | undefined;
  try {
    await createBlueprint(api, {
      id: BLUEPRINT_ID,
      type: 'synthetic',
      resourceType: 'host',
      limits: { maxResources: cap, leasesPerResource: 1, reclaimOnRelease },
    });
    for (const s of Object.values(stores)) s.resetStats();
    for (const p of profiles) p.reset();
    workerSide.stats.reset();
    sqsStats.reset();
    workerSide.sqsStats?.reset();

    pump = new QueuePump({
      client: sqs,
      queueUrl: queue.queueUrl,
      workers,
      batchSize: 1,
      handle: workerSide.handle,
      onError: (err) => errors.push(err),
    }).start();

    const profiling = options.profileFile ? await startProfiling(options.profileFile) : undefined;
    const cpuStart = sampleCpu(options.javaPid);
    const started = Date.now();
    const requested = await Promise.all(
      Array.from({ length: n }, () => requestLease(api, { type: 'host', owner: HOLDER })),
    );
    const ours = new Set(requested.map((l) => l.id));

    // Holders: release each lease as soon as it is seen active. A run that stops making
    // progress (broken workers) ends early instead of waiting for the deadline.
    const releases = new Map<string, Promise<unknown>>();
    const servedDeadline = started + servedTimeoutMs;
    let progressAt = Date.now();
    const stalled = () => Date.now() - progressAt > stallMs;
    while (releases.size < n && Date.now() < servedDeadline && !stalled()) {
      for (const lease of await allLeasesInStatus(stores.holder, 'active')) {
        if (ours.has(lease.id) && !releases.has(lease.id)) {
          progressAt = Date.now();
          releases.set(
            lease.id,
            releaseLease(api, lease.id, { principal: HOLDER }).catch((err) => errors.push(err)),
          );
        }
      }
      if (releases.size < n) await sleep(holderPollMs);
    }
    if (releases.size < n) {
      violations.push(
        `only ${releases.size} of ${n} leases became active ` +
          (stalled()
            ? `(none for ${stallMs / 1000}s: stalled)`
            : `within ${servedTimeoutMs / 1000}s`) +
          (errors.length
            ? `; ${errors.length} worker errors, e.g. ${errorMessage(errors[0])}`
            : ''),
      );
    }
    await Promise.all(releases.values());

    // Drain: every lease destroyed, every host reclaimed (its pool slot lock freed).
    const drainDeadline = Date.now() + Math.min(stallMs, 120_000);
    let drained = false;
    while (!drained && Date.now() < drainDeadline) {
      const live = await Promise.all(
        LIVE_LEASE_STATUSES.map((s) => stores.audit.listLeasesByStatus(s, { limit: 1 })),
      );
      drained =
        live.every((page) => page.items.length === 0) &&
        (!reclaimOnRelease || (await stores.audit.listSlotLocks({ limit: 1 })).items.length === 0);
      if (!drained) await sleep(100);
    }
    if (!drained) {
      violations.push(
        `leases or hosts were still live ${Math.min(stallMs, 120_000) / 1000}s after the last release`,
      );
    }
    const drainedMs = Date.now() - started;
    await profiling?.stop();
    await pump.stop();
    pump = undefined;
    const cpu = cpuSince(cpuStart, options.javaPid, options.cores ?? 2);

    const sqsTotal = sum(sqsStats, ...(workerSide.sqsStats ? [workerSide.sqsStats] : []));
    const sqsCalls = {
      calls: sqsTotal.calls,
      messagesSent: sqsStats.messagesSent + (workerSide.sqsStats?.messagesSent ?? 0),
      byOperation: sqsTotal.byOperation,
    };
    const counts = {
      api: snapshot(stores.api.stats),
      worker: snapshot(workerSide.stats),
      holder: snapshot(stores.holder.stats),
    };

    // ---- checks (uncounted) ------------------------------------------------------------------
    const final = (await mapLimit(requested, 16, (l) => stores.audit.getLease(l.id))).filter(
      (l): l is Lease => l !== undefined,
    );
    if (final.length !== n) violations.push(`${n - final.length} leases disappeared`);
    await checkServedOnce(stores.audit, final, HOLDER, violations);
    checkNoOverlap(final, violations);
    const bill = await checkHostBill(stores.audit, BLUEPRINT_ID, cap, violations);
    if (reclaimOnRelease && bill.alive > 0) {
      violations.push(`${bill.alive} synthetic hosts still alive after the drain`);
    }
    const resourceIds = [...new Set(final.flatMap((l) => (l.resourceId ? [l.resourceId] : [])))];
    const resources = (
      await mapLimit(resourceIds, 16, (id) => stores.audit.getResource(id))
    ).filter((r): r is Resource => r !== undefined);
    const dlq = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: queue.dlqUrl,
        AttributeNames: ['ApproximateNumberOfMessages'],
      }),
    );
    const dlqMessages = Number(dlq.Attributes?.ApproximateNumberOfMessages ?? 0);
    if (dlqMessages > 0) violations.push(`${dlqMessages} update messages ended in the DLQ`);

    const activated = final.filter((l) => l.activatedAt);
    const servedMs =
      activated.length === 0
        ? Number.NaN
        : Math.max(...activated.map((l) => Date.parse(l.activatedAt!))) - started;
    const total = Object.values(actions).reduce((s, k) => s + k, 0);
    const { waited, stale } = wasted;
    const merged = mergeProfiles(profiles);
    const operations = summarizeProfile(merged);
    const callShapes = summarizeProfile(merged, { byShape: true });
    const perLease = (t: { calls: number; capacity: number }) => ({
      callsPerLease: round(t.calls / n, 2),
      capacityPerLease: round(t.capacity / n, 2),
    });

    return {
      config: {
        leases: n,
        cap,
        workers,
        reclaimOnRelease,
        workerMode: options.workerMode ?? 'handler',
      },
      servedMs,
      drainedMs,
      leasesPerSecond: round(n / (servedMs / 1000), 2),
      requestToActiveMs: latencySummary(
        activated.map((l) => Date.parse(l.activatedAt!) - Date.parse(l.requestedAt)),
      ),
      slotCycle: slotCycle(final, resources, cap),
      peakHostsAlive: bill.peakAlive,
      hostsLaunched: bill.launched,
      dynamo: {
        engine: cost(sum(counts.api, counts.worker), n),
        core: perLease(categoryTotals(operations, 'core')),
        records: perLease(categoryTotals(operations, 'records')),
        api: cost(counts.api, n),
        worker: cost(counts.worker, n),
        holder: cost(counts.holder, n),
      },
      sqs: sqsCalls,
      updates: {
        total,
        perLease: round(total / n, 2),
        actions,
        staleDetails,
        waitDetails,
        waited,
        stale,
        wasted: waited + stale,
        wastedShare: total === 0 ? 0 : round((waited + stale) / total, 3),
      },
      workerErrors: errors.length,
      errorSamples: [...new Set(errors.map(errorMessage))].slice(0, 5),
      dlqMessages,
      cpu,
      operations,
      callShapes,
      violations,
    };
  } finally {
    await pump?.stop();
    workerSide.close();
    for (const client of Object.values(clients)) client.destroy();
    connections.destroy();
    await Promise.allSettled([table.drop(), queue.drop()]);
    sqs.destroy();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

// ---- the benchmark ---------------------------------------------------------------------------

export const CONTENTION_SIZES = {
  full: { leases: 200, cap: 10, workers: 32 },
  quick: { leases: 40, cap: 5, workers: 8 },
};

/** The run whose `pick` is the median (the lower middle for an even count). */
export function medianRun<T>(runs: readonly T[], pick: (run: T) => number): T {
  const sorted = [...runs].sort((a, b) => pick(a) - pick(b));
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

/** Per-operation calls, capacity and time of one run, as markdown (the `limit` most calls). */
export function operationTable(
  operations: readonly OperationCost[],
  leases: number,
  limit = operations.length,
): string {
  const rows = [...operations]
    .sort((a, b) => b.calls - a.calls)
    .slice(0, limit)
    .map((t) => [
      `${t.operation}${t.category === 'records' ? ' (synthetic host bill)' : ''}`,
      (t.calls / leases).toFixed(2),
      (t.capacity / leases).toFixed(1),
      t.p50.toFixed(1),
      t.p95.toFixed(1),
      `${Math.round(t.share * 100)}%`,
    ]);
  return markdownTable(
    ['DynamoDB operation', 'calls/lease', 'CU/lease', 'p50 ms', 'p95 ms', 'share of call time'],
    rows,
  );
}

export function contentionRows(runs: readonly ContentionRun[]): Row[] {
  const f = (pick: (r: ContentionRun) => number) => figureOf(runs, pick);
  return [
    { label: 'time until all served', unit: 's', figure: f((r) => r.servedMs / 1000) },
    {
      label: 'time until drained (all destroyed)',
      unit: 's',
      figure: f((r) => r.drainedMs / 1000),
    },
    { label: 'throughput', unit: 'leases/s', figure: f((r) => r.leasesPerSecond), digits: 2 },
    {
      label: 'request→active p50',
      unit: 'ms',
      figure: f((r) => r.requestToActiveMs.p50),
      digits: 0,
    },
    {
      label: 'request→active p95',
      unit: 'ms',
      figure: f((r) => r.requestToActiveMs.p95),
      digits: 0,
    },
    {
      label: 'request→active p99',
      unit: 'ms',
      figure: f((r) => r.requestToActiveMs.p99),
      digits: 0,
    },
    { label: 'peak hosts alive (bill)', figure: f((r) => r.peakHostsAlive), digits: 0 },
    { label: 'hosts launched', figure: f((r) => r.hostsLaunched), digits: 0 },
    {
      label: 'engine DynamoDB calls per lease',
      figure: f((r) => r.dynamo.engine.callsPerLease),
    },
    { label: '… API (request + release)', figure: f((r) => r.dynamo.api.callsPerLease) },
    { label: '… workers', figure: f((r) => r.dynamo.worker.callsPerLease) },
    {
      label: '… of all: synthetic host-bill records',
      figure: f((r) => r.dynamo.records.callsPerLease),
    },
    {
      label: 'engine consumed capacity per lease',
      unit: 'CU',
      figure: f((r) => r.dynamo.engine.capacityPerLease),
    },
    {
      label: '… without synthetic host-bill records',
      unit: 'CU',
      figure: f((r) => r.dynamo.core.capacityPerLease),
    },
    { label: 'holder polling calls per lease', figure: f((r) => r.dynamo.holder.callsPerLease) },
    { label: 'worker updates per lease', figure: f((r) => r.updates.perLease), digits: 2 },
    {
      label: 'wasted updates per lease (wait + stale)',
      figure: f((r) => r.updates.wasted / r.config.leases),
      digits: 2,
    },
    { label: 'wasted share of updates', unit: '%', figure: f((r) => r.updates.wastedShare * 100) },
    {
      label: 'SQS messages sent per lease',
      figure: f((r) => r.sqs.messagesSent / r.config.leases),
      digits: 2,
    },
    {
      // On AWS the receives and deletes are the event source mapping's, not the function's.
      label: "SQS API calls per lease (incl. the workers' receives)",
      figure: f((r) => r.sqs.calls / r.config.leases),
    },
    {
      label: 'CPU: node (engine, workers, SQS emulator)',
      unit: 's',
      figure: f((r) => r.cpu.nodeMs / 1000),
    },
    {
      label: 'CPU: DynamoDB Local (java)',
      unit: 's',
      figure: f((r) => (r.cpu.javaMs ?? Number.NaN) / 1000),
    },
    {
      label: 'machine busy (both cores)',
      unit: '%',
      figure: f((r) => (r.cpu.utilization ?? Number.NaN) * 100),
      digits: 0,
    },
    { label: 'worker errors', figure: f((r) => r.workerErrors), digits: 0 },
  ];
}

export async function contentionBenchmark(ctx: BenchContext): Promise<BenchResult> {
  const sizes = ctx.quick ? CONTENTION_SIZES.quick : CONTENTION_SIZES.full;
  const started = performance.now();
  const runs: ContentionRun[] = [];
  for (let i = 0; i < ctx.runs; i++) {
    const run = await runContention(requireEnv(ctx), {
      ...sizes,
      javaPid: ctx.javaPid,
      cores: ctx.cores,
      ...(i === 0 && ctx.profileDir
        ? { profileFile: join(ctx.profileDir, 'contention.cpuprofile') }
        : {}),
    });
    ctx.log(
      `contention run ${i + 1}/${ctx.runs}: ${sizes.leases} leases served in ${(run.servedMs / 1000).toFixed(1)}s, ` +
        `peak ${run.peakHostsAlive}/${sizes.cap} hosts, ${run.dynamo.engine.callsPerLease} calls/lease, ` +
        `${run.updates.wasted} wasted of ${run.updates.total} updates` +
        (run.violations.length ? `; VIOLATIONS: ${run.violations.slice(0, 3).join('; ')}` : ''),
    );
    runs.push(run);
  }
  const typical = medianRun(runs, (r) => r.servedMs);
  return {
    name: 'contention',
    title: `contention: ${sizes.leases} leases at once, synthetic cap ${sizes.cap} hosts × 1 lease, reclaim on release, ${sizes.workers} workers`,
    config: { ...sizes, reclaimOnRelease: true, runs: ctx.runs, settings: 'DEFAULT_SETTINGS' },
    rows: contentionRows(runs),
    extraMarkdown: [
      "Where a pool slot's time goes (the run with the median served time; with every slot busy, throughput ≈ cap / the sum of the p50s):",
      slotCycleTable(typical.slotCycle),
      'Engine DynamoDB calls by operation (same run):',
      operationTable(typical.operations, typical.config.leases),
      'The most frequent calls by shape (which items they touched, so which engine step made them):',
      operationTable(typical.callShapes, typical.config.leases, 12),
    ].join('\n\n'),
    notes: [
      'served = the last lease became active (activatedAt); drained = every lease destroyed and every host torn down.',
      'Holders poll the lease listing every 50 ms and release a lease as soon as they see it active; their polling is counted apart from the engine.',
      `Update actions of that run: ${JSON.stringify(typical.updates.actions)}; stale because: ${JSON.stringify(typical.updates.staleDetails)}.`,
    ],
    runsPerFigure: ctx.runs,
    runs,
    violations: runs.flatMap((r, i) => r.violations.map((v) => `run ${i + 1}: ${v}`)),
    wallMs: Math.round(performance.now() - started),
  };
}
