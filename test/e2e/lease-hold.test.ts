/**
 * No lease outlives its CLI (issue 15, point 6), end to end against the local runtime:
 *  - `npx drydock lease` waiting on a full pool, SIGTERM sent to the npx process alone (what
 *    some CI runners do on cancel): within 10 s the lease is no longer pending or active and no
 *    CLI process is left (the CLI notices its parent went away, and releases);
 *  - the CLI killed with SIGKILL: its held lease ends once the hold lapses (a 3 s hold here,
 *    so the test is quick; the 3-minute bound for the defaults is checked by arithmetic in
 *    test/handlers/lease-hold.test.ts).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../lib/local/process.ts';
import { waitFor } from '../support/env.ts';
import {
  drydock,
  drydockJson,
  leaseIdOf,
  ROOT,
  type RuntimeProcess,
  startRuntime,
  tearDownRuntime,
  tempDataDir,
} from './support.ts';

interface LeaseJson {
  id: string;
  status: string;
  endReason?: string;
}

/** npx from PATH, as a CI job would run it (it runs the CLI through the package's bin). */
const NPX = 'npx';

/** Every process below `pid` (ps), for "no CLI process is left". */
function descendantsOf(pid: number): number[] {
  const rows = execFileSync('ps', ['-eo', 'pid=,ppid='], { encoding: 'utf8' })
    .split('\n')
    .map((line) => line.trim().split(/\s+/).map(Number))
    .filter((row) => row.length === 2);
  const found: number[] = [];
  let frontier = [pid];
  while (frontier.length > 0) {
    const next = rows
      .filter(([, ppid]) => frontier.includes(ppid as number))
      .map(([p]) => p as number);
    found.push(...next);
    frontier = next;
  }
  return found;
}

interface Spawned {
  child: ChildProcess;
  stderr(): string;
  exited: Promise<void>;
}

function spawnWith(command: string, args: string[], env: Record<string, string>): Spawned {
  const child = spawn(command, args, {
    cwd: ROOT,
    env: { ...process.env, DRYDOCK_URL: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own group: afterAll can still clean up whatever a failing test leaves behind.
    detached: true,
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  child.stdout?.resume();
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  return { child, stderr: () => stderr, exited };
}

describe('no lease outlives its CLI', () => {
  const dataDir = tempDataDir('hold');
  let runtime: RuntimeProcess | undefined;
  const groups: number[] = [];
  let holder = '';

  beforeAll(async () => {
    runtime = await startRuntime(dataDir);
    const created = await drydock(dataDir, [
      'blueprint',
      'create',
      '--id',
      'one',
      '--type',
      'local-host',
      '--max-resources',
      '1',
      '--attributes',
      `platform=${process.platform}`,
    ]);
    expect(created.code, created.stderr).toBe(0);
    const held = await drydock(dataDir, ['lease', '--type', 'host', '--blueprint', 'one']);
    expect(held.code, held.stderr).toBe(0);
    holder = held.stdout.trim();
  }, 120_000);

  afterAll(async () => {
    for (const group of groups) {
      try {
        process.kill(-group, 'SIGKILL');
      } catch {
        // gone, as it should be
      }
    }
    await tearDownRuntime(runtime, dataDir);
  }, 90_000);

  async function statusOf(id: string): Promise<LeaseJson | undefined> {
    const leases = await drydockJson<LeaseJson[]>(dataDir, ['leases', '--all']);
    return leases.find((l) => l.id === id);
  }

  async function waitingLease(cli: Spawned): Promise<string> {
    await waitFor(() => /waiting: /.test(cli.stderr()), {
      timeoutMs: 30_000,
      message: `the CLI to say why it waits (stderr so far: ${cli.stderr()})`,
    });
    return leaseIdOf(cli.stderr()) as string;
  }

  it('SIGTERM to the npx process alone: within 10 s the lease is released and no CLI is left', async () => {
    const npx = spawnWith(
      NPX,
      ['--no-install', 'drydock', 'lease', '--type', 'host', '--blueprint', 'one', '--ttl', '30m'],
      { DRYDOCK_DATA_DIR: dataDir },
    );
    groups.push(npx.child.pid as number);
    const id = await waitingLease(npx);
    const below = descendantsOf(npx.child.pid as number);
    expect(below.length, 'npx runs the CLI as a child process').toBeGreaterThan(0);

    const signalled = Date.now();
    process.kill(npx.child.pid as number, 'SIGTERM');
    await waitFor(
      async () => {
        const lease = await statusOf(id);
        return lease && !['pending', 'acquired', 'active'].includes(lease.status)
          ? lease
          : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 250, message: `lease ${id} to end after SIGTERM to npx` },
    );
    await waitFor(() => below.every((pid) => !isAlive(pid)), {
      timeoutMs: Math.max(1, 10_000 - (Date.now() - signalled)),
      intervalMs: 100,
      message: `no CLI process left (alive: ${below.filter((pid) => isAlive(pid)).join(', ')})`,
    });
    expect(Date.now() - signalled).toBeLessThan(10_000);
    expect((await statusOf(holder))?.status).toBe('active');
  }, 60_000);

  it('SIGKILL of the CLI: its lease ends when the hold lapses', async () => {
    const cli = spawnWith(
      process.execPath,
      [
        join(ROOT, 'bin', 'drydock.ts'),
        'lease',
        '--type',
        'host',
        '--blueprint',
        'one',
        '--ttl',
        '30m',
      ],
      { DRYDOCK_DATA_DIR: dataDir, DRYDOCK_HOLD_SECONDS: '3' },
    );
    groups.push(cli.child.pid as number);
    const id = await waitingLease(cli);
    const killed = Date.now();
    cli.child.kill('SIGKILL');
    await cli.exited;
    const ended = await waitFor(
      async () => {
        const lease = await statusOf(id);
        return lease && !['pending', 'acquired', 'active'].includes(lease.status)
          ? lease
          : undefined;
      },
      {
        timeoutMs: 180_000,
        intervalMs: 500,
        message: `lease ${id} to end after its CLI was killed`,
      },
    );
    expect(ended.endReason).toMatch(/not renewed within its hold of 3s/);
    expect(Date.now() - killed).toBeLessThan(180_000);
    expect((await statusOf(holder))?.status).toBe('active');
  }, 200_000);
});
