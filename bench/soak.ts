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
  .option('--in-flight <n>', 'leases open at once, at most', positiveInt, 300)
  .option('--seed <n>', 'seed of the random choices and faults', positiveInt, 14)
  .option('--minutes <n>', 'give up after this long', positiveInt, 10)
  .parse();
const opts = program.opts<{
  leases: number;
  workers: number;
  inFlight: number;
  seed: number;
  minutes: number;
}>();

const emulators = await startEmulators();
useLocalAwsEnvironment(emulators);
let failed = false;
try {
  const result = await runSoak(emulators, {
    leases: opts.leases,
    workers: opts.workers,
    maxInFlight: opts.inFlight,
    seed: opts.seed,
    deadlineMs: opts.minutes * 60_000,
    log: (line) => console.error(line),
  });
  const out = { ...result, seed: opts.seed, machine: machine(), at: new Date().toISOString() };
  const file = join(dirname(fileURLToPath(import.meta.url)), 'results', 'soak.json');
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
      `ended: released ${result.ended.released}, expired ${result.ended.expired}, broken ${result.ended.broken}`,
      ...result.violations.slice(0, 20).map((v) => `VIOLATION: ${v}`),
    ].join('\n'),
  );
  failed = result.violations.length > 0;
} finally {
  await emulators.stop();
}
process.exit(failed ? 1 : 0);
