/**
 * Scaling: the contention run with 1, 2, 4, 8, 16 workers. Throughput (leases served per
 * second) for each, and its ratio to one worker. Uses fewer leases than the contention
 * benchmark (100 instead of 200) so five worker counts × several runs fit the time budget; the
 * pool and everything else are the same.
 */
import { type ContentionRun, medianRun, runContention } from './contention.ts';
import {
  type BenchContext,
  type BenchResult,
  markdownTable,
  type Row,
  requireEnv,
} from './lib/report.ts';
import { figure, figureOf, round } from './lib/stats.ts';

export const SCALING_SIZES = {
  full: { leases: 100, cap: 10, workers: [1, 2, 4, 8, 16] },
  quick: { leases: 20, cap: 5, workers: [1, 4] },
};

export interface ScalingPoint {
  workers: number;
  runs: ContentionRun[];
}

export async function scalingBenchmark(ctx: BenchContext): Promise<BenchResult> {
  const sizes = ctx.quick ? SCALING_SIZES.quick : SCALING_SIZES.full;
  const started = performance.now();
  const points: ScalingPoint[] = sizes.workers.map((workers) => ({ workers, runs: [] }));
  // Rounds over the worker counts (not all runs of one count back to back), so a slow spell of
  // the machine spreads over every count instead of skewing one.
  for (let pass = 0; pass < ctx.runs; pass++) {
    for (const point of points) {
      const run = await runContention(requireEnv(ctx), {
        leases: sizes.leases,
        cap: sizes.cap,
        workers: point.workers,
        javaPid: ctx.javaPid,
        cores: ctx.cores,
      });
      ctx.log(
        `scaling pass ${pass + 1}/${ctx.runs}, ${point.workers} workers: ${run.leasesPerSecond} leases/s` +
          (run.violations.length ? `; VIOLATIONS: ${run.violations.join('; ')}` : ''),
      );
      point.runs.push(run);
    }
  }

  const base = figureOf(points[0]!.runs, (r) => r.leasesPerSecond).median;
  const table = markdownTable(
    [
      'workers',
      'leases/s median',
      'min',
      'max',
      'ratio to 1 worker',
      'served s',
      'engine calls/lease',
      'wasted updates %',
      'machine busy %',
    ],
    points.map(({ workers, runs }) => {
      const tput = figureOf(runs, (r) => r.leasesPerSecond);
      const typical = medianRun(runs, (r) => r.leasesPerSecond);
      return [
        String(workers),
        tput.median.toFixed(2),
        tput.min.toFixed(2),
        tput.max.toFixed(2),
        `${(tput.median / base).toFixed(2)}×`,
        (typical.servedMs / 1000).toFixed(1),
        typical.dynamo.engine.callsPerLease.toFixed(1),
        (typical.updates.wastedShare * 100).toFixed(0),
        typical.cpu.utilization === undefined ? 'n/a' : (typical.cpu.utilization * 100).toFixed(0),
      ];
    }),
  );
  const rows: Row[] = points.map(({ workers, runs }) => ({
    label: `throughput, ${workers} worker${workers === 1 ? '' : 's'}`,
    unit: 'leases/s',
    figure: figureOf(runs, (r) => r.leasesPerSecond),
    digits: 2,
  }));
  const last = points.at(-1)!;
  rows.push({
    label: `ratio ${last.workers} workers / 1 worker`,
    figure: figure([round(figureOf(last.runs, (r) => r.leasesPerSecond).median / base, 2)]),
    digits: 2,
  });
  return {
    name: 'scaling',
    title: `scaling: ${sizes.leases} leases at once, cap ${sizes.cap} hosts × 1 lease, reclaim on release, ${sizes.workers.join('/')} workers`,
    config: { ...sizes, reclaimOnRelease: true, runs: ctx.runs, settings: 'DEFAULT_SETTINGS' },
    rows,
    extraMarkdown: `${table}\n\n(served s, calls/lease, wasted % and busy % are from the run with the median throughput.)`,
    notes: [
      `${sizes.leases} leases per run instead of the contention benchmark's 200, to keep the whole bench well under 10 minutes (a smaller backlog also means fewer waits per lease, so these rates are higher than the contention benchmark's).`,
      'Throughput = leases / (last activation − first request); one worker handles one message at a time.',
      'The ratio row is the ratio of medians (a single value: min = max).',
    ],
    runsPerFigure: ctx.runs,
    runs: points.map(({ workers, runs }) => ({ workers, runs })),
    violations: points.flatMap(({ workers, runs }) =>
      runs.flatMap((r, i) => r.violations.map((v) => `${workers} workers, run ${i + 1}: ${v}`)),
    ),
    wallMs: Math.round(performance.now() - started),
  };
}
