/**
 * Commands that outlive a worker, end to end: the local runtime as a child process (workers
 * with a 3 s per-invocation budget), the CLI as child processes, commands as real detached
 * process groups of the `local` local-host blueprint.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../lib/local/process.ts';
import { waitFor } from '../support/env.ts';
import {
  drydock,
  expectNoJava,
  type RuntimeProcess,
  spawnDrydock,
  startRuntime,
  tearDownRuntime,
  tempDataDir,
} from './support.ts';

interface CommandJson {
  id: string;
  status: string;
  attempt: number;
  polls?: number;
  result?: { exitCode: number | null; stdout: string; timedOut: boolean };
  error?: string;
}

/** The runtime's API with its bearer token (what the CLI does, without the CLI). */
function api(dataDir: string) {
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const { url, token } = JSON.parse(readFileSync(join(dataDir, 'local.json'), 'utf8')) as {
      url: string;
      token: string;
    };
    const response = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
    return JSON.parse(text) as T;
  };
  return {
    command: async (leaseId: string, id: string) =>
      (await call<{ command: CommandJson }>('GET', `/v1/leases/${leaseId}/commands/${id}`)).command,
    start: async (leaseId: string, spec: Record<string, unknown>) =>
      (await call<{ command: CommandJson }>('POST', `/v1/leases/${leaseId}/commands`, spec))
        .command,
  };
}

/** `drydock lease --ttl 30m`: a held lease's id. */
async function holdLease(dataDir: string): Promise<string> {
  const held = await drydock(dataDir, ['lease', '--type', 'host', '--ttl', '30m']);
  expect(held.code, held.stderr).toBe(0);
  return held.stdout.trim();
}

const RUNTIME_ARGS = ['--worker-timeout', '3', '--sweep-interval', '2'];

describe('commands longer than a worker invocation', () => {
  const dataDir = tempDataDir('commands');
  let runtime: RuntimeProcess | undefined;

  beforeAll(async () => {
    runtime = await startRuntime(dataDir, RUNTIME_ARGS);
  }, 120_000);

  afterAll(() => tearDownRuntime(runtime, dataDir), 60_000);

  it('streams `lease -- cmd` output as it comes and runs a 20 s command on 3 s workers', async () => {
    const cli = spawnDrydock(dataDir, [
      'lease',
      '--type',
      'host',
      '--',
      'sh',
      '-c',
      'for i in 1 2 3 4 5; do echo $i; sleep 1; done; sleep 15; echo done',
    ]);
    // When each number reached the CLI's stdout.
    const seen = new Map<string, number>();
    cli.child.stdout?.on('data', () => {
      for (const line of cli.stdout().split('\n')) {
        if (line && !seen.has(line)) seen.set(line, performance.now());
      }
    });
    const run = await cli.done;
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe('1\n2\n3\n4\n5\ndone\n');
    // Printed as they came, about a second apart, not all at the end.
    const first = seen.get('1') as number;
    expect((seen.get('5') as number) - first).toBeGreaterThan(2_500);
    expect((seen.get('done') as number) - (seen.get('5') as number)).toBeGreaterThan(10_000);

    // One run of the command, advanced by many short polls (each well inside a 3 s worker).
    const leaseId = /requested (lease-[a-z0-9]+)/.exec(run.stderr)?.[1] as string;
    const commandId = /\((cmd-[a-z0-9]+)/.exec(run.stderr)?.[1] as string;
    expect(commandId, run.stderr).toBeDefined();
    const command = await api(dataDir).command(leaseId, commandId);
    expect(command).toMatchObject({ status: 'finished', attempt: 1 });
    expect(command.result).toMatchObject({ exitCode: 0, timedOut: false });
    expect(command.polls).toBeGreaterThan(5);
  }, 90_000);

  it('Ctrl-C during `drydock exec` cancels the command: its process group is gone within 5 s', async () => {
    const leaseId = await holdLease(dataDir);
    const cli = spawnDrydock(dataDir, [
      'exec',
      leaseId,
      '--',
      'sh',
      '-c',
      'sleep 120 & echo "$$ $!"; wait',
    ]);
    const [shell, sleeper] = await waitFor(
      () => {
        const pids = /^(\d+) (\d+)$/m.exec(cli.stdout());
        return pids ? [Number(pids[1]), Number(pids[2])] : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 50, message: 'the command to print its pids' },
    );
    expect(isAlive(shell) && isAlive(sleeper)).toBe(true);
    const interruptedAt = performance.now();
    cli.child.kill('SIGINT');
    await waitFor(() => !isAlive(shell) && !isAlive(sleeper), {
      timeoutMs: 5_000,
      intervalMs: 50,
      message: `the command's processes ${shell} and ${sleeper} to be gone`,
    });
    expect(performance.now() - interruptedAt).toBeLessThan(5_000);
    const run = await cli.done;
    expect(run.code).toBe(130);
    const commandId = /\((cmd-[a-z0-9]+)/.exec(run.stderr)?.[1] as string;
    const command = await api(dataDir).command(leaseId, commandId);
    expect(command.status).toBe('cancelled');
    await drydock(dataDir, ['release', leaseId]);
  }, 90_000);
});

describe('a command survives a restart of the local runtime', () => {
  const dataDir = tempDataDir('commands-restart');
  let runtime: RuntimeProcess | undefined;

  afterAll(() => tearDownRuntime(runtime, dataDir), 60_000);

  it('records the result of a command that ran on while the runtime was SIGKILLed', async () => {
    runtime = await startRuntime(dataDir, RUNTIME_ARGS);
    const leaseId = await holdLease(dataDir);
    const started = await api(dataDir).start(leaseId, {
      script: 'echo begin; sleep 15; echo end; exit 3',
    });
    await waitFor(
      async () => (await api(dataDir).command(leaseId, started.id)).status === 'running',
      {
        timeoutMs: 20_000,
        intervalMs: 100,
        message: 'the command to be running',
      },
    );
    await runtime.killGroup();
    await expectNoJava(dataDir);

    runtime = await startRuntime(dataDir, RUNTIME_ARGS);
    const command = await waitFor(
      async () => {
        const c = await api(dataDir).command(leaseId, started.id);
        return c.status === 'running' ? undefined : c;
      },
      { timeoutMs: 90_000, intervalMs: 250, message: 'the command to be recorded as ended' },
    );
    // The detached command finished on its own; the new workers found its exit status.
    expect(command).toMatchObject({ status: 'finished', attempt: 1 });
    expect(command.result).toMatchObject({ exitCode: 3, stdout: 'begin\nend\n', timedOut: false });
    expect(command.error).toBeUndefined();
  }, 240_000);
});
