/**
 * The lease API end to end through the real handlers: API Gateway REST proxy events into the
 * api handler, the worker fed with what really sits on the queue, DynamoDB Local underneath.
 * Every response is also checked against openapi.yaml (support.ts).
 */
import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { makeApiHandler } from '../../lambdas/handlers/api.ts';
import {
  ADMIN,
  ADMIN_ROLE,
  CI,
  callApi,
  type HandlerEnv,
  handlerEngine,
  handlerEnv,
  OTHER,
} from './support.ts';

vi.hoisted(() => {
  if (!process.env.DRYDOCK_TEST_LOGS) process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
});

const pool = {
  id: 'pool',
  type: 'synthetic',
  resourceType: 'host',
  attributes: { platform: 'linux' },
  limits: { maxResources: 3, leasesPerResource: 1, idleGraceSeconds: 0 },
  config: { commands: [{ match: '^make test$', exitCode: 2, stdout: 'FAIL\n', stderr: 'boom\n' }] },
};

let env: HandlerEnv;

async function leaseOf(id: string, principal = CI) {
  return (await env.api({ method: 'GET', path: `/v1/leases/${id}`, principal })).body.lease;
}

async function activeLease(principal = CI): Promise<{ id: string; resourceId: string }> {
  const created = await env.api({
    method: 'POST',
    path: '/v1/leases',
    principal,
    body: { type: 'host', attributes: { platform: 'linux' } },
  });
  expect(created.status).toBe(201);
  const id = created.body.lease.id as string;
  return env.driveWorker(
    async () => {
      const lease = await leaseOf(id, principal);
      return lease.status === 'active' ? lease : undefined;
    },
    { message: `lease ${id} active` },
  );
}

beforeAll(async () => {
  env = await handlerEnv();
});

describe('blueprints', () => {
  it('an admin creates one (201, Location); everyone can read it', async () => {
    const created = await env.api({
      method: 'POST',
      path: '/v1/blueprints',
      principal: ADMIN,
      body: pool,
    });
    expect(created.status).toBe(201);
    expect(created.headers.location).toBe('/v1/blueprints/pool');
    expect(created.body.blueprint).toMatchObject({ id: 'pool', state: 'enabled', version: 1 });

    const list = await env.api({ method: 'GET', path: '/v1/blueprints' });
    expect(list.status).toBe(200);
    expect(list.body.items.map((b: { id: string }) => b.id)).toEqual(['pool']);
    const one = await env.api({ method: 'GET', path: '/v1/blueprints/pool' });
    expect(one.body.blueprint.limits.maxResources).toBe(3);

    const again = await env.api({
      method: 'POST',
      path: '/v1/blueprints',
      principal: ADMIN,
      body: pool,
    });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('conflict');
  });

  it('a non-admin may not create or change one: 403, whatever the body', async () => {
    for (const body of [{ ...pool, id: 'mine' }, '{not json']) {
      const refused = await env.api({
        method: 'POST',
        path: '/v1/blueprints',
        principal: CI,
        body,
      });
      expect(refused.status).toBe(403);
      expect(refused.body.error).toEqual({
        code: 'forbidden',
        message: expect.stringContaining(`${CI} is not in ADMIN_PRINCIPALS`),
      });
    }
    const patch = await env.api({
      method: 'PATCH',
      path: '/v1/blueprints/pool',
      principal: CI,
      body: { state: 'disabled' },
    });
    expect(patch.status).toBe(403);
  });

  it('a warm pool (minIdle, schedule) round-trips; more idle than the cap is 400 saying what to do', async () => {
    const limits = {
      maxResources: 4,
      minIdle: 1,
      minIdleSchedule: [{ days: 'mon-fri', from: '08:00', to: '18:00', minIdle: 3 }],
    };
    const created = await env.api({
      method: 'POST',
      path: '/v1/blueprints',
      principal: ADMIN,
      // Disabled: a warm pool here would pre-warm hosts the other tests of this env would see.
      body: { ...pool, id: 'warm-pool', state: 'disabled', limits },
    });
    expect(created.status).toBe(201);
    expect(created.body.blueprint.limits).toMatchObject({
      ...limits,
      minIdleSchedule: [{ ...limits.minIdleSchedule[0], timezone: 'UTC' }],
    });
    const over = await env.api({
      method: 'PATCH',
      path: '/v1/blueprints/warm-pool',
      principal: ADMIN,
      body: { limits: { minIdle: 5 } },
    });
    expect(over.status).toBe(400);
    expect(over.body.error.message).toMatch(
      /minIdle 5 exceeds maxResources 4; lower it or raise maxResources/,
    );
  });

  it('PATCH changes only what it names, honouring If-Match', async () => {
    const stale = await env.api({
      method: 'PATCH',
      path: '/v1/blueprints/pool',
      principal: ADMIN,
      headers: { 'If-Match': '"7"' },
      body: { description: 'linux hosts' },
    });
    expect(stale.status).toBe(409);
    expect(stale.body.error.message).toMatch(/is at version 1, not 7/);

    const changed = await env.api({
      method: 'PATCH',
      path: '/v1/blueprints/pool',
      principal: ADMIN,
      headers: { 'if-match': '1' },
      body: { description: 'linux hosts', limits: { idleTtlSeconds: 3600 } },
    });
    expect(changed.status).toBe(200);
    expect(changed.body.blueprint).toMatchObject({
      version: 2,
      description: 'linux hosts',
      limits: { maxResources: 3, idleTtlSeconds: 3600 },
    });

    const empty = await env.api({
      method: 'PATCH',
      path: '/v1/blueprints/pool',
      principal: ADMIN,
      body: {},
    });
    expect(empty.status).toBe(400);
    expect(empty.body.error.message).toMatch(/give at least one of state/);

    const logs = await env.api({ method: 'GET', path: '/v1/blueprints/pool/logs' });
    expect(logs.body.items.map((e: { type: string }) => e.type)).toEqual([
      'blueprint.created',
      'blueprint.updated',
    ]);
  });
});

describe('leases', () => {
  let leaseId: string;

  it('POST creates a pending lease (201) that the worker makes active', async () => {
    const created = await env.api({
      method: 'POST',
      path: '/v1/leases',
      body: { type: 'host', attributes: { platform: 'linux' }, ttlSeconds: 600 },
      headers: { 'Idempotency-Key': 'build-42-step-1' },
    });
    expect(created.status).toBe(201);
    const lease = created.body.lease;
    expect(lease).toMatchObject({ type: 'host', owner: CI, status: 'pending', ttlSeconds: 600 });
    expect(created.headers.location).toBe(`/v1/leases/${lease.id}`);
    for (const hidden of ['waitSeq', 'slotLocks', 'sweepAt', 'checkedAt']) {
      expect(lease).not.toHaveProperty(hidden);
    }
    leaseId = lease.id;

    const active = await env.driveWorker(async () => {
      const now = await leaseOf(leaseId);
      return now.status === 'active' ? now : undefined;
    });
    expect(active.resourceId).toMatch(/^res-/);
    expect(active.expiresAt).toBeDefined();
  });

  it('a retry with the same Idempotency-Key returns the same lease with 200', async () => {
    const retried = await env.api({
      method: 'POST',
      path: '/v1/leases',
      body: { type: 'host', attributes: { platform: 'linux' }, ttlSeconds: 600 },
      headers: { 'idempotency-key': 'build-42-step-1' },
    });
    expect(retried.status).toBe(200);
    expect(retried.body.lease).toMatchObject({ id: leaseId, status: 'active' });

    // The same key for a different request is a mistake worth saying so.
    const reused = await env.api({
      method: 'POST',
      path: '/v1/leases',
      body: { type: 'host', ttlSeconds: 600 },
      headers: { 'Idempotency-Key': 'build-42-step-1' },
    });
    expect(reused.status).toBe(409);
    expect(reused.body.error.message).toMatch(/already used for a different request/);

    // Keys are per principal: another principal's same key is a new request.
    const theirs = await env.api({
      method: 'POST',
      path: '/v1/leases',
      principal: OTHER,
      body: { type: 'host', attributes: { platform: 'linux' }, ttlSeconds: 600 },
      headers: { 'Idempotency-Key': 'build-42-step-1' },
    });
    expect(theirs.status).toBe(201);
    expect(theirs.body.lease.id).not.toBe(leaseId);
    expect(
      (
        await env.api({
          method: 'POST',
          path: `/v1/leases/${theirs.body.lease.id}/release`,
          principal: OTHER,
        })
      ).status,
    ).toBe(200);

    const badKey = await env.api({
      method: 'POST',
      path: '/v1/leases',
      body: { type: 'host' },
      headers: { 'Idempotency-Key': 'has spaces' },
    });
    expect(badKey.status).toBe(400);
    expect(badKey.body.error.message).toMatch(/Idempotency-Key/);
  });

  it('runs a command: 202 queued, the worker runs it, GET shows the exit code and output', async () => {
    const started = await env.api({
      method: 'POST',
      path: `/v1/leases/${leaseId}/commands`,
      body: { argv: ['echo', 'hello', 'drydock'], timeoutSeconds: 30, env: { TOKEN: 'secret' } },
    });
    expect(started.status).toBe(202);
    const command = started.body.command;
    expect(command).toMatchObject({
      leaseId,
      status: 'queued',
      argv: ['echo', 'hello', 'drydock'],
      timeoutSeconds: 30,
    });
    expect(command).not.toHaveProperty('env');
    expect(started.headers.location).toBe(`/v1/leases/${leaseId}/commands/${command.id}`);

    const finished = await env.driveWorker(async () => {
      const got = await env.api({
        method: 'GET',
        path: `/v1/leases/${leaseId}/commands/${command.id}`,
      });
      return got.body.command.status === 'finished' ? got.body.command : undefined;
    });
    expect(finished.result).toMatchObject({
      exitCode: 0,
      stdout: 'hello drydock\n',
      stderr: '',
      timedOut: false,
    });
    expect(finished.startedAt).toBeDefined();
    expect(finished.finishedAt).toBeDefined();

    // A failing command still "finished": it ran, and its exit code says how it went.
    const failing = await env.api({
      method: 'POST',
      path: `/v1/leases/${leaseId}/commands`,
      body: { script: 'make test' },
    });
    const done = await env.driveWorker(async () => {
      const got = await env.api({
        method: 'GET',
        path: `/v1/leases/${leaseId}/commands/${failing.body.command.id}`,
      });
      return got.body.command.status === 'finished' ? got.body.command : undefined;
    });
    expect(done.result).toMatchObject({ exitCode: 2, stdout: 'FAIL\n', stderr: 'boom\n' });
    expect(done.timeoutSeconds).toBe(300); // the default
  });

  it('refuses bad commands with every problem named', async () => {
    const both = await env.api({
      method: 'POST',
      path: `/v1/leases/${leaseId}/commands`,
      body: { argv: ['true'], script: 'true', timeoutSeconds: 0, shell: 'bash' },
    });
    expect(both.status).toBe(400);
    expect(both.body.error.message).toMatch(/unknown field 'shell'/);
    expect(both.body.error.message).toMatch(/timeoutSeconds/);
  });

  it('logs: the lease tells its story; the cursor reads on from the last event', async () => {
    const logs = await env.api({ method: 'GET', path: `/v1/leases/${leaseId}/logs` });
    expect(logs.status).toBe(200);
    const types = logs.body.items.map((e: { type: string }) => e.type);
    expect(types[0]).toBe('lease.queued');
    expect(types).toEqual(expect.arrayContaining(['lease.activated', 'lease.command']));
    expect(logs.body.cursor).toBe(logs.body.items.at(-1).seq);

    const first = await env.api({ method: 'GET', path: `/v1/leases/${leaseId}/logs?limit=1` });
    expect(first.body.items).toHaveLength(1);
    const rest = await env.api({
      method: 'GET',
      path: `/v1/leases/${leaseId}/logs?after=${encodeURIComponent(first.body.cursor)}`,
    });
    expect(rest.body.items.length).toBe(logs.body.items.length - 1);
    const nothing = await env.api({
      method: 'GET',
      path: `/v1/leases/${leaseId}/logs?after=${encodeURIComponent(logs.body.cursor)}`,
    });
    expect(nothing.body).toEqual({ items: [] });
  });

  it("another principal's lease is 404, as if it did not exist", async () => {
    for (const [method, path] of [
      ['GET', `/v1/leases/${leaseId}`],
      ['GET', `/v1/leases/${leaseId}/logs`],
      ['POST', `/v1/leases/${leaseId}/release`],
      ['POST', `/v1/leases/${leaseId}/commands`],
    ] as const) {
      const response = await env.api({
        method,
        path,
        principal: OTHER,
        ...(path.endsWith('commands') ? { body: { argv: ['id'] } } : {}),
      });
      expect(response.status, `${method} ${path}`).toBe(404);
      expect(response.body.error).toEqual({
        code: 'not_found',
        message: `lease '${leaseId}' does not exist`,
      });
    }
    // An admin can look, but commands run only as the holder.
    expect(
      (await env.api({ method: 'GET', path: `/v1/leases/${leaseId}`, principal: ADMIN })).status,
    ).toBe(200);
    const asAdmin = await env.api({
      method: 'POST',
      path: `/v1/leases/${leaseId}/commands`,
      principal: ADMIN,
      body: { argv: ['id'] },
    });
    expect(asAdmin.status).toBe(403);
  });

  it("lists own leases (admins: everyone's), filtered and paged", async () => {
    const other = await activeLease(OTHER);
    const mine = await env.api({ method: 'GET', path: '/v1/leases' });
    expect(mine.status).toBe(200);
    expect(mine.body.items.map((l: { id: string }) => l.id)).toEqual([leaseId]);
    expect(mine.body.cursor).toBeUndefined();

    const all = await env.api({
      method: 'GET',
      path: '/v1/leases?status=active',
      principal: ADMIN,
    });
    expect(all.body.items.map((l: { id: string }) => l.id).sort()).toEqual(
      [leaseId, other.id].sort(),
    );

    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await env.api({
        method: 'GET',
        path: `/v1/leases?type=host&status=active&limit=1${cursor ? `&cursor=${cursor}` : ''}`,
        principal: ADMIN,
      });
      expect(page.body.items.length).toBeLessThanOrEqual(1);
      seen.push(...page.body.items.map((l: { id: string }) => l.id));
      cursor = page.body.cursor;
    } while (cursor);
    expect(seen.sort()).toEqual([leaseId, other.id].sort());

    const bad = await env.api({ method: 'GET', path: '/v1/leases?status=gone&limit=0&colour=red' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/query\.status/);
    expect(bad.body.error.message).toMatch(/query\.limit/);
    expect(bad.body.error.message).toMatch(/unknown parameter 'colour'/);
    const destroyed = await env.api({ method: 'GET', path: '/v1/leases?status=destroyed' });
    expect(destroyed.status).toBe(400);
    expect(destroyed.body.error.message).toMatch(/needs type=/);

    await env.api({ method: 'POST', path: `/v1/leases/${other.id}/release`, principal: OTHER });
  });

  it('release: 200, torn down in the same write (nothing to clean); idempotent; commands refused after', async () => {
    const released = await env.api({ method: 'POST', path: `/v1/leases/${leaseId}/release` });
    expect(released.status).toBe(200);
    expect(released.body.lease).toMatchObject({
      id: leaseId,
      status: 'destroyed',
      endedAs: 'released',
      endReason: `released by ${CI}`,
    });
    expect((await leaseOf(leaseId)).status).toBe('destroyed');

    const again = await env.api({ method: 'POST', path: `/v1/leases/${leaseId}/release` });
    expect(again.status).toBe(200);
    expect(again.body.lease.status).toBe('destroyed');

    const late = await env.api({
      method: 'POST',
      path: `/v1/leases/${leaseId}/commands`,
      body: { argv: ['true'] },
    });
    expect(late.status).toBe(409);
    expect(late.body.error.message).toMatch(/is destroyed, not active/);

    const history = await env.api({ method: 'GET', path: `/v1/leases?type=host&status=destroyed` });
    expect(history.body.items.map((l: { id: string }) => l.id)).toContain(leaseId);
  });
});

describe('resources (admin)', () => {
  it('lists and reads resources; non-admins get 403', async () => {
    const list = await env.api({ method: 'GET', path: '/v1/resources', principal: ADMIN });
    expect(list.status).toBe(200);
    expect(list.body.items.length).toBeGreaterThan(0);
    const [first] = list.body.items;
    const one = await env.api({
      method: 'GET',
      path: `/v1/resources/${first.id}`,
      principal: ADMIN,
    });
    expect(one.body.resource.id).toBe(first.id);
    const logs = await env.api({
      method: 'GET',
      path: `/v1/resources/${first.id}/logs`,
      principal: ADMIN,
    });
    expect(logs.body.items[0].type).toBe('resource.allocated');

    for (const path of [
      '/v1/resources',
      `/v1/resources/${first.id}`,
      `/v1/resources/${first.id}/logs`,
    ]) {
      expect((await env.api({ method: 'GET', path })).status, path).toBe(403);
    }
    expect(
      (await env.api({ method: 'POST', path: `/v1/resources/${first.id}/release` })).status,
    ).toBe(403);
  });

  it('release: a resource under a lease breaks, and its holder learns who released it', async () => {
    const lease = await activeLease();
    const released = await env.api({
      method: 'POST',
      path: `/v1/resources/${lease.resourceId}/release`,
      principal: ADMIN,
    });
    expect(released.status).toBe(200);
    expect(released.body.resource).toMatchObject({
      status: 'broken',
      endReason: `released by ${ADMIN_ROLE} (session alice)`,
    });
    const ended = await env.driveWorker(async () => {
      const now = await leaseOf(lease.id);
      return now.status === 'destroyed' ? now : undefined;
    });
    expect(ended.endReason).toMatch(
      new RegExp(`broke: released by ${ADMIN_ROLE} \\(session alice\\)`),
    );

    const again = await env.api({
      method: 'POST',
      path: `/v1/resources/${lease.resourceId}/release`,
      principal: ADMIN,
    });
    expect(again.status).toBe(200);
    expect(['broken', 'destroyed']).toContain(again.body.resource.status);
  });

  it('release: an idle resource is reclaimed', async () => {
    const lease = await activeLease();
    await env.api({ method: 'POST', path: `/v1/leases/${lease.id}/release` });
    await env.driveWorker(async () => (await leaseOf(lease.id)).status === 'destroyed');
    const released = await env.api({
      method: 'POST',
      path: `/v1/resources/${lease.resourceId}/release`,
      principal: ADMIN,
    });
    expect(released.body.resource).toMatchObject({
      status: 'released',
      endReason: `released by ${ADMIN_ROLE} (session alice)`,
    });
    const gone = await env.driveWorker(async () => {
      const r = await env.api({
        method: 'GET',
        path: `/v1/resources/${lease.resourceId}`,
        principal: ADMIN,
      });
      return r.body.resource.status === 'destroyed' ? r.body.resource : undefined;
    });
    expect(gone.leaseCount).toBe(0);
  });
});

describe('the HTTP edge', () => {
  it('bad JSON is 400', async () => {
    const response = await env.api({
      method: 'POST',
      path: '/v1/leases',
      body: '{"type": "host",',
    });
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('invalid_request');
    expect(response.body.error.message).toMatch(/^the request body is not valid JSON/);
  });

  it('an unknown field is 400 naming it, with every other problem', async () => {
    const response = await env.api({
      method: 'POST',
      path: '/v1/leases',
      body: { type: 'host', colour: 'blue', size: 'xl', ttlSeconds: -1 },
    });
    expect(response.status).toBe(400);
    expect(response.body.error.message).toMatch(/unknown fields 'colour', 'size'/);
    expect(response.body.error.message).toMatch(/body\.ttlSeconds/);
  });

  it('a working-copy request is validated field by field and comes back normalised', async () => {
    const bad = await env.api({
      method: 'POST',
      path: '/v1/leases',
      body: {
        type: 'working-copy',
        workingCopy: { repositories: [{ url: 'file:///tmp/r.git', ref: '--upload-pack=x' }] },
      },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/body\.workingCopy\.repositories\.0\.ref: a ref is/);
    const good = await env.api({
      method: 'POST',
      path: '/v1/leases',
      body: {
        type: 'working-copy',
        workingCopy: {
          repositories: [{ url: 'file:///tmp/r.git', ref: 'main', merge: ['refs/staging/1'] }],
        },
      },
    });
    expect(good.status).toBe(201);
    expect(good.body.lease.workingCopy).toEqual({
      repositories: [
        { url: 'file:///tmp/r.git', ref: 'main', merge: ['refs/staging/1'], directory: 'r' },
      ],
    });
  });

  it('no caller identity is 401', async () => {
    const response = await env.api({ method: 'GET', path: '/v1/leases', principal: null });
    expect(response.status).toBe(401);
    expect(response.body.error.code).toBe('unauthenticated');
  });

  it('an unknown route is 404', async () => {
    const response = await env.api({ method: 'DELETE', path: '/v1/leases/x' });
    expect(response.status).toBe(404);
    expect(response.body.error.message).toMatch(/no route DELETE \/v1\/leases\/x/);
  });

  it('a 500 says only "internal error" and the request id', async () => {
    // The same handler on an engine whose table does not exist: every store call fails.
    const broken = handlerEngine({ ...env, tableName: 'no-such-table' });
    const brokenApi = makeApiHandler({ engine: broken, admins: ADMIN_ROLE });
    const response = await callApi(brokenApi, {
      method: 'GET',
      path: `/v1/leases/lease-${randomUUID()}`,
    });
    expect(response.status).toBe(500);
    expect(response.body).toEqual({
      error: { code: 'internal', message: `internal error; request id ${response.requestId}` },
    });
    expect(response.raw.body).not.toMatch(/no-such-table|DynamoDB|ResourceNotFound/);
  });
});
