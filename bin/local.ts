/**
 * `npm start`: runs the whole system on this machine (see lib/local/runtime.ts).
 *
 *   npm start -- --data-dir /tmp/dd --port 0
 *
 * Ctrl-C (or SIGTERM) stops everything and exits 0. If a part dies on its own (java), the rest
 * is stopped and the exit status is 1, with a message saying what died.
 */
import { Command, InvalidArgumentError } from 'commander';
import { formatMetricPoint, metricsTo } from '../lambdas/core/metrics.ts';
import { DEFAULT_DATA_DIR, DEFAULT_PORT, startLocalRuntime } from '../lib/local/runtime.ts';

function portNumber(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidArgumentError('a port is a whole number from 0 (any free port) to 65535');
  }
  return port;
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number');
  return n;
}

const program = new Command('npm start --')
  .description(
    'Run Drydock locally: DynamoDB Local, an SQS emulator, the workers, the sweep and the HTTPS API',
  )
  .option(
    '--data-dir <dir>',
    'database, token and local.json (env DRYDOCK_DATA_DIR)',
    process.env.DRYDOCK_DATA_DIR || DEFAULT_DATA_DIR,
  )
  .option(
    '--port <port>',
    'API port on 127.0.0.1, 0 for any free port (env DRYDOCK_PORT)',
    portNumber,
    process.env.DRYDOCK_PORT ? portNumber(process.env.DRYDOCK_PORT) : DEFAULT_PORT,
  )
  .option('--sweep-interval <seconds>', 'seconds between sweeps', positiveNumber, 60)
  .option('--workers <n>', 'concurrent queue workers', positiveNumber, 4)
  .option(
    '--worker-timeout <seconds>',
    "the worker function's timeout per invocation, as on AWS",
    positiveNumber,
    60,
  )
  .option('--verbose', "show the handlers' INFO logs and their metrics, one line each", false)
  .parse();

const options = program.opts<{
  dataDir: string;
  port: number;
  sweepInterval: number;
  workers: number;
  workerTimeout: number;
  verbose: boolean;
}>();

if (options.verbose) process.env.LOG_LEVEL = 'INFO';

const started = performance.now();
const elapsed = () => `${((performance.now() - started) / 1000).toFixed(1)}s`;
const say = (message: string) => process.stdout.write(`drydock: ${message}\n`);
const warn = (message: string) => process.stderr.write(`${message}\n`);

const aborting = new AbortController();
let runtime: Awaited<ReturnType<typeof startLocalRuntime>> | undefined;
let stopping = false;

async function shutdown(signal: NodeJS.Signals): Promise<void> {
  if (stopping) {
    // A second Ctrl-C: leave now; java's watchdog stops it within a second of our exit.
    warn(`drydock: ${signal} again, exiting without waiting`);
    process.exit(130);
  }
  stopping = true;
  if (!runtime) {
    say(`${signal}: abandoning startup`);
    aborting.abort(new Error(`interrupted by ${signal}`));
    return;
  }
  say(`${signal}: stopping (workers, sweep, API server, SQS emulator, DynamoDB Local)`);
  await runtime.stop();
  say('stopped');
  process.exit(0);
}
process.on('SIGINT', (signal) => void shutdown(signal));
process.on('SIGTERM', (signal) => void shutdown(signal));
process.on('SIGHUP', (signal) => void shutdown(signal));
// A stray rejection in a background task must not take the whole runtime down.
process.on('unhandledRejection', (reason) => {
  warn(
    `drydock: unhandled rejection (runtime keeps going): ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`,
  );
});

try {
  runtime = await startLocalRuntime({
    dataDir: options.dataDir,
    port: options.port,
    sweepIntervalSeconds: options.sweepInterval,
    workers: options.workers,
    workerTimeoutSeconds: options.workerTimeout,
    progress: (message) => say(`[${elapsed()}] ${message}`),
    warn,
    // Metric lines only when asked for: on AWS they are EMF documents nobody reads by eye.
    ...(options.verbose ? { metrics: metricsTo((point) => say(formatMetricPoint(point))) } : {}),
    signal: aborting.signal,
  });
} catch (err) {
  if (aborting.signal.aborted) {
    say('stopped');
    process.exit(0);
  }
  warn(`drydock: could not start: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}

say(`ready in ${elapsed()}
  console: ${runtime.url}/   (the web console; no token to type)
  API:    ${runtime.url}/v1   (Authorization: Bearer <token>)
  token:  ${runtime.tokenFile}   (and ${runtime.infoFile}, which the drydock CLI reads)
  data:   ${runtime.dataDir}
  try:    npx drydock lease --type host -- uname -a
Ctrl-C stops everything; leases, resources and blueprints are kept for the next start.`);

const failure = await runtime.failed;
if (!stopping) {
  warn(`drydock: ${failure.message}`);
  warn('drydock: stopped everything else; exiting');
  process.exit(1);
}
