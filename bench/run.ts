/**
 * `npm run bench [-- --quick] [-- --only contention,scaling,pool-size] [-- --runs 3]`
 *
 * Starts DynamoDB Local and the SQS emulator, runs the benchmarks, writes
 * bench/results/<name>.json and prints a markdown table per benchmark. Exits non-zero if any
 * run broke an invariant (pool cap exceeded, two leases active on one host at once, a lease
 * never served) or a benchmark failed. Method and how to read the figures: BENCHMARKS.md.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { useLocalAwsEnvironment } from '../lib/local/emulators.ts';
import { contentionBenchmark } from './contention.ts';
import { type Emulators, startEmulators } from './lib/emulators.ts';
import {
  type BenchContext,
  type BenchResult,
  machine,
  renderResult,
  writeResult,
} from './lib/report.ts';
import { poolSizeBenchmark } from './pool-size.ts';
import { scalingBenchmark } from './scaling.ts';
import { warmPoolBenchmark } from './warm-pool.ts';

/**
 * In the order they run. warm-pool brings its own emulators (the local runtime starts DynamoDB
 * Local and fauxqs itself) and runs first, so only one java runs at a time.
 */
const BENCHMARKS: Record<
  string,
  { run: (ctx: BenchContext) => Promise<BenchResult>; emulators: boolean }
> = {
  'warm-pool': { run: warmPoolBenchmark, emulators: false },
  contention: { run: contentionBenchmark, emulators: true },
  scaling: { run: scalingBenchmark, emulators: true },
  'pool-size': { run: poolSizeBenchmark, emulators: true },
};

const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'results');

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a positive whole number');
  return n;
}

function benchmarkNames(value: string, previous: string[] = []): string[] {
  const names = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const name of names) {
    if (!Object.hasOwn(BENCHMARKS, name)) {
      throw new InvalidArgumentError(
        `unknown benchmark '${name}'; one of ${Object.keys(BENCHMARKS).join(', ')}`,
      );
    }
  }
  return [...previous, ...names];
}

async function main(): Promise<number> {
  const program = new Command('bench')
    .description('Drydock benchmarks on DynamoDB Local and the SQS emulator (see BENCHMARKS.md)')
    .option('--quick', 'small sizes and one run each: a smoke run in about a minute', false)
    .option(
      '--only <names>',
      `comma-separated subset of: ${Object.keys(BENCHMARKS).join(', ')}`,
      benchmarkNames,
    )
    .option('--runs <n>', 'runs per figure (default 3, or 1 with --quick)', positiveInt)
    .option(
      '--cpu-prof',
      'write a CPU profile of the first run of each benchmark to bench/results/<name>.cpuprofile',
      false,
    )
    .parse(process.argv);
  const opts = program.opts<{ quick: boolean; only?: string[]; runs?: number; cpuProf: boolean }>();
  const selected = Object.keys(BENCHMARKS).filter(
    (name) => !opts.only?.length || opts.only.includes(name),
  );
  const runs = opts.runs ?? (opts.quick ? 1 : 3);

  const startedAt = new Date().toISOString();
  const started = performance.now();
  const box = machine();
  const log = (message: string) =>
    console.error(
      `[bench ${((performance.now() - started) / 1000).toFixed(0).padStart(4)}s] ${message}`,
    );
  log(
    `${box.cores} cores (${box.cpuModel}), ${box.memoryGiB} GiB, node ${box.node}, ${box.java}, ` +
      `DynamoDB Local ${box.dynamoDbLocal}, load ${box.loadAverageAtStart}; ` +
      `${selected.join(', ')}; ${runs} run(s) per figure${opts.quick ? ', quick sizes' : ''}`,
  );

  let emulators: Emulators | undefined;
  const stop = () => {
    // The local runtime's java (warm-pool) has a watchdog on this pid and follows us.
    void (emulators?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);

  const base: BenchContext = {
    runs,
    quick: opts.quick,
    cores: box.cores,
    log,
    ...(opts.cpuProf ? { profileDir: RESULTS_DIR } : {}),
  };
  const rendered: string[] = [];
  let failed = false;
  try {
    for (const name of selected) {
      const benchmark = BENCHMARKS[name]!;
      log(`${name}: starting`);
      let result: BenchResult;
      try {
        let ctx = base;
        if (benchmark.emulators) {
          emulators ??= await startEmulators();
          // (again after warm-pool: the local runtime pointed the environment at its own)
          useLocalAwsEnvironment(emulators);
          ctx = { ...base, env: emulators, javaPid: emulators.javaPid };
        }
        result = await benchmark.run(ctx);
      } catch (err) {
        failed = true;
        log(`${name}: FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        continue;
      }
      const file = writeResult(RESULTS_DIR, result, { machine: box, startedAt, quick: opts.quick });
      log(
        `${name}: done in ${(result.wallMs / 1000).toFixed(0)}s; ${relative(process.cwd(), file)}`,
      );
      if (result.violations.length) failed = true;
      rendered.push(renderResult(result));
    }
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await emulators?.stop();
  }

  const totalS = (performance.now() - started) / 1000;
  const markdown = [
    `## Results (${startedAt})`,
    '',
    `Machine: ${box.cores} cores (${box.cpuModel}), ${box.memoryGiB} GiB RAM, node ${box.node}, ` +
      `${box.java}, DynamoDB Local ${box.dynamoDbLocal}, fauxqs SQS emulator; ` +
      `load average ${box.loadAverageAtStart} at start. ${runs} run(s) per figure` +
      `${opts.quick ? ' (quick sizes)' : ''}; ${selected.join(', ')}; whole bench ${totalS.toFixed(0)} s.`,
    '',
    rendered.join('\n\n'),
    '',
  ].join('\n');
  console.log(markdown);
  // The same tables, for pasting into BENCHMARKS.md.
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(join(RESULTS_DIR, 'last-run.md'), markdown);
  if (failed) log('FAILED: see the invariant violations or errors above');
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
