/**
 * Pool size (issue 14 item 4): DynamoDB capacity units and calls of one warm acquisition (a
 * lease's first update, handed an idle host) with 10 idle hosts and with 500. Before the
 * free-candidate index every attempt read every live resource of the type, so the second cost
 * grew with the pool; the acceptance is 500 within 1.5x of 10, checked here as an invariant.
 * The same acquisition on 500 hosts with the index hidden (the plan before it) is measured too,
 * so the row shows what the index saves.
 *
 * Cheap on purpose: the pools are written straight into the store (bench/lib/idle-pool.ts), and
 * each update is driven directly (no queue, no workers), so only the acquisition is counted.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { localRegistry } from '../lambdas/blueprints/registry.ts';
import { makeEngine } from '../lambdas/core/engine.ts';
import type { UpdateMessage } from '../lambdas/core/model.ts';
import { type Store, systemClock, type WorkQueue } from '../lambdas/core/ports.ts';
import { createBlueprint, processUpdate, requestLease } from '../lambdas/core/use-cases.ts';
import { DynamoStore } from '../lambdas/store/dynamo-store.ts';
import { delta, snapshot } from './lib/calls.ts';
import { benchDynamoClient, freshTable } from './lib/emulators.ts';
import { seedIdlePool } from './lib/idle-pool.ts';
import { type BenchContext, type BenchResult, type Row, requireEnv } from './lib/report.ts';
import { figureOf, round } from './lib/stats.ts';

const SIZES = { small: 10, large: 500, acquisitions: 5 };
/** The acceptance: a warm acquisition on 500 idle hosts within this factor of one on 10. */
const WITHIN = 1.5;
const OWNER = 'arn:aws:iam::123456789012:role/bench';

/** Keeps what the engine sends: the bench drives each update itself. */
class HeldQueue implements WorkQueue {
  readonly messages: UpdateMessage[] = [];
  async send(messages: UpdateMessage[]): Promise<void> {
    this.messages.push(...messages);
  }
}

/** The store with an empty free index: every attempt takes the full plan, as before it. */
function withoutFreeIndex(store: Store): Store {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'listFreeResources') return async () => [];
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

interface PoolSizeRun {
  hosts: number;
  indexHidden: boolean;
  /** Per acquisition, averaged over SIZES.acquisitions. */
  capacity: number;
  calls: number;
  byOperation: Record<string, number>;
}

async function measure(
  ctx: BenchContext,
  hosts: number,
  indexHidden: boolean,
): Promise<PoolSizeRun> {
  const env = requireEnv(ctx);
  const table = await freshTable(env, 'pool-size');
  const client = benchDynamoClient(env);
  const dataDir = mkdtempSync(join(tmpdir(), 'drydock-bench-pool-'));
  try {
    const store = new DynamoStore({ client, tableName: table.tableName });
    const queue = new HeldQueue();
    const engine = makeEngine({
      store: indexHidden ? withoutFreeIndex(store) : store,
      queue,
      clock: systemClock,
      registry: localRegistry(),
      dataDir,
    });
    const blueprint = await createBlueprint(engine, {
      id: 'pool',
      type: 'synthetic',
      resourceType: 'host',
      attributes: { platform: 'linux' },
      limits: {
        maxResources: hosts,
        leasesPerResource: 1,
        idleTtlSeconds: 7 * 24 * 3600,
        idleGraceSeconds: 7 * 24 * 3600,
      },
    });
    await seedIdlePool(store, blueprint, hosts, engine.iso(-60_000));
    let capacity = 0;
    let calls = 0;
    const byOperation: Record<string, number> = {};
    for (let i = 0; i < SIZES.acquisitions; i++) {
      const lease = await requestLease(engine, { type: 'host', owner: OWNER });
      const msg = queue.messages.find((m) => m.id === lease.id);
      if (!msg) throw new Error(`no message for lease ${lease.id}`);
      queue.messages.length = 0;
      const before = snapshot(store.stats);
      await processUpdate(engine, msg);
      const cost = delta(snapshot(store.stats), before);
      const now = await store.getLease(lease.id);
      if (now?.status !== 'active') {
        throw new Error(`lease ${lease.id} is ${now?.status} after its first update, not active`);
      }
      capacity += cost.consumedCapacity ?? 0;
      calls += cost.calls;
      for (const [op, n] of Object.entries(cost.byOperation)) {
        byOperation[op] = (byOperation[op] ?? 0) + n;
      }
    }
    const n = SIZES.acquisitions;
    return {
      hosts,
      indexHidden,
      capacity: round(capacity / n, 2),
      calls: round(calls / n, 2),
      byOperation: Object.fromEntries(
        Object.entries(byOperation).map(([op, c]) => [op, round(c / n, 2)]),
      ),
    };
  } finally {
    client.destroy();
    rmSync(dataDir, { recursive: true, force: true });
    await table.drop();
  }
}

export async function poolSizeBenchmark(ctx: BenchContext): Promise<BenchResult> {
  const started = performance.now();
  const small: PoolSizeRun[] = [];
  const large: PoolSizeRun[] = [];
  const hidden: PoolSizeRun[] = [];
  for (let pass = 0; pass < ctx.runs; pass++) {
    small.push(await measure(ctx, SIZES.small, false));
    large.push(await measure(ctx, SIZES.large, false));
    hidden.push(await measure(ctx, SIZES.large, true));
    ctx.log(
      `pool-size pass ${pass + 1}/${ctx.runs}: ${small.at(-1)!.capacity} / ${large.at(-1)!.capacity} / ${hidden.at(-1)!.capacity} CU per acquisition (10 / 500 / 500 without the index)`,
    );
  }
  const cu = (runs: PoolSizeRun[]) => figureOf(runs, (r) => r.capacity);
  const ratio = cu(large).median / cu(small).median;
  const rows: Row[] = [
    {
      label: `warm acquisition, ${SIZES.small} idle hosts`,
      unit: 'CU',
      figure: cu(small),
      digits: 2,
    },
    {
      label: `warm acquisition, ${SIZES.large} idle hosts`,
      unit: 'CU',
      figure: cu(large),
      digits: 2,
    },
    {
      label: `warm acquisition, ${SIZES.large} idle hosts, free index hidden (the plan before it)`,
      unit: 'CU',
      figure: cu(hidden),
      digits: 2,
    },
    {
      label: `ratio ${SIZES.large} / ${SIZES.small} hosts (acceptance ≤ ${WITHIN})`,
      figure: figureOf([ratio], (r) => round(r, 2)),
      digits: 2,
    },
    {
      label: `engine DynamoDB calls per acquisition, ${SIZES.small} hosts`,
      figure: figureOf(small, (r) => r.calls),
      digits: 2,
    },
    {
      label: `engine DynamoDB calls per acquisition, ${SIZES.large} hosts`,
      figure: figureOf(large, (r) => r.calls),
      digits: 2,
    },
  ];
  const violations =
    ratio > WITHIN
      ? [
          `a warm acquisition on ${SIZES.large} idle hosts costs ${cu(large).median} CU, more than ${WITHIN}× the ${cu(small).median} CU on ${SIZES.small}`,
        ]
      : [];
  return {
    name: 'pool-size',
    title: `pool size: one warm acquisition with ${SIZES.small} vs ${SIZES.large} idle hosts (capacity units)`,
    config: { ...SIZES, within: WITHIN, runs: ctx.runs },
    rows,
    notes: [
      `Each figure is the mean over ${SIZES.acquisitions} acquisitions of one pool (a lease's first update, handed an idle host, request excluded), median over runs.`,
      'CU = read + write capacity units DynamoDB Local reports (ReturnConsumedCapacity TOTAL), the catalog read included (not cached here).',
      `Pools are written straight into the store; ${SIZES.small} hosts is a small pool (read whole, one query), ${SIZES.large} reads one page of the free index.`,
    ],
    runsPerFigure: ctx.runs,
    runs: [{ small }, { large }, { hidden }],
    violations,
    wallMs: Math.round(performance.now() - started),
  };
}
