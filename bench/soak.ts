/**
 * `npm run soak [-- --leases 10000] [-- --workers 32] [-- --seed 14]`
 *
 * Starts DynamoDB Local and the SQS emulator, runs the soak (soak-run.ts), prints its figures,
 * writes bench/results/soak.json and exits non-zero on any invariant violation. The figures
 * belong in BENCHMARKS.md ("Soak").
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { useLocalAwsEnvironment } from '../lib/local/emulators.ts';
import { startEmulators } from './lib/emulators.ts';
import { startProfiling } from './lib/profiler.ts';
import { machine } from './lib/report.ts';
import { runSoak } from './soak-run.ts';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a positive whole number');
  return n;
}

const program = new Command('soak')
  .option('--leases <n>', 'leases over the run', positiveInt, 10_000)
  .option('--workers <n>', 'concurrent queue workers', positiveInt, 32)
  .option('--in-flight <n>', 'leases open at once, at most', positiveInt, 200)
  .option('--seed <n>', 'seed of the random choices and faults', positiveInt, 14)
  .option('--minutes <n>', 'give up after this long', positiveInt, 10)
  .option('--quick-java', "DynamoDB Local with the tests' quick-start JIT (to compare)")
  .option('--cpu-prof', 'write a V8 CPU profile of the run to bench/results/soak.cpuprofile')
  .parse();
const opts = program.opts<{
  leases: number;
  workers: number;
  inFlight: number;
  seed: number;
  minutes: number;
  cpuProf?: boolean;
  quickJava?: boolean;
}>();

// Java fully compiled: minutes of DynamoDB calls, where the quick first tier costs more CPU.
const emulators = await startEmulators({ longRun: opts.quickJava !== true });
useLocalAwsEnvironment(emulators);
let failed = false;
const resultsDir = join(dirname(fileURLToPath(import.meta.url)), 'results');
const profiling = opts.cpuProf
  ? await startProfiling(join(resultsDir, 'soak.cpuprofile'))
  : undefined;
try {
  const result = await runSoak(emulators, {
    leases: opts.leases,
    workers: opts.workers,
    maxInFlight: opts.inFlight,
    seed: opts.seed,
    deadlineMs: opts.minutes * 60_000,
    log: (line) => console.error(line),
  });
  if (profiling) console.error(`CPU profile: ${await profiling.stop()}`);
  const out = { ...result, seed: opts.seed, machine: machine(), at: new Date().toISOString() };
  const file = join(resultsDir, 'soak.json');
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  console.log(
    [
      `| leases | workers | seconds | leases/s | calls/lease | wasted | violations |`,
      `|---|---|---|---|---|---|---|`,
      `| ${result.leases} | ${result.workers} | ${result.seconds} | ${result.leasesPerSecond} | ${result.callsPerLease} | ${result.wastedShare} % | ${result.violations.length} |`,
      '',
      `faults injected: ${Object.entries(result.faults)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ')}`,
      `resources by blueprint: ${JSON.stringify(result.resources)}`,
      `ended: released ${result.ended.released}, expired ${result.ended.expired}, broken ${result.ended.broken}`,
      `cpu: node ${result.where.cpu.nodeMs} ms, DynamoDB Local ${result.where.cpu.javaMs ?? '?'} ms over ${result.where.cpu.wallMs} ms (machine ${result.where.cpu.utilization ?? '?'} busy)`,
      `updates: ${result.updates} (${Math.round((result.updates / Math.max(1, result.leases)) * 10) / 10} per lease); by outcome: ${JSON.stringify(result.where.actions)}`,
      `deliveries: ${result.where.redelivered} redelivered, ${result.where.failedDeliveries} failed; update ms ${JSON.stringify(result.where.updateMs)}; harness calls/lease ${result.where.harnessCallsPerLease}; stamp inversions ${result.where.stampInversions} (within the slowest transaction, ${result.where.commitSlackMs} ms)`,
      `wasted by: ${JSON.stringify(Object.fromEntries(Object.entries(result.where.wastedBy).slice(0, 12)))}`,
      ...result.violations.slice(0, 20).map((v) => `VIOLATION: ${v}`),
    ].join('\n'),
  );
  failed = result.violations.length > 0;
} finally {
  await emulators.stop();
}
process.exit(failed ? 1 : 0);
