/**
 * `kill -9` of the local runtime in the middle of allocating 10 leases, then a restart: the
 * runtime knows its queue is new and re-drives everything in flight as soon as it is up, so
 * all 10 are served within 20 s of "ready" (issue 16, point 6), not after the stranded-state
 * bound (60 s locally).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { LocalInfo } from '../../lib/local/data-dir.ts';
import { waitFor } from '../support/env.ts';
import {
  drydock,
  expectNoJava,
  type RuntimeProcess,
  startRuntime,
  tearDownRuntime,
  tempDataDir,
} from './support.ts';

interface LeaseJson {
  id: string;
  status: string;
}

async function api<T>(info: LocalInfo, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${info.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${info.token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (!res.ok) throw new Error(`${method} ${path} -> ${res.status}: ${await res.text()}`);
  return (await res.json()) as T;
}

describe('local runtime restart mid-allocation', () => {
  const dataDir = tempDataDir('redrive');
  let runtime: RuntimeProcess | undefined;

  afterAll(() => tearDownRuntime(runtime, dataDir), 60_000);

  it('serves all 10 leases within 20 s of ready after SIGKILL mid-allocation', async () => {
    runtime = await startRuntime(dataDir);
    const file = join(dataDir, 'boot10.json');
    writeFileSync(
      file,
      JSON.stringify({
        id: 'boot10',
        type: 'synthetic',
        resourceType: 'host',
        attributes: { platform: 'synthetic' },
        limits: { maxResources: 10, leasesPerResource: 1 },
        config: { activation: { delaySeconds: 4 } },
      }),
    );
    const created = await drydock(dataDir, ['blueprint', 'create', '--file', file]);
    expect(created.code, created.stderr).toBe(0);

    const first = runtime.info;
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const { lease } = await api<{ lease: LeaseJson }>(first, 'POST', '/v1/leases', {
        type: 'host',
        blueprintIds: ['boot10'],
        ttlSeconds: 600,
      });
      ids.push(lease.id);
    }
    const statuses = async (info: LocalInfo) =>
      Promise.all(
        ids.map(
          async (id) =>
            (await api<{ lease: LeaseJson }>(info, 'GET', `/v1/leases/${id}`)).lease.status,
        ),
      );
    // Mid-allocation: some hosts are booting, nothing is active yet.
    const before = await waitFor(
      async () => {
        const now = await statuses(first);
        return now.includes('acquired') ? now : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 100, message: 'a lease acquired on a booting host' },
    );
    expect(before).not.toContain('active');

    await runtime.killGroup();
    await expectNoJava(dataDir);
    runtime = await startRuntime(dataDir);
    const ready = performance.now();
    const info = runtime.info;
    await waitFor(async () => (await statuses(info)).every((s) => s === 'active'), {
      timeoutMs: 20_000,
      intervalMs: 250,
      message: 'all 10 leases active within 20 s of ready',
    });
    expect(performance.now() - ready).toBeLessThan(20_000);
    expect(runtime.output()).toMatch(/re-drove \d+ leases, \d+ resources/);
  }, 180_000);
});
