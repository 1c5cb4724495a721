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
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetQueueAttributesCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { localRegistry } from '../lambdas/blueprints/registry.ts';
import { type Engine, makeEngine } from '../lambdas/core/engine.ts';
import { InjectedCrash, TemporaryError, WriteConflictError } from '../lambdas/core/errors.ts';
import type { Attributes } from '../lambdas/core/model.ts';
import { type Store, systemClock } from '../lambdas/core/ports.ts';
import { markSuspect } from '../lambdas/core/resource-end.ts';
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
import { classifyAction } from './contention.ts';
import {
  type BenchEnv,
  benchDynamoClient,
  benchSqsClient,
  freshQueue,
  freshTable,
} from './lib/emulators.ts';
import {
  crashingDeliveries,
  type FaultCounts,
  injectDynamoFaults,
  noFaults,
} from './lib/soak-faults.ts';
import { checkSoakHistory, type SoakBlueprint, soakBlueprints } from './lib/soak-invariants.ts';

export interface SoakOptions {
  leases: number;
  /** Concurrent queue workers. */
  workers: number;
  /** Leases requested but not yet ended, at most. */
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
  ended: { released: number; expired: number; broken: number };
  violations: string[];
}

const DEFAULT_RATES = { duplicate: 0.03, reorder: 0.02, lost: 0.01, crash: 0.02, dynamo: 0.004 };

/** Deterministic pseudo-random numbers (mulberry32), so a failing run can be replayed. */
export function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What a lease asks for: mostly a tier, some anything, a few an attribute nobody has. */
function leaseAttributes(random: () => number): Attributes {
  const r = random();
  if (r < 0.15) return { tier: 'a' };
  if (r < 0.5) return { tier: 'b' };
  if (r < 0.8) return { tier: 'c', platform: 'linux' };
  if (r < 0.99) return {};
  return { gpu: 'yes' }; // no blueprint sets it: breaks at once, naming it
}

/**
 * Production's rules at soak speed: waits back off to 4 s, a stranded state is re-driven after
 * 8 s, and a blueprint's circuit breaker (opened by the scripted activation failures) backs off
 * for 1–4 s instead of 15 s–10 min, so a one-tier outage does not hold every open slot of the
 * run for minutes.
 */
const settings = {
  blueprintCacheMs: 500,
  backoffBaseSeconds: 1,
  backoffCapSeconds: 4,
  strandAfterSeconds: 8,
  defaultLeaseTtlSeconds: 60,
  breakerBaseSeconds: 1,
  breakerCapSeconds: 4,
};

export async function runSoak(env: BenchEnv, options: SoakOptions): Promise<SoakResult> {
  const log = options.log ?? (() => {});
  const random = seeded(options.seed ?? 14);
  const rates = { ...DEFAULT_RATES, ...options.rates };
  const maxInFlight = options.maxInFlight ?? 300;
  const faults = noFaults();
  const table = await freshTable(env, 'soak');
  const queue = await freshQueue(env, 'soak', { visibilityTimeoutSeconds: 2 });
  const dataDir = mkdtempSync(join(tmpdir(), 'drydock-soak-'));
  const connections = connectionBudget();
  const clients = {
    api: benchDynamoClient(env, connections),
    worker: benchDynamoClient(env, connections),
    audit: benchDynamoClient(env, connections),
  };
  injectDynamoFaults(clients.worker, rates.dynamo, random, faults);
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

  const blueprints = soakBlueprints(options.leases);
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
        try {
          const { outcome } = await crashes.run(crashAfter, () =>
            processUpdate(worker, received.message!),
          );
          updates++;
          if (classifyAction(outcome) !== 'other') wasted++;
        } catch (err) {
          failed.push(received.messageId); // redelivered after the visibility timeout
          const expected =
            err instanceof InjectedCrash ||
            err instanceof TemporaryError ||
            err instanceof WriteConflictError;
          if (!expected) errors.push(err);
        }
      }
      return { failedMessageIds: failed };
    },
    onError: (err) => errors.push(err),
  }).start();

  // The every-minute sweep, every second here, with the stand-in inventory and the toggle.
  let running = true;
  let draining = false;
  let toggles = 0;
  const sweeper = (async () => {
    let tick = 0;
    while (running) {
      tick++;
      try {
        await runSweep(api);
        await vanishInventory(api, stores.audit, blueprints);
        if (tick % 5 === 0 && !draining) {
          const state = toggles % 2 === 0 ? 'disabled' : 'enabled';
          await updateBlueprint(api, 'soak-d', { state });
          toggles++;
          faults['blueprint-toggled']++;
        }
      } catch (err) {
        if (!(err instanceof TemporaryError)) errors.push(err);
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();

  const started = Date.now();
  const deadline = started + (options.deadlineMs ?? 9 * 60_000);
  const outstanding = new Set<string>();
  const all: string[] = [];
  const holding = new Map<string, number>(); // lease -> release at (ms); absent: never
  const seen = new Set<string>();
  try {
    let requested = 0;
    let lastReport = 0;
    while ((requested < options.leases || outstanding.size > 0) && Date.now() < deadline) {
      // Arrivals: keep at most maxInFlight leases open.
      const room = Math.min(maxInFlight - outstanding.size, options.leases - requested, 50);
      if (room > 0) {
        const made = await Promise.all(
          Array.from({ length: room }, () => {
            const expires = random() < 0.1;
            return requestLease(api, {
              type: 'host',
              owner: 'soak',
              attributes: leaseAttributes(random),
              ...(expires ? { ttlSeconds: 2 + Math.floor(random() * 3) } : {}),
            }).then((l) => ({ l, expires }));
          }),
        );
        for (const { l, expires } of made) {
          outstanding.add(l.id);
          all.push(l.id);
          if (expires) seen.add(l.id); // never released: the sweep expires it
        }
        requested += made.length;
      }
      // Holders: release each active lease at a random moment after seeing it active.
      const now = Date.now();
      const current = await stores.audit.getLeases([...outstanding]);
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
        await releaseLease(api, id, { principal: 'soak' }).catch(() => {}); // ended meanwhile
      }
      if (now - lastReport > 10_000) {
        lastReport = now;
        log(
          `soak: ${requested}/${options.leases} requested, ${outstanding.size} open, ${updates} updates, ${Math.round((now - started) / 1000)}s`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const seconds = (Date.now() - started) / 1000;

    // Drain: every blueprint stops taking leases and reclaims what is idle.
    draining = true;
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
    const history = await checkSoakHistory(stores.audit, all, { dlqMessages, blueprints });
    faults.vanish = history.vanished;
    faults['activation-failed'] = history.activationFailures;
    const violations = [
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
      ended: history.ended,
      violations,
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

function blueprintInput(b: SoakBlueprint) {
  return {
    id: b.id,
    type: 'synthetic',
    resourceType: 'host',
    attributes: b.attributes,
    limits: {
      maxResources: b.cap,
      leasesPerResource: b.perHost,
      reclaimOnRelease: b.reclaimOnRelease,
      idleTtlSeconds: 5,
      idleGraceSeconds: 0,
      ...(b.minIdle ? { minIdle: b.minIdle } : {}),
    },
    config: {
      ...(b.activationFailures ? { activation: { failTimes: b.activationFailures } } : {}),
      ...(b.vanishAfterSeconds ? { vanish: { afterSeconds: b.vanishAfterSeconds } } : {}),
    },
  };
}

/**
 * The stand-in inventory: an active host of a blueprint whose hosts vanish, older than that,
 * is marked suspect, as ec2-host's inventory marks one whose instance is gone; its health check
 * (the synthetic host says it vanished) then breaks it and its leases.
 */
async function vanishInventory(
  engine: Engine,
  audit: DynamoStore,
  blueprints: SoakBlueprint[],
): Promise<void> {
  for (const b of blueprints) {
    if (!b.vanishAfterSeconds) continue;
    const cutoff = Date.now() - b.vanishAfterSeconds * 1000;
    let cursor: string | undefined;
    do {
      const page = await audit.listResourcesByType('host', 'active', {
        limit: 100,
        ...(cursor ? { cursor } : {}),
      });
      for (const r of page.items) {
        if (r.blueprintId !== b.id || r.suspectSince || Date.parse(r.createdAt) > cutoff) continue;
        await markSuspect(engine, r, 'soak inventory: the host is gone');
      }
      cursor = page.cursor;
    } while (cursor);
  }
}
