/**
 * The soak (issue 14, item 7): many leases over several synthetic blueprints (caps 5–50, leases
 * per resource 1 and 4, reclaim on release on some, a warm pool on one), holders that release at
 * random times or let leases expire, and every fault at once (soak-faults.ts): duplicate,
 * reordered and lost deliveries, worker crashes at random write points, throttling and
 * TransactionConflict from the client, hosts that vanish (noticed by a stand-in inventory that
 * marks them suspect, as ec2-host's does), activations that fail, a blueprint disabled and
 * re-enabled mid-run. Afterwards every blueprint drains and the invariants are checked from
 * recorded history (soak-invariants.ts). `npm run soak` runs it at full size; a tiny version
 * runs in `npm test` (test/bench/soak-smoke.test.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ChangeMessageVisibilityCommand,
  GetQueueAttributesCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { localRegistry } from '../lambdas/blueprints/registry.ts';
import { type Engine, makeEngine } from '../lambdas/core/engine.ts';
import { InjectedCrash, TemporaryError, WriteConflictError } from '../lambdas/core/errors.ts';
import {
  type AnyOutcome,
  describeOutcome,
  outcomeDetail,
  outcomeSteps,
  wastedAs,
} from '../lambdas/core/outcomes.ts';
import { type Store, systemClock } from '../lambdas/core/ports.ts';
import {
  createBlueprint,
  processUpdate,
  releaseLease,
  requestLease,
  runSweep,
  updateBlueprint,
} from '../lambdas/core/use-cases.ts';
import { SqsWorkQueue } from '../lambdas/queue/sqs-queue.ts';
import { connectionBudget } from '../lambdas/store/connections.ts';
import { DynamoStore } from '../lambdas/store/dynamo-store.ts';
import { QueuePump } from '../lib/local/queue-pump.ts';
import { cpuSince, sampleCpu } from './lib/cpu.ts';
import { mergeProfiles, profileDynamoClient, summarizeProfile } from './lib/dynamo-profile.ts';
import {
  type BenchEnv,
  benchDynamoClient,
  benchSqsClient,
  freshQueue,
  freshTable,
} from './lib/emulators.ts';
import {
  faultsBelowFloor,
  missedDeadline,
  type SoakWhere,
  sortedByCount,
} from './lib/soak-checks.ts';
import {
  crashingDeliveries,
  type FaultCounts,
  injectDynamoFaults,
  noFaults,
} from './lib/soak-faults.ts';
import { checkSoakHistory, soakBlueprints } from './lib/soak-invariants.ts';
import {
  DEFAULT_RATES,
  FAILED_REDELIVERY_SECONDS,
  HELD_POLL_EVERY,
  HOLDER_POLL_MS,
  leaseAttributes,
  SWEEP_EVERY_MS,
  seeded,
  settings,
  TOGGLES_PER_RUN,
  VISIBILITY_TIMEOUT_SECONDS,
} from './lib/soak-settings.ts';
import { blueprintInput, vanishInventory } from './lib/soak-world.ts';
import { percentile } from './lib/stats.ts';

export interface SoakOptions {
  leases: number;
  /** Concurrent queue workers. */
  workers: number;
  /**
   * Leases requested but not yet ended, at most. @default 200: above what the engine can serve
   * at 25 leases/s (a lease lives ~5–8 s, lost messages included); far above it only lengthens
   * the queue, and a queue longer than the strand time makes the sweep re-drive leases that
   * are merely waiting their turn. */
  maxInFlight?: number;
  seed?: number;
  /** Per delivery (each); per DynamoDB call for throttle/conflict. */
  rates?: Partial<Record<'duplicate' | 'reorder' | 'lost' | 'crash' | 'dynamo', number>>;
  /** Give up (and report the leases not ended as violations) after this long. */
  deadlineMs?: number;
  log?: (line: string) => void;
}

export interface SoakResult {
  leases: number;
  workers: number;
  seconds: number;
  leasesPerSecond: number;
  callsPerLease: number;
  /** Worker updates that waited or found their work done already, of all updates. */
  wastedShare: number;
  updates: number;
  faults: FaultCounts;
  /** Resources each blueprint created. */
  resources: Record<string, number>;
  ended: { released: number; expired: number; broken: number };
  violations: string[];
  /** Where the time and the updates went, to find the soak's own costs. */
  where: SoakWhere;
}

export async function runSoak(env: BenchEnv, options: SoakOptions): Promise<SoakResult> {
  const log = options.log ?? (() => {});
  const random = seeded(options.seed ?? 14);
  const rates = { ...DEFAULT_RATES, ...options.rates };
  const maxInFlight = options.maxInFlight ?? 200;
  const faults = noFaults();
  const table = await freshTable(env, 'soak');
  const queue = await freshQueue(env, 'soak', {
    visibilityTimeoutSeconds: VISIBILITY_TIMEOUT_SECONDS,
  });
  const dataDir = mkdtempSync(join(tmpdir(), 'drydock-soak-'));
  const connections = connectionBudget();
  const clients = {
    api: benchDynamoClient(env, connections),
    worker: benchDynamoClient(env, connections),
    audit: benchDynamoClient(env, connections),
  };
  injectDynamoFaults(clients.worker, rates.dynamo, random, faults);
  const profiles = [profileDynamoClient(clients.api), profileDynamoClient(clients.worker)];
  const javaPid = (env as { javaPid?: number }).javaPid;
  const sqs = benchSqsClient(env);
  const stores = {
    api: new DynamoStore({ client: clients.api, tableName: table.tableName }),
    worker: new DynamoStore({ client: clients.worker, tableName: table.tableName }),
    audit: new DynamoStore({ client: clients.audit, tableName: table.tableName }),
  };
  const workQueue = new SqsWorkQueue({ client: sqs, queueUrl: queue.queueUrl });
  const engineOn = (store: Store): Engine =>
    makeEngine({
      store,
      queue: workQueue,
      clock: systemClock,
      registry: localRegistry(),
      dataDir,
      settings,
    });
  const api = engineOn(stores.api);
  const crashes = crashingDeliveries(stores.worker, faults);
  const worker = engineOn(crashes.store);
  const errors: unknown[] = [];
  let updates = 0;
  let wasted = 0;
  const actions: Record<string, number> = {};
  const updateMs: number[] = [];
  let redelivered = 0;
  let failedDeliveries = 0;
  const wastedBy: Record<string, number> = {};
  const record = (kind: string, outcome: AnyOutcome, sentFor: string) => {
    updates++;
    const action = `${kind}: ${describeOutcome(outcome)}`;
    actions[action] = (actions[action] ?? 0) + 1;
    const idle = outcomeSteps(outcome).at(-1)?.action === 'none';
    if (wastedAs(outcome) === undefined && !idle) return;
    if (!idle) wasted++;
    const why = `${kind}: ${(outcomeDetail(outcome) ?? describeOutcome(outcome))
      .replace(/\b(lease|res)-[0-9a-z]+/g, '<$1>')
      .replace(/\d+/g, 'N')} <- ${sentFor
      .replace(/\b(lease|res)-[0-9a-z]+/g, '<$1>')
      .replace(/\d+/g, 'N')
      .slice(0, 60)}`;
    wastedBy[why] = (wastedBy[why] ?? 0) + 1;
  };

  const blueprints = soakBlueprints();
  for (const b of blueprints) await createBlueprint(api, blueprintInput(b));

  const pump = new QueuePump({
    client: sqs,
    queueUrl: queue.queueUrl,
    workers: options.workers,
    batchSize: 1,
    handle: async (batch) => {
      const failed: string[] = [];
      for (const received of batch) {
        if (!received.message) {
          errors.push(received.error);
          continue;
        }
        if (received.receiveCount > 1) redelivered++;
        const roll = random();
        if (roll < rates.duplicate) {
          faults.duplicate++;
          await sqs.send(
            new SendMessageCommand({ QueueUrl: queue.queueUrl, MessageBody: received.body }),
          );
        } else if (roll < rates.duplicate + rates.reorder) {
          // Delivered later than messages sent after it; this copy is dropped.
          faults.reorder++;
          await sqs.send(
            new SendMessageCommand({
              QueueUrl: queue.queueUrl,
              MessageBody: received.body,
              DelaySeconds: 1 + Math.floor(random() * 3),
            }),
          );
          continue;
        } else if (roll < rates.duplicate + rates.reorder + rates.lost) {
          faults.lost++; // acknowledged, never processed: the sweep must find the work
          continue;
        }
        const crashAfter = random() < rates.crash ? 1 + Math.floor(random() * 3) : 0;
        const t0 = performance.now();
        try {
          const { kind, outcome } = await crashes.run(crashAfter, () =>
            processUpdate(worker, received.message!),
          );
          record(kind, outcome, received.message!.reason ?? '(no reason)');
        } catch (err) {
          failedDeliveries++;
          failed.push(received.messageId); // not deleted: redelivered
          await sqs
            .send(
              new ChangeMessageVisibilityCommand({
                QueueUrl: queue.queueUrl,
                ReceiptHandle: received.receiptHandle,
                VisibilityTimeout: FAILED_REDELIVERY_SECONDS,
              }),
            )
            // Refused when the update outlived the visibility timeout (its receipt is stale,
            // the message is already back): it is redelivered either way.
            .catch(noop);
          const expected =
            err instanceof InjectedCrash ||
            err instanceof TemporaryError ||
            err instanceof WriteConflictError;
          if (!expected) errors.push(err);
        } finally {
          updateMs.push(performance.now() - t0);
        }
      }
      return { failedMessageIds: failed };
    },
    onError: (err) => errors.push(err),
  }).start();

  // The every-minute sweep, every SWEEP_EVERY_MS here, with the stand-in inventory.
  let running = true;
  const sweeper = (async () => {
    while (running) {
      try {
        await runSweep(api);
        await vanishInventory(api, stores.audit, blueprints);
      } catch (err) {
        if (!(err instanceof TemporaryError)) errors.push(err);
      }
      await new Promise((r) => setTimeout(r, SWEEP_EVERY_MS));
    }
  })();

  const started = Date.now();
  const cpuStart = sampleCpu(javaPid);
  const deadline = started + (options.deadlineMs ?? 9 * 60_000);
  const outstanding = new Set<string>();
  const all: string[] = [];
  const holding = new Map<string, number>(); // lease -> release at (ms); absent: never
  const seen = new Set<string>();
  // Requests and releases run concurrently, as independent clients would: awaited one by one
  // in this loop, the releases alone (each a transaction and a send) capped the run at a few
  // leases a second on a busy machine, whatever the engine could do.
  const clientCalls = new Set<Promise<void>>();
  const track = (p: Promise<void>) => {
    clientCalls.add(p);
    void p.finally(() => clientCalls.delete(p));
  };
  try {
    let requested = 0;
    let requesting = 0;
    let lastReport = 0;
    let round = 0;
    const toggleEvery = Math.max(1, Math.floor(options.leases / TOGGLES_PER_RUN));
    let nextToggleAt = toggleEvery;
    while (
      (requested < options.leases || outstanding.size + requesting > 0) &&
      Date.now() < deadline
    ) {
      // Arrivals: keep at most maxInFlight leases open.
      const room = Math.min(
        maxInFlight - outstanding.size - requesting,
        options.leases - requested,
        50,
      );
      for (let i = 0; i < room; i++) {
        const expires = random() < 0.1;
        const attributes = leaseAttributes(random);
        const ttl = expires ? { ttlSeconds: 2 + Math.floor(random() * 3) } : {};
        requested++;
        requesting++;
        track(
          requestLease(api, { type: 'host', owner: 'soak', attributes, ...ttl })
            .then((l) => {
              outstanding.add(l.id);
              all.push(l.id);
              if (expires) seen.add(l.id); // never released: the sweep expires it
            })
            .catch((err) => {
              errors.push(err);
              requested--; // asked again on the next round
            })
            .finally(() => requesting--),
        );
      }
      // soak-d disabled and re-enabled by arrivals, not by a timer, so a faster run toggles as
      // often per lease (TOGGLES_PER_RUN over the run).
      if (requested >= nextToggleAt && requested < options.leases) {
        nextToggleAt += toggleEvery;
        const state = faults['blueprint-toggled'] % 2 === 0 ? 'disabled' : 'enabled';
        await updateBlueprint(api, 'soak-d', { state });
        faults['blueprint-toggled']++;
      }
      // Holders: release each active lease at a random moment after seeing it active.
      // Leases not yet seen active are looked at every round; those already held, released or
      // left to expire only every HELD_POLL_EVERY rounds (to see them end): the holders' reads
      // were a fifth of DynamoDB Local's work at 300 open leases.
      const now = Date.now();
      round++;
      const current = await stores.audit.getLeases(
        [...outstanding].filter((id) => !seen.has(id) || round % HELD_POLL_EVERY === 0),
      );
      for (const l of current) {
        if (l.status === 'destroyed') outstanding.delete(l.id);
        else if (l.status === 'active' && !seen.has(l.id)) {
          seen.add(l.id);
          holding.set(l.id, now + Math.floor(random() * 1500));
        }
      }
      for (const [id, at] of holding) {
        if (at > now) continue;
        holding.delete(id);
        track(releaseLease(api, id, { principal: 'soak' }).then(noop, noop)); // ended meanwhile
      }
      if (now - lastReport > 10_000) {
        lastReport = now;
        log(
          `soak: ${requested}/${options.leases} requested, ${outstanding.size} open, ${updates} updates, ${Math.round((now - started) / 1000)}s`,
        );
      }
      await new Promise((r) => setTimeout(r, HOLDER_POLL_MS));
    }
    await Promise.all(clientCalls);
    const seconds = (Date.now() - started) / 1000;
    const cpu = cpuSince(cpuStart, javaPid, availableParallelism());

    // Drain: every blueprint stops taking leases and reclaims what is idle.
    for (const b of blueprints) await updateBlueprint(api, b.id, { state: 'draining' });
    const drainUntil = Date.now() + 120_000;
    while (Date.now() < drainUntil) {
      const live = await stores.audit.listResourcesByStatus('active', { limit: 1 });
      const pending = await stores.audit.listResourcesByStatus('pending', { limit: 1 });
      const locks = await stores.audit.listSlotLocks({ limit: 1 });
      if (live.items.length + pending.items.length + locks.items.length === 0) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    running = false;
    await sweeper;
    await pump.stop();
    await runSweep(api); // the final sweep

    const dlq = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: queue.dlqUrl,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    const dlqMessages =
      Number(dlq.Attributes?.ApproximateNumberOfMessages ?? 0) +
      Number(dlq.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
    const samples = mergeProfiles(profiles);
    const commitSlackMs = [...samples]
      .filter(([key]) => key.includes('|TransactWriteItems|'))
      .flatMap(([, s]) => s.durationsMs)
      .reduce((m, t) => Math.max(m, t), 0);
    const history = await checkSoakHistory(stores.audit, all, {
      dlqMessages,
      blueprints,
      commitSlackMs,
    });
    faults.vanish = history.vanished;
    faults['activation-failed'] = history.activationFailures;
    const violations = [
      ...missedDeadline(options.leases, all.length, outstanding.size, seconds),
      ...faultsBelowFloor(faults, options.leases),
      ...history.violations,
      ...[...new Set(errors.map((e) => String((e as Error)?.message ?? e)))]
        .slice(0, 10)
        .map((m) => `unexpected error: ${m}`),
    ];
    const calls = stores.api.stats.calls + stores.worker.stats.calls;
    return {
      leases: all.length,
      workers: options.workers,
      seconds: Math.round(seconds * 10) / 10,
      leasesPerSecond: Math.round((all.length / seconds) * 10) / 10,
      callsPerLease: Math.round((calls / Math.max(1, all.length)) * 10) / 10,
      wastedShare: Math.round((wasted / Math.max(1, updates)) * 1000) / 10,
      updates,
      faults,
      resources: history.resourcesByBlueprint,
      ended: history.ended,
      violations,
      where: {
        cpu,
        actions: sortedByCount(actions),
        wastedBy: sortedByCount(wastedBy),
        redelivered,
        failedDeliveries,
        updateMs: {
          p50: Math.round(percentile(updateMs, 50)),
          p95: Math.round(percentile(updateMs, 95)),
          p99: Math.round(percentile(updateMs, 99)),
          max: Math.round(updateMs.reduce((m, t) => Math.max(m, t), 0)),
          overVisibility: updateMs.filter((t) => t > VISIBILITY_TIMEOUT_SECONDS * 1000).length,
        },
        harnessCallsPerLease:
          Math.round((stores.audit.stats.calls / Math.max(1, all.length)) * 10) / 10,
        callShapes: summarizeProfile(samples, { byShape: true }).slice(0, 15),
        commitSlackMs: Math.round(commitSlackMs),
        stampInversions: history.stampInversions,
      },
    };
  } finally {
    running = false;
    await sweeper;
    await pump.stop();
    for (const c of Object.values(clients)) c.destroy();
    connections.destroy();
    sqs.destroy();
    await Promise.allSettled([table.drop(), queue.drop()]);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

function noop(): void {}
