/**
 * The local runtime and the CLI end to end: one `npm start`-style runtime as a child process,
 * driven only by `drydock` child processes.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/env.ts';
import {
  drydock,
  drydockJson,
  expectNoJava,
  forceStop,
  leaseIdOf,
  type RuntimeProcess,
  spawnDrydock,
  startRuntime,
  tempDataDir,
} from './support.ts';

interface LeaseJson {
  id: string;
  status: string;
  endReason?: string;
  endedAs?: string;
  blueprintId?: string;
}
interface ResourceJson {
  id: string;
  blueprintId: string;
  status: string;
  createdAt: string;
  destroyedAt?: string;
}
interface LogJson {
  type: string;
  message: string;
  at: string;
}

describe('drydock CLI against the local runtime', () => {
  const dataDir = tempDataDir('cli');
  let runtime: RuntimeProcess | undefined;

  beforeAll(async () => {
    runtime = await startRuntime(dataDir);
  }, 120_000);

  afterAll(async () => {
    try {
      if (runtime) {
        const { code } = await runtime.stop();
        expect(code).toBe(0);
      }
    } finally {
      await forceStop(runtime);
      await expectNoJava(dataDir);
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);

  it('runs a command on a fresh lease, prints its output and releases the lease', async () => {
    const run = await drydock(dataDir, ['lease', '--type', 'host', '--', 'uname', '-a']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.trim()).toBe(execFileSync('uname', ['-a'], { encoding: 'utf8' }).trim());
    const id = leaseIdOf(run.stderr);
    expect(id, run.stderr).toBeDefined();

    // `drydock leases` (no flags) still shows it, as released: the holder sees how it ended.
    const table = await drydock(dataDir, ['leases']);
    expect(table.code, table.stderr).toBe(0);
    const row = table.stdout.split('\n').find((line) => line.startsWith(id!));
    expect(row, table.stdout).toMatch(/^\S+\s+released\s+host\s/);
    const current = await drydockJson<LeaseJson[]>(dataDir, ['leases']);
    const lease = current.find((l) => l.id === id);
    expect(lease?.status).toMatch(/^(released|destroyed)$/);
    expect(lease?.endedAs).toBe('released');
    expect(lease?.endReason).toMatch(/released by local:/);
  }, 60_000);

  it('serves 15 parallel leases from a 3-host pool, never more than 3 hosts alive', async () => {
    const created = await drydock(dataDir, [
      'blueprint',
      'create',
      '--id',
      'pool3',
      '--type',
      'local-host',
      '--max-resources',
      '3',
      '--leases-per-resource',
      '1',
      '--reclaim-on-release',
      '--attributes',
      `platform=${process.platform}`,
    ]);
    expect(created.code, created.stderr).toBe(0);

    // Watch the pool while the leases run. A local host is a directory that exists from its
    // activation until it is destroyed (inside the time its pool slot is held): count them.
    const hostsDir = join(dataDir, 'local-host', 'pool3');
    let watching = true;
    let maxHosts = 0;
    let polls = 0;
    const watcher = (async () => {
      while (watching) {
        const hosts = existsSync(hostsDir) ? readdirSync(hostsDir).length : 0;
        maxHosts = Math.max(maxHosts, hosts);
        polls++;
        await new Promise((r) => setTimeout(r, 10));
      }
    })();

    const clis = Array.from({ length: 15 }, (_, n) =>
      spawnDrydock(dataDir, [
        'lease',
        '--type',
        'host',
        '--ttl',
        '1m',
        '--blueprint',
        'pool3',
        '--timeout',
        '2m',
        '--',
        'sh',
        '-c',
        `echo "job ${n} on $(basename "$PWD")"; sleep 0.2`,
      ]),
    );
    const runs = await Promise.all(clis.map((c) => c.done));
    watching = false;
    await watcher;

    for (const [n, run] of runs.entries()) {
      expect(run.code, `cli ${n}:\n${run.stderr}`).toBe(0);
      expect(run.stdout).toMatch(new RegExp(`^job ${n} on res-`));
    }
    expect(polls).toBeGreaterThan(10);
    expect(maxHosts).toBeGreaterThan(0);
    expect(maxHosts).toBeLessThanOrEqual(3);

    // Reconstruct every pool3 host's lifetime: at no instant were more than 3 alive.
    const resources = (await drydockJson<ResourceJson[]>(dataDir, ['resources', '--all'])).filter(
      (r) => r.blueprintId === 'pool3',
    );
    expect(resources.length).toBeGreaterThanOrEqual(3);
    const events = resources.flatMap((r) => [
      { at: Date.parse(r.createdAt), delta: 1 },
      { at: r.destroyedAt ? Date.parse(r.destroyedAt) : Number.POSITIVE_INFINITY, delta: -1 },
    ]);
    // A host destroyed at the same millisecond another is created counts as gone first.
    events.sort((a, b) => a.at - b.at || a.delta - b.delta);
    let alive = 0;
    let peak = 0;
    for (const e of events) {
      alive += e.delta;
      peak = Math.max(peak, alive);
    }
    expect(peak).toBeLessThanOrEqual(3);

    // Every CLI whose lease waited showed why, as the lease log said it.
    let waited = 0;
    for (const run of runs) {
      const id = leaseIdOf(run.stderr);
      expect(id, run.stderr).toBeDefined();
      const logs = await drydockJson<LogJson[]>(dataDir, ['logs', id as string]);
      const waits = logs.filter((e) => e.type === 'lease.waiting');
      if (waits.length > 0) {
        waited++;
        expect(run.stderr).toMatch(/waiting: /);
        for (const w of waits) expect(run.stderr).toContain(w.message.split('\n')[0]);
      }
      expect(logs.map((e) => e.type)).toContain('lease.released');
    }
    // 15 leases on 3 hosts: most had to wait.
    expect(waited).toBeGreaterThanOrEqual(8);
  }, 150_000);

  it('fails fast, with the reason, when no blueprint can ever serve the lease', async () => {
    const run = await drydock(dataDir, [
      'lease',
      '--type',
      'host',
      '--attributes',
      'platform=windows',
    ]);
    expect(run.code).not.toBe(0);
    expect(run.ms).toBeLessThan(15_000);
    expect(run.stderr).toMatch(/lease lease-\w+ broke: no blueprint can ever serve this lease/);
    expect(run.stderr).toMatch(/platform=windows/);
    expect(run.stderr).toMatch(new RegExp(`blueprint 'local' has platform=${process.platform}`));
  }, 30_000);

  it('releases a waiting lease on Ctrl-C', async () => {
    const created = await drydock(dataDir, [
      'blueprint',
      'create',
      '--id',
      'solo',
      '--type',
      'local-host',
      '--max-resources',
      '1',
      '--attributes',
      `platform=${process.platform}`,
    ]);
    expect(created.code, created.stderr).toBe(0);
    const holder = await drydock(dataDir, ['lease', '--type', 'host', '--blueprint', 'solo']);
    expect(holder.code, holder.stderr).toBe(0);
    const held = holder.stdout.trim();
    expect(held).toMatch(/^lease-/);

    const waiter = spawnDrydock(dataDir, ['lease', '--type', 'host', '--blueprint', 'solo']);
    await waitFor(() => /waiting: /.test(waiter.stderr()), {
      timeoutMs: 20_000,
      message: `the waiting CLI to say why it waits (stderr so far: ${waiter.stderr()})`,
    });
    const waiting = leaseIdOf(waiter.stderr()) as string;
    waiter.child.kill('SIGINT');
    const run = await waiter.done;
    expect(run.code, run.stderr).toBe(130);
    expect(run.stderr).toContain(`released ${waiting}`);

    const leases = await drydockJson<LeaseJson[]>(dataDir, ['leases', '--all']);
    const interrupted = leases.find((l) => l.id === waiting);
    expect(interrupted?.status).toMatch(/^(released|destroyed)$/);
    expect(leases.find((l) => l.id === held)?.status).toBe('active');

    const released = await drydock(dataDir, ['release', held]);
    expect(released.code, released.stderr).toBe(0);
    expect(released.stdout).toContain(`${held} released`);
  }, 60_000);
});
