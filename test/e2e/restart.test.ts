/**
 * The local runtime keeps its state across restarts (DynamoDB Local's -dbPath in the data
 * directory), whether it was stopped (SIGTERM) or killed with its whole process group
 * (SIGKILL), and takes itself down, saying so, when java dies under it.
 */
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../lib/local/process.ts';
import { waitFor } from '../support/env.ts';
import {
  drydock,
  drydockJson,
  expectNoJava,
  forceStop,
  type RuntimeProcess,
  startRuntime,
  tempDataDir,
} from './support.ts';

interface Snapshot {
  leases: Array<{ id: string; status: string }>;
  resources: Array<{ id: string; status: string }>;
  blueprints: Array<{ id: string; state: string; version: number }>;
}

async function snapshot(dataDir: string): Promise<Snapshot> {
  const [leases, resources, blueprints] = await Promise.all([
    drydockJson<Snapshot['leases']>(dataDir, ['leases', '--all']),
    drydockJson<Snapshot['resources']>(dataDir, ['resources', '--all']),
    drydockJson<Snapshot['blueprints']>(dataDir, ['blueprints']),
  ]);
  const pick = <T extends { id: string }>(items: T[], keys: Array<keyof T>) =>
    items
      .map((item) => Object.fromEntries(keys.map((k) => [k, item[k]])) as unknown as T)
      .sort((a, b) => a.id.localeCompare(b.id));
  return {
    leases: pick(leases, ['id', 'status']),
    resources: pick(resources, ['id', 'status']),
    blueprints: pick(blueprints, ['id', 'state', 'version']),
  };
}

describe('local runtime restarts', () => {
  const dataDir = tempDataDir('restart');
  let runtime: RuntimeProcess | undefined;

  afterAll(async () => {
    await forceStop(runtime);
    await expectNoJava(dataDir);
    rmSync(dataDir, { recursive: true, force: true });
  }, 60_000);

  it('keeps leases, resources and blueprints across SIGTERM and SIGKILL of the process group', async () => {
    runtime = await startRuntime(dataDir);
    const created = await drydock(dataDir, [
      'blueprint',
      'create',
      '--id',
      'keep',
      '--type',
      'local-host',
      '--max-resources',
      '2',
      '--attributes',
      `platform=${process.platform}`,
    ]);
    expect(created.code, created.stderr).toBe(0);
    const held = await drydock(dataDir, ['lease', '--blueprint', 'keep', '--ttl', '30m']);
    expect(held.code, held.stderr).toBe(0);
    const leaseId = held.stdout.trim();
    const done = await drydock(dataDir, ['lease', '--blueprint', 'keep', '--', 'true']);
    expect(done.code, done.stderr).toBe(0);

    // Let the finished lease reach its final state, so the snapshots compare settled state.
    const before = await waitFor(
      async () => {
        const s = await snapshot(dataDir);
        return s.leases.every((l) => l.status === 'active' || l.status === 'destroyed')
          ? s
          : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 300, message: 'leases to settle (active or destroyed)' },
    );
    expect(before.leases.find((l) => l.id === leaseId)?.status).toBe('active');
    expect(before.blueprints.map((b) => b.id)).toEqual(['keep', 'local', 'local-wc']);
    expect(before.resources.length).toBeGreaterThan(0);

    // 1. SIGTERM: a clean stop, exit 0, java gone, local.json removed.
    const stopped = await runtime.stop();
    expect(stopped.code, runtime.output()).toBe(0);
    expect(runtime.output()).toMatch(/SIGTERM: stopping/);
    expect(existsSync(join(dataDir, 'local.json'))).toBe(false);
    const gone = await drydock(dataDir, ['leases']);
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toMatch(/is not running/);
    expect(gone.stderr).toMatch(/npm start/);

    runtime = await startRuntime(dataDir);
    const afterStop = await snapshot(dataDir);
    expect(afterStop.leases).toEqual(before.leases);
    expect(afterStop.blueprints).toEqual(before.blueprints);
    expect(afterStop.resources.map((r) => r.id)).toEqual(before.resources.map((r) => r.id));
    expect(afterStop.leases.find((l) => l.id === leaseId)?.status).toBe('active');

    // 2. SIGKILL of the whole process group: no clean-up at all; java's watchdog stops it.
    const killed = runtime;
    await killed.killGroup();
    await expectNoJava(dataDir);
    // The left-over local.json names a dead runtime: the CLI says it is not running.
    const stale = await drydock(dataDir, ['leases']);
    expect(stale.code).not.toBe(0);
    expect(stale.stderr).toMatch(/is not running \(connection refused/);

    runtime = await startRuntime(dataDir);
    const afterKill = await snapshot(dataDir);
    expect(afterKill.leases).toEqual(before.leases);
    expect(afterKill.blueprints).toEqual(before.blueprints);
    expect(afterKill.resources.map((r) => r.id)).toEqual(before.resources.map((r) => r.id));

    // The kept lease still works after two restarts.
    const exec = await drydock(dataDir, ['exec', leaseId, '--', 'echo', 'still here']);
    expect(exec.code, exec.stderr).toBe(0);
    expect(exec.stdout).toBe('still here\n');
  }, 150_000);

  it('stops everything and exits non-zero, naming java, when DynamoDB Local dies', async () => {
    if (!runtime || runtime.child.exitCode !== null) runtime = await startRuntime(dataDir);
    const javaPid = runtime.info.javaPid;
    expect(javaPid).toBeGreaterThan(0);
    process.kill(javaPid as number, 'SIGKILL');
    const result = await runtime.exited;
    expect(result.code).toBe(1);
    expect(runtime.output()).toMatch(
      /DynamoDB Local \(java pid \d+\) exited unexpectedly \(killed by SIGKILL/,
    );
    expect(isAlive(runtime.info.pid)).toBe(false);
    expect(existsSync(join(dataDir, 'local.json'))).toBe(false);
    await expectNoJava(dataDir);
  }, 90_000);
});
