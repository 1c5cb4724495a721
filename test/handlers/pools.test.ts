/**
 * GET /v1/pools: the pool-stats contract (lambdas/core/pool-stats.ts) through the api handler,
 * on real leases and resources (DynamoDB Local, the worker fed from the queue).
 */
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { poolStats } from '../../lambdas/core/use-cases.ts';
import { ADMIN, CI, type HandlerEnv, handlerEnv, OTHER } from './support.ts';

vi.hoisted(() => {
  if (!process.env.DRYDOCK_TEST_LOGS) process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
});

let env: HandlerEnv;

beforeAll(async () => {
  env = await handlerEnv();
  for (const [id, maxResources] of [
    ['beta', 2],
    ['alpha', 1],
  ] as const) {
    const created = await env.api({
      method: 'POST',
      path: '/v1/blueprints',
      principal: ADMIN,
      body: { id, type: 'synthetic', limits: { maxResources, idleGraceSeconds: 0 } },
    });
    expect(created.status).toBe(201);
  }
});

async function requestLease(blueprintIds: string[]): Promise<string> {
  const created = await env.api({
    method: 'POST',
    path: '/v1/leases',
    body: { type: 'host', blueprintIds },
  });
  expect(created.status).toBe(201);
  return created.body.lease.id as string;
}

async function leaseWhen(id: string, holds: (lease: Record<string, unknown>) => boolean) {
  return env.driveWorker(
    async () => {
      const { lease } = (await env.api({ method: 'GET', path: `/v1/leases/${id}` })).body;
      return holds(lease) ? lease : undefined;
    },
    { message: `lease ${id}` },
  );
}

describe('GET /v1/pools', () => {
  it('counts each pool: live/leased/idle/max, and the leases waiting for it with the oldest wait', async () => {
    // alpha (max 1): one lease active on its only host, a second one waiting for it.
    const holder = await requestLease(['alpha']);
    await leaseWhen(holder, (l) => l.status === 'active');
    const waiter = await requestLease(['alpha']);
    const waiting = await leaseWhen(waiter, (l) => typeof l.waitReason === 'string');
    // beta (max 2): one host left idle by a released lease.
    const once = await requestLease(['beta']);
    await leaseWhen(once, (l) => l.status === 'active');
    expect((await env.api({ method: 'POST', path: `/v1/leases/${once}/release` })).status).toBe(
      200,
    );
    await leaseWhen(once, (l) => l.status === 'destroyed');

    // Any authenticated caller may read it (counts only): not an admin, not the holder.
    const response = await env.api({ method: 'GET', path: '/v1/pools', principal: OTHER });
    expect(response.status).toBe(200);
    const text = JSON.stringify(response.body);
    for (const id of [holder, waiter, once, CI]) expect(text).not.toContain(id);
    const [alpha, beta] = response.body.pools;
    expect(response.body.pools).toHaveLength(2);
    expect(alpha).toMatchObject({
      blueprintId: 'alpha',
      type: 'synthetic',
      resourceType: 'host',
      state: 'enabled',
      health: { failureCount: 0 },
      live: 1,
      settingUp: 0,
      active: 1,
      leased: 1,
      idle: 0,
      max: 1,
      waiting: 1,
    });
    expect(alpha.oldestWaitSeconds).toBeGreaterThanOrEqual(0);
    expect(beta).toEqual({
      blueprintId: 'beta',
      type: 'synthetic',
      resourceType: 'host',
      state: 'enabled',
      health: { failureCount: 0 },
      live: 1,
      settingUp: 0,
      active: 1,
      leased: 0,
      idle: 1,
      max: 2,
      waiting: 0,
      oldestWaitSeconds: null,
    });

    // The oldest wait is measured from the waiting lease's request.
    const at = Date.parse(waiting.requestedAt as string) + 90_500;
    const [alphaLater] = await poolStats(env.engine, at);
    expect(alphaLater?.oldestWaitSeconds).toBe(90);

    // A lease that names no blueprint waits for every pool of its type (the worker is not
    // fed here, so it stays pending).
    const anyPool = await env.api({ method: 'POST', path: '/v1/leases', body: { type: 'host' } });
    expect(anyPool.status).toBe(201);
    const later = (await env.api({ method: 'GET', path: '/v1/pools' })).body.pools;
    expect(later.map((p: { waiting: number }) => p.waiting)).toEqual([2, 1]);
  });

  it('needs a caller identity', async () => {
    expect((await env.api({ method: 'GET', path: '/v1/pools', principal: null })).status).toBe(401);
  });
});
