/**
 * waitTimeoutSeconds through the API, in real time (issue 16, point 5): a CI system's lease on
 * a blueprint whose every allocation fails breaks within 15 s of asking for 5, with the reason
 * it waited for, although its backoff alone would wait far longer between attempts.
 */
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { ADMIN, type HandlerEnv, handlerEnv } from './support.ts';

vi.hoisted(() => {
  if (!process.env.DRYDOCK_TEST_LOGS) process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
});

let env: HandlerEnv;

beforeAll(async () => {
  env = await handlerEnv({ settings: { backoffBaseSeconds: 8, backoffCapSeconds: 30 } });
});

describe('POST /v1/leases with waitTimeoutSeconds', () => {
  it('breaks a lease on an always-failing blueprint within 15 s, saying what it waited for', async () => {
    const bp = await env.api({
      method: 'POST',
      path: '/v1/blueprints',
      principal: ADMIN,
      body: {
        id: 'failing',
        type: 'synthetic',
        resourceType: 'host',
        limits: { maxResources: 1 },
        config: { allocation: { failTimes: 1000, failMessage: 'InsufficientInstanceCapacity' } },
      },
    });
    expect(bp.status).toBe(201);
    const started = performance.now();
    const created = await env.api({
      method: 'POST',
      path: '/v1/leases',
      body: { type: 'host', blueprintIds: ['failing'], waitTimeoutSeconds: 5 },
    });
    expect(created.status).toBe(201);
    expect(created.body.lease.waitTimeoutSeconds).toBe(5);
    const id = created.body.lease.id as string;

    const ended = await env.driveWorker(
      async () => {
        const { lease } = (await env.api({ method: 'GET', path: `/v1/leases/${id}` })).body;
        return lease.endedAs === 'broken' ? lease : undefined;
      },
      { timeoutMs: 15_000, message: `lease ${id} broken by its wait deadline` },
    );
    expect(performance.now() - started).toBeLessThan(15_000);
    expect(ended.endReason).toMatch(
      /^not active after 5s: blueprint 'failing' failed to allocate a host \(.*InsufficientInstanceCapacity.*\); will retry$/,
    );
  });
});
