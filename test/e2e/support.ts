/**
 * End-to-end helpers: the local runtime as a real child process (`tsx bin/local.ts`, in its own
 * process group) and the `drydock` CLI as real child processes (`node bin/drydock.ts`, the way
 * `npx drydock` runs it), talking to each other only through the HTTPS API.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LocalInfo } from '../../lib/local/data-dir.ts';
import { isAlive } from '../../lib/local/process.ts';
import { waitFor } from '../support/env.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');
const DRYDOCK = join(ROOT, 'bin', 'drydock.ts');

export function tempDataDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `drydock-e2e-${prefix}-`));
}

export interface RuntimeProcess {
  dataDir: string;
  child: ChildProcess;
  info: LocalInfo;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM the runtime and wait for it (and its java) to be gone. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /**
   * SIGKILL the whole process group (tsx and the runtime's node; java runs in a group of its
   * own, and its watchdog stops it within a second) and wait until the runtime is gone.
   */
  killGroup(): Promise<void>;
}

/** Java processes whose command line names this data dir (DynamoDB Local's -dbPath). */
export function javaPidsFor(dataDir: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', `dbPath ${join(dataDir, 'dynamodb')}`], {
      encoding: 'utf8',
    })
      .split('\n')
      .filter(Boolean)
      .map(Number)
      .filter((pid) => pid !== process.pid);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

/** Waits until no java of this data dir is left (pgrep), failing with what is left. */
export async function expectNoJava(dataDir: string, timeoutMs = 15_000): Promise<void> {
  await waitFor(() => javaPidsFor(dataDir).length === 0, {
    timeoutMs,
    intervalMs: 200,
    message: `no DynamoDB Local java left for ${dataDir} (still running: ${javaPidsFor(dataDir).join(', ')})`,
  });
}

export async function startRuntime(
  dataDir: string,
  extraArgs: string[] = [],
  timeoutMs = 90_000,
): Promise<RuntimeProcess> {
  const child = spawn(TSX, ['bin/local.ts', '--data-dir', dataDir, '--port', '0', ...extraArgs], {
    cwd: ROOT,
    env: { ...process.env, DRYDOCK_DATA_DIR: '', DRYDOCK_PORT: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.once('exit', (code, signal) => done({ code, signal })),
  );
  const infoFile = join(dataDir, 'local.json');
  let info: LocalInfo;
  try {
    info = await waitFor(
      () => {
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(
            `the runtime exited (${child.exitCode ?? child.signalCode}) before it was ready`,
          );
        }
        if (!existsSync(infoFile) || !/ready in/.test(output)) return undefined;
        return JSON.parse(readFileSync(infoFile, 'utf8')) as LocalInfo;
      },
      { timeoutMs, intervalMs: 100, message: `${infoFile} of a ready runtime` },
    );
  } catch (err) {
    try {
      process.kill(-(child.pid as number), 'SIGKILL');
    } catch {
      // gone already
    }
    throw new Error(`${(err as Error).message}\n--- runtime output ---\n${output}`);
  }
  return {
    dataDir,
    child,
    info,
    output: () => output,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) process.kill(info.pid, 'SIGTERM');
      const result = await Promise.race([
        exited,
        new Promise<never>((_, fail) =>
          setTimeout(
            () => fail(new Error(`runtime did not stop within 30 s:\n${output}`)),
            30_000,
          ).unref(),
        ),
      ]);
      await expectNoJava(dataDir);
      return result;
    },
    async killGroup() {
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
      } catch {
        // gone already
      }
      await exited;
      await waitFor(() => !isAlive(info.pid), {
        timeoutMs: 10_000,
        message: `runtime pid ${info.pid} to be gone`,
      });
    },
  };
}

/** afterAll of a runtime a test file started: stop it, make sure nothing is left, remove its data. */
export async function tearDownRuntime(
  runtime: RuntimeProcess | undefined,
  dataDir: string,
): Promise<void> {
  try {
    if (runtime) await runtime.stop();
  } finally {
    await forceStop(runtime);
    await expectNoJava(dataDir);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Last resort for afterAll: whatever is left of a runtime and its java, gone. */
export async function forceStop(runtime: RuntimeProcess | undefined): Promise<void> {
  if (!runtime) return;
  if (runtime.child.exitCode === null && runtime.child.signalCode === null) {
    try {
      process.kill(runtime.info.pid, 'SIGTERM');
    } catch {
      // gone
    }
    const stopped = await Promise.race([
      runtime.exited.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), 20_000).unref()),
    ]);
    if (!stopped) await runtime.killGroup();
  }
  for (const pid of javaPidsFor(runtime.dataDir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface CliProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  done: Promise<CliRun>;
}

/** Starts `drydock <args>` as a child process against the runtime of `dataDir`. */
export function spawnDrydock(dataDir: string, args: string[]): CliProcess {
  const started = performance.now();
  const child = spawn(process.execPath, [DRYDOCK, ...args], {
    cwd: ROOT,
    env: { ...process.env, DRYDOCK_DATA_DIR: dataDir, DRYDOCK_URL: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const done = new Promise<CliRun>((resolve) =>
    child.once('close', (code, signal) =>
      resolve({ code, signal, stdout, stderr, ms: performance.now() - started }),
    ),
  );
  return { child, stdout: () => stdout, stderr: () => stderr, done };
}

/** Runs `drydock <args>` to the end (killed after timeoutMs). */
export async function drydock(
  dataDir: string,
  args: string[],
  timeoutMs = 60_000,
): Promise<CliRun> {
  const cli = spawnDrydock(dataDir, args);
  const timer = setTimeout(() => cli.child.kill('SIGKILL'), timeoutMs);
  try {
    return await cli.done;
  } finally {
    clearTimeout(timer);
  }
}

/** `drydock <args> --json`, parsed; fails with the CLI's stderr if it did not exit 0. */
export async function drydockJson<T>(dataDir: string, args: string[]): Promise<T> {
  const run = await drydock(dataDir, [...args, '--json']);
  if (run.code !== 0) {
    throw new Error(`drydock ${args.join(' ')} exited ${run.code}:\n${run.stderr}`);
  }
  return JSON.parse(run.stdout) as T;
}

/** The lease id a `drydock lease` printed ("requested lease-..."). */
export function leaseIdOf(stderr: string): string | undefined {
  return /requested (lease-[a-z0-9]+)/.exec(stderr)?.[1];
}
