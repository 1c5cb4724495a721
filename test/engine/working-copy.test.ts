/**
 * Working copies on the real engine and store (DynamoDB Local), with real git against bare
 * repositories in a temp dir and local-host hosts running real processes: one test per
 * acceptance point of issue 11 that the engine can show (the CLI's is in test/e2e).
 */

import { rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { groupRunning } from '../../lambdas/blueprints/local-host/process-group.ts';
import type { Engine } from '../../lambdas/core/engine.ts';
import type { Lease, Resource } from '../../lambdas/core/model.ts';
import { breakResource } from '../../lambdas/core/resource-end.ts';
import {
  createBlueprint,
  readLogs,
  releaseLease,
  requestLease,
  runSweep,
} from '../../lambdas/core/use-cases.ts';
import { eventually } from '../blueprints/support.ts';
import { runCommandToEnd } from '../support/commands.ts';
import { makeRepo, type TestRepo } from '../support/git-repos.ts';
import type { ManualQueue } from '../support/manual-queue.ts';
import { leaseNow, testSystem } from '../support/system.ts';

const ci = { principal: 'ci' };

async function workingCopySystem(
  options: {
    hosts?: number;
    copies?: number;
    timeouts?: Record<string, number>;
    copyIdleTtlSeconds?: number;
  } = {},
) {
  const system = await testSystem();
  await createBlueprint(system.engine, {
    id: 'local',
    type: 'local-host',
    resourceType: 'host',
    // Idle TTLs longer than any test: the queue's virtual clock jumps over long delays.
    limits: {
      maxResources: options.hosts ?? 1,
      leasesPerResource: 1,
      idleGraceSeconds: 0,
      idleTtlSeconds: 86_400,
    },
  });
  await createBlueprint(system.engine, {
    id: 'wc',
    type: 'working-copy',
    resourceType: 'working-copy',
    limits: {
      maxResources: options.copies ?? options.hosts ?? 1,
      leasesPerResource: 1,
      idleGraceSeconds: 0,
      idleTtlSeconds: options.copyIdleTtlSeconds ?? 86_400,
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
async function drain(
  queue: ManualQueue,
  engine: Engine,
  options: { deadlineMs?: number; until?: () => Promise<boolean> } = {},
): Promise<void> {
  const deadlineMs = options.deadlineMs ?? 60_000;
  const deadline = Date.now() + deadlineMs;
  await queue.drain(engine, {
    maxSteps: 100_000,
    until: async () => {
      if (Date.now() > deadline) throw new Error(`queue still busy after ${deadlineMs}ms`);
      if (options.until && (await options.until())) return true;
      await new Promise((resolve) => setTimeout(resolve, 5));
      return false;
    },
  });
}

function wcLease(
  engine: Engine,
  repo: TestRepo,
  ref: string | undefined,
  extra: { merge?: string[] } = {},
) {
  return requestLease(engine, {
    type: 'working-copy',
    owner: ci.principal,
    workingCopy: { repositories: [{ url: repo.url, ...(ref ? { ref } : {}), ...extra }] },
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

describe('working copies', { timeout: 120_000 }, () => {
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
    // Commands run in the first clone; a cwd is relative to the working copy and stays in it.
    const pwd = async (cwd?: string) =>
      (await runCommandToEnd(engine, lease.id, { argv: ['pwd'], ...(cwd ? { cwd } : {}) }, ci))
        .stdout;
    expect(await pwd()).toMatch(/\/working-copies\/[0-9a-f]{16}\/r\n$/);
    expect(await pwd('.')).toMatch(/\/working-copies\/[0-9a-f]{16}\n$/);
    await expect(pwd('../..')).rejects.toThrow(/cwd '\.\.\/\.\.' leaves the working copy/);
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

    // No ref: the remote's HEAD (its main).
    const third = await wcLease(engine, repo, undefined);
    await drain(queue, engine);
    expect(await headOf(engine, await leaseNow(store, third.id))).toBe(second);
  });

  it('serves 10 leases at once with 2 hosts: each checkout is exactly its commit, and clean', async () => {
    const repo = makeRepo();
    const commits = Array.from({ length: 10 }, (_, i) => {
      const sha = repo.commit(`commit ${i}`, { 'a.txt': `${i}\n`, [`f${i}.txt`]: 'x\n' });
      repo.push('main');
      return sha;
    });
    const { engine, store, queue } = await workingCopySystem({ hosts: 2 });
    const leases = await Promise.all(commits.map((sha) => wcLease(engine, repo, sha)));

    const served = new Set<string>();
    const hosts = new Set<string>();
    const activeUnserved = async () =>
      (await Promise.all(leases.map((l) => leaseNow(store, l.id)))).filter(
        (l) => l.status === 'active' && !served.has(l.id),
      );
    while (served.size < leases.length) {
      // Waiting leases keep the queue busy: stop as soon as one is ready to be checked.
      await drain(queue, engine, { until: async () => (await activeUnserved()).length > 0 });
      const active = await activeUnserved();
      expect(active.length).toBeGreaterThan(0);
      expect(active.length).toBeLessThanOrEqual(2);
      for (const lease of active) {
        const i = leases.findIndex((l) => l.id === lease.id);
        const check = await runCommandToEnd(
          engine,
          lease.id,
          {
            // Its commit, nothing untracked or ignored, nothing changed; then leave dirt behind.
            script:
              'git rev-parse HEAD; git status --porcelain --ignored; ls leftover-* 2>/dev/null; ' +
              'echo dirt > leftover-$RANDOM; echo changed >> a.txt; mkdir -p build && touch build/x',
          },
          ci,
        );
        expect(check.exitCode).toBe(0);
        expect(check.stdout.trim()).toBe(commits[i]);
        const copy = await store.getResource(lease.resourceId as string);
        hosts.add(copy?.data.hostResource as string);
        served.add(lease.id);
        await releaseLease(engine, lease.id, ci);
      }
    }
    await drain(queue, engine);
    expect(hosts.size).toBeLessThanOrEqual(2);
    const allHosts = (
      await Promise.all(
        (['pending', 'active', 'released', 'broken', 'destroyed'] as const).map(
          async (status) => (await store.listResourcesByType('host', status)).items,
        ),
      )
    ).flat();
    expect(allHosts.length).toBeLessThanOrEqual(2);
    for (const lease of leases) {
      expect(await leaseNow(store, lease.id)).toMatchObject({
        status: 'destroyed',
        endedAs: 'released',
      });
    }
  });

  it('a fetch from a server that never answers breaks the lease at its timeout, leaving no git running', async () => {
    const sockets: Socket[] = [];
    const server = createServer((socket) => {
      sockets.push(socket); // accept, and say nothing
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const { engine, store, queue } = await workingCopySystem({ timeouts: { fetch: 2 } });
      const url = `git://127.0.0.1:${port}/x`;
      const lease = await requestLease(engine, {
        type: 'working-copy',
        owner: ci.principal,
        workingCopy: { repositories: [{ url, ref: 'main' }] },
      });
      const startedAt = Date.now();
      await drain(queue, engine);
      const broken = await leaseNow(store, lease.id);
      expect(broken.status).toBe('destroyed');
      expect(broken.endedAs).toBe('broken');
      expect(broken.endReason).toContain(`git fetch ${url} main timed out after 2s`);
      expect(Date.now() - startedAt).toBeLessThan(30_000);
      expect(sockets.length).toBeGreaterThan(0);

      // The fetch's whole process group is gone (killed at its timeout, not left hanging).
      const checkout = broken.data?.checkout as Record<string, { handle: { pgid: number } }>;
      const pgid = checkout.fetch0?.handle.pgid as number;
      expect(pgid).toBeGreaterThan(0);
      expect(await eventually(async () => !(await groupRunning(pgid)), { timeoutMs: 10_000 })).toBe(
        true,
      );
    } finally {
      for (const socket of sockets) socket.destroy();
      server.close();
    }
  });

  it('a lease released during its fetch stops the fetch, cleans up, and keeps its slot until then', async () => {
    const sockets: Socket[] = [];
    const server = createServer((socket) => {
      sockets.push(socket);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const { engine, store, queue } = await workingCopySystem({ timeouts: { fetch: 600 } });
      const lease = await requestLease(engine, {
        type: 'working-copy',
        owner: ci.principal,
        workingCopy: { repositories: [{ url: `git://127.0.0.1:${port}/x` }] },
      });
      await drain(queue, engine, {
        until: async () =>
          (await leaseNow(store, lease.id)).stepMessage?.includes('git fetch') ?? false,
      });
      const fetching = await leaseNow(store, lease.id);
      expect(fetching.status).toBe('acquired');
      const checkout = fetching.data?.checkout as Record<string, { handle: { pgid: number } }>;
      const pgid = checkout.fetch0?.handle.pgid as number;
      expect(await groupRunning(pgid)).toBe(true);

      await releaseLease(engine, lease.id, ci);
      const seen = new Set<string>();
      await drain(queue, engine, {
        until: async () => {
          const now = await leaseNow(store, lease.id);
          seen.add(`${now.status}: ${now.stepMessage ?? ''}`);
          return false;
        },
      });
      // It stayed released (attached, its slot held) while the fetch was being stopped.
      expect([...seen].some((s) => s.startsWith('released: cleaning up'))).toBe(true);
      expect(await leaseNow(store, lease.id)).toMatchObject({
        status: 'destroyed',
        endedAs: 'released',
      });
      expect(await groupRunning(pgid)).toBe(false);
      const copy = await store.getResource(fetching.resourceId as string);
      expect(copy).toMatchObject({ status: 'active', leaseCount: 0 });
      expect(copy?.suspectSince).toBeUndefined();
    } finally {
      for (const socket of sockets) socket.destroy();
      server.close();
    }
  });

  it('a conflicting merge breaks the lease naming the files; a missing ref names the ref', async () => {
    const repo = makeRepo();
    repo.commit('base', { 'a.txt': 'base\n', 'b.txt': 'b\n' });
    repo.push('main');
    repo.checkout('staging', { create: true });
    repo.commit('staged change', { 'a.txt': 'staged\n' });
    repo.push('refs/staging/1');
    repo.checkout('main');
    const head = repo.commit('main change', { 'a.txt': 'main\n' });
    repo.push('main');
    repo.checkout('other', { create: true });
    repo.commit('clean change', { 'c.txt': 'c\n' });
    repo.push('refs/staging/2');
    const { engine, store, queue } = await workingCopySystem();

    const conflicting = await wcLease(engine, repo, 'main', { merge: ['refs/staging/1'] });
    await drain(queue, engine);
    const broken = await leaseNow(store, conflicting.id);
    expect(broken.endedAs).toBe('broken');
    expect(broken.endReason).toMatch(/merging refs\/staging\/1 into r conflicts in a\.txt$/);

    const missing = await wcLease(engine, repo, 'no-such-branch');
    await drain(queue, engine);
    const refused = await leaseNow(store, missing.id);
    expect(refused.endedAs).toBe('broken');
    expect(refused.endReason).toContain(`ref 'no-such-branch' was not found in ${repo.url}`);

    // The clone was put back by the health check: a clean merge on the same copy succeeds.
    const merged = await wcLease(engine, repo, 'main', { merge: ['refs/staging/2'] });
    await drain(queue, engine);
    const active = await leaseNow(store, merged.id);
    expect(active.status).toBe('active');
    expect(active.resourceId).toBe(broken.resourceId);
    const state = await runCommandToEnd(
      engine,
      merged.id,
      { script: 'git rev-parse HEAD^1; cat a.txt c.txt; git status --porcelain' },
      ci,
    );
    expect(state.stdout).toBe(`${head}\nmain\nc\n`);
  });

  it('a clone whose .git/objects is removed is found at release: the copy is rebuilt, the next lease works', async () => {
    const repo = makeRepo();
    const head = repo.commit('first', { 'a.txt': 'one\n' });
    repo.push('main');
    const { engine, store, queue } = await workingCopySystem();
    const lease = await wcLease(engine, repo, 'main');
    await drain(queue, engine);
    const active = await leaseNow(store, lease.id);
    expect(active.status).toBe('active');
    const damage = await runCommandToEnd(
      engine,
      lease.id,
      { argv: ['rm', '-rf', '.git/objects'] },
      ci,
    );
    expect(damage.exitCode).toBe(0);
    await releaseLease(engine, lease.id, ci);
    await drain(queue, engine);

    const copy = await store.getResource(active.resourceId as string);
    expect(copy?.status).toBe('destroyed');
    expect(copy?.endReason).toMatch(/failed its health check: git \S+/);
    expect(copy?.endReason).toContain('cleanup after lease');
    const hostLease = await leaseNow(store, copy?.data.hostLease as string);
    expect(hostLease.status).toBe('destroyed');

    const next = await wcLease(engine, repo, 'main');
    await drain(queue, engine);
    const nextActive = await leaseNow(store, next.id);
    expect(nextActive.status).toBe('active');
    expect(nextActive.resourceId).not.toBe(copy?.id);
    expect(await headOf(engine, nextActive)).toBe(head);
  });

  it('a clone damaged while no lease held it breaks the copy, not the next lease: it is served by a rebuilt one', async () => {
    const repo = makeRepo();
    const head = repo.commit('first', { 'a.txt': 'one\n' });
    repo.push('main');
    const { engine, store, queue, dataDir } = await workingCopySystem();
    const lease = await wcLease(engine, repo, 'main');
    await drain(queue, engine);
    const active = await leaseNow(store, lease.id);
    await releaseLease(engine, lease.id, ci);
    await drain(queue, engine);
    const copy = await store.getResource(active.resourceId as string);
    expect(copy?.status).toBe('active');

    // Behind Drydock's back, between leases.
    const clone = join(
      dataDir,
      'local-host',
      'local',
      copy?.data.hostResource as string,
      'working-copies',
      copy?.data.setKey as string,
      'r',
    );
    rmSync(join(clone, '.git', 'objects'), { recursive: true, force: true });

    const next = await wcLease(engine, repo, 'main');
    await drain(queue, engine);
    const served = await leaseNow(store, next.id);
    expect(served.status).toBe('active');
    expect(served.requeues).toBe(1);
    expect(served.resourceId).not.toBe(copy?.id);
    expect(await headOf(engine, served)).toBe(head);
    const broken = await store.getResource(copy?.id as string);
    expect(broken?.status).toBe('destroyed');
    expect(broken?.endReason).toMatch(
      new RegExp(`^lease ${next.id} found it unusable: the clone in r is damaged`),
    );
  });

  it('a working copy serves only leases of its own repository set; an idle other one makes room', async () => {
    const app = makeRepo('app');
    const appHead = app.commit('app', { 'app.txt': 'app\n' });
    app.push('main');
    const lib = makeRepo('lib');
    const libHead = lib.commit('lib', { 'lib.txt': 'lib\n' });
    lib.push('main');
    const { engine, store, queue } = await workingCopySystem();
    const first = await wcLease(engine, app, 'main');
    await drain(queue, engine);
    const appCopy = (await leaseNow(store, first.id)).resourceId as string;
    await releaseLease(engine, first.id, ci);
    await drain(queue, engine);

    const other = await wcLease(engine, lib, 'main');
    await drain(queue, engine);
    const served = await leaseNow(store, other.id);
    expect(served.status).toBe('active');
    expect(served.resourceId).not.toBe(appCopy);
    expect(await headOf(engine, served)).toBe(libHead);
    // The app copy was reclaimed to make room (one copy, one host), its host lease given back.
    expect((await store.getResource(appCopy))?.endReason).toMatch(/reclaim|idle/);
    await releaseLease(engine, other.id, ci);
    await drain(queue, engine);

    const again = await wcLease(engine, app, 'main');
    await drain(queue, engine);
    expect(await headOf(engine, await leaseNow(store, again.id))).toBe(appHead);
  });

  it('an idle working copy is reclaimed like any resource and gives its host lease back', async () => {
    const repo = makeRepo();
    repo.commit('first', { 'a.txt': 'one\n' });
    repo.push('main');
    const { engine, store, queue, clock } = await workingCopySystem({ copyIdleTtlSeconds: 600 });
    const lease = await wcLease(engine, repo, 'main');
    await drain(queue, engine);
    const { resourceId } = await leaseNow(store, lease.id);
    await releaseLease(engine, lease.id, ci);
    await drain(queue, engine);
    const copy = await store.getResource(resourceId as string);
    expect(copy).toMatchObject({ status: 'active', leaseCount: 0 });

    clock.advance(601_000);
    await runSweep(engine);
    await drain(queue, engine);
    const reclaimed = await store.getResource(copy?.id as string);
    expect(reclaimed?.status).toBe('destroyed');
    expect(reclaimed?.endReason).toMatch(/^idle for \d+s \(idle TTL 600s\)$/);
    const hostLease = await leaseNow(store, copy?.data.hostLease as string);
    expect(hostLease).toMatchObject({
      status: 'destroyed',
      endReason: `released by drydock:resource/${copy?.id}`,
    });
    // The host itself is now idle, free for a plain host lease.
    const host = await store.getResource(copy?.data.hostResource as string);
    expect(host).toMatchObject({ status: 'active', leaseCount: 0 });
    const plain = await requestLease(engine, { type: 'host', owner: ci.principal });
    await drain(queue, engine);
    expect(await leaseNow(store, plain.id)).toMatchObject({
      status: 'active',
      resourceId: host?.id,
    });
  });

  it("a host that breaks breaks its working copy and the active lease, with the host's reason", async () => {
    const repo = makeRepo();
    repo.commit('first', { 'a.txt': 'one\n' });
    repo.push('main');
    const { engine, store, queue } = await workingCopySystem();
    const lease = await wcLease(engine, repo, 'main');
    await drain(queue, engine);
    const active = await leaseNow(store, lease.id);
    const copy = await store.getResource(active.resourceId as string);
    const host = await store.getResource(copy?.data.hostResource as string);
    expect(host?.status).toBe('active');

    // The allocator never counts a host held by a working copy as idle: a plain host lease waits.
    const plain = await requestLease(engine, { type: 'host', owner: ci.principal });
    await drain(queue, engine, {
      until: async () => (await leaseNow(store, plain.id)).waitReason !== undefined,
    });
    expect((await leaseNow(store, plain.id)).status).toBe('pending');
    expect((await store.getResource(host?.id as string))?.status).toBe('active');
    await releaseLease(engine, plain.id, ci);

    await breakResource(engine, host as Resource, 'its disk failed');
    await drain(queue, engine);
    const ended = await leaseNow(store, lease.id);
    expect(ended.endedAs).toBe('broken');
    expect(ended.endReason).toContain('its disk failed');
    expect(ended.endReason?.split('its disk failed')).toHaveLength(2); // named once
    expect(ended.endReason).toContain(`working-copy ${copy?.id} broke`);
    const brokenCopy = await store.getResource(copy?.id as string);
    expect(brokenCopy?.status).toBe('destroyed');
    expect(brokenCopy?.endReason).toMatch(/^host lease lease-\S+ broke: .*its disk failed$/);
  });
});
