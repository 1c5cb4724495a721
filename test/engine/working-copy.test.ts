/**
 * Working copies on the real engine and store (DynamoDB Local), with real git against bare
 * repositories in a temp dir and local-host hosts running real processes: one test per
 * acceptance point of issue 11 that the engine can show (the CLI's is in test/e2e).
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Engine } from '../../lambdas/core/engine.ts';
import type { Lease } from '../../lambdas/core/model.ts';
import {
  createBlueprint,
  readLogs,
  releaseLease,
  requestLease,
} from '../../lambdas/core/use-cases.ts';
import { runCommandToEnd } from '../support/commands.ts';
import { makeRepo, type TestRepo } from '../support/git-repos.ts';
import type { ManualQueue } from '../support/manual-queue.ts';
import { leaseNow, testSystem } from '../support/system.ts';

const ci = { principal: 'ci' };

async function workingCopySystem(
  options: { hosts?: number; copies?: number; timeouts?: Record<string, number> } = {},
) {
  const system = await testSystem();
  await createBlueprint(system.engine, {
    id: 'local',
    type: 'local-host',
    resourceType: 'host',
    limits: { maxResources: options.hosts ?? 1, leasesPerResource: 1, idleGraceSeconds: 0 },
  });
  await createBlueprint(system.engine, {
    id: 'wc',
    type: 'working-copy',
    resourceType: 'working-copy',
    limits: {
      maxResources: options.copies ?? options.hosts ?? 1,
      leasesPerResource: 1,
      idleGraceSeconds: 0,
    },
    config: {
      host: { blueprintIds: ['local'] },
      ...(options.timeouts ? { timeouts: options.timeouts } : {}),
    },
  });
  return system;
}

/**
 * Deliver messages until the queue is empty. Git runs as real processes while the queue's clock
 * is virtual: each delivery first gives them a few milliseconds of real time, bounded overall.
 */
async function drain(queue: ManualQueue, engine: Engine, deadlineMs = 60_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  await queue.drain(engine, {
    maxSteps: 100_000,
    until: async () => {
      if (Date.now() > deadline) throw new Error(`queue still busy after ${deadlineMs}ms`);
      await new Promise((resolve) => setTimeout(resolve, 5));
      return false;
    },
  });
}

function wcLease(engine: Engine, repo: TestRepo, ref: string, extra: { merge?: string[] } = {}) {
  return requestLease(engine, {
    type: 'working-copy',
    owner: ci.principal,
    workingCopy: { repositories: [{ url: repo.url, ref, ...extra }] },
  });
}

async function logMessages(engine: Engine, id: string): Promise<string[]> {
  return (await readLogs(engine, id)).map((e) => e.message);
}

async function headOf(engine: Engine, lease: Lease): Promise<string> {
  const result = await runCommandToEnd(
    engine,
    lease.id,
    { argv: ['git', 'rev-parse', 'HEAD'] },
    ci,
  );
  expect(result.exitCode).toBe(0);
  return result.stdout.trim();
}

describe('working copies', () => {
  it('checks out the ref a lease names; a later lease reuses the clone and fetches', async () => {
    const repo = makeRepo();
    const first = repo.commit('first', { 'a.txt': 'one\n' });
    repo.push('main');
    const { engine, store, queue } = await workingCopySystem();

    const lease = await wcLease(engine, repo, 'main');
    await drain(queue, engine);
    const active = await leaseNow(store, lease.id);
    expect(active.status).toBe('active');
    expect(await headOf(engine, active)).toBe(first);
    const log = await logMessages(engine, lease.id);
    expect(log.some((m) => /^git fetch .* main: done in \d+\.\ds$/.test(m))).toBe(true);
    expect(log.some((m) => /^git checkout main \([0-9a-f]{12}\): done in/.test(m))).toBe(true);
    const copy = await store.getResource(active.resourceId as string);
    const setupLog = await logMessages(engine, copy?.id as string);
    expect(setupLog.some((m) => m.includes('git init'))).toBe(true);

    // The host lease is listed with the working copy as its holder.
    const hostLease = await leaseNow(store, copy?.data.hostLease as string);
    expect(hostLease.owner).toBe(`drydock:resource/${copy?.id}`);

    await releaseLease(engine, lease.id, ci);
    await drain(queue, engine);
    expect((await leaseNow(store, lease.id)).status).toBe('destroyed');

    // Another commit: same working copy, a fetch and no new clone.
    const second = repo.commit('second', { 'a.txt': 'two\n' });
    repo.push('main');
    const next = await wcLease(engine, repo, first);
    await drain(queue, engine);
    const nextActive = await leaseNow(store, next.id);
    expect(nextActive.status).toBe('active');
    expect(nextActive.resourceId).toBe(copy?.id);
    expect(await headOf(engine, nextActive)).toBe(first);
    const nextLog = await logMessages(engine, next.id);
    expect(nextLog.some((m) => m.startsWith('git fetch '))).toBe(true);
    expect(nextLog.some((m) => /git init|git clone/.test(m))).toBe(false);
    const setupAgain = (await logMessages(engine, copy?.id as string)).filter((m) =>
      m.includes('git init'),
    );
    expect(setupAgain).toHaveLength(setupLog.filter((m) => m.includes('git init')).length);
    await releaseLease(engine, next.id, ci);
    await drain(queue, engine);

    const third = await wcLease(engine, repo, 'main');
    await drain(queue, engine);
    expect(await headOf(engine, await leaseNow(store, third.id))).toBe(second);
  });
});
