/**
 * Working copies end to end (issue 11, first acceptance point): the local runtime as a child
 * process with its default blueprints (`local`, `local-wc`: nothing to set up), the CLI as child
 * processes, real git against a bare repository in a temp dir.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/env.ts';
import { makeRepo } from '../support/git-repos.ts';
import {
  drydock,
  type RuntimeProcess,
  startRuntime,
  tearDownRuntime,
  tempDataDir,
} from './support.ts';

describe('drydock lease --type working-copy', () => {
  const dataDir = tempDataDir('working-copy');
  let runtime: RuntimeProcess | undefined;

  beforeAll(async () => {
    runtime = await startRuntime(dataDir, ['--sweep-interval', '2']);
  }, 120_000);

  afterAll(() => tearDownRuntime(runtime, dataDir), 60_000);

  const listed = async () =>
    JSON.parse((await drydock(dataDir, ['leases', '--all', '--json'])).stdout) as Array<{
      id: string;
      status: string;
      resourceId?: string;
      heldBy?: string;
      type: string;
    }>;

  it('prints the head of main; a lease for another commit reuses the clone (a fetch, no clone)', async () => {
    const repo = makeRepo();
    const first = repo.commit('first', { 'a.txt': 'one\n' });
    const head = repo.commit('second', { 'a.txt': 'two\n' });
    repo.push('main');

    const run = await drydock(dataDir, [
      'lease',
      '--type',
      'working-copy',
      '--repo',
      `${repo.url}@main`,
      '--',
      'git',
      'log',
      '-1',
      '--format=%H',
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe(`${head}\n`);
    const leaseId = /requested (lease-[a-z0-9]+)/.exec(run.stderr)?.[1] as string;
    // The git steps are in the lease's log, with their durations.
    const logs = await drydock(dataDir, ['logs', leaseId]);
    expect(logs.stdout).toMatch(/git fetch \S+ main: done in \d+\.\ds/);
    expect(logs.stdout).toMatch(/git checkout main \([0-9a-f]{12}\): done in \d+\.\ds/);

    // The clone is cleaned after the lease (git reset, git clean) before the copy is free again:
    // a lease asked for meanwhile would get a copy of its own, on another host.
    await waitFor(
      async () => (await listed()).find((l) => l.id === leaseId)?.status === 'destroyed',
      { timeoutMs: 30_000, intervalMs: 250, message: `lease ${leaseId} cleaned up and destroyed` },
    );
    const again = await drydock(dataDir, [
      'lease',
      '--type',
      'working-copy',
      '--repo',
      `${repo.url}@${first}`,
      '--',
      'git',
      'log',
      '-1',
      '--format=%H',
    ]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toBe(`${first}\n`);
    const againId = /requested (lease-[a-z0-9]+)/.exec(again.stderr)?.[1] as string;
    const againLogs = await drydock(dataDir, ['logs', againId]);
    expect(againLogs.stdout).toMatch(/git fetch \S+ [0-9a-f]{40}: done in/);
    expect(againLogs.stdout).not.toMatch(/git init|git clone/);

    // Both on the same working copy, which set its clone up once.
    const shown = await listed();
    const copyOf = (id: string) => shown.find((l) => l.id === id)?.resourceId;
    expect(copyOf(againId)).toBe(copyOf(leaseId));
    const copyLogs = await drydock(dataDir, ['logs', copyOf(leaseId) as string]);
    expect(copyLogs.stdout.match(/git init/g)?.length).toBe(1);
    // Its host lease is listed with the working copy as its holder.
    const hostLease = shown.find((l) => l.heldBy === copyOf(leaseId));
    expect(hostLease?.type).toBe('host');
    const table = await drydock(dataDir, ['leases', '--all']);
    expect(table.stdout).toContain(`heldBy: ${copyOf(leaseId)}`);
  }, 120_000);
});
