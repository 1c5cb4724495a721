/**
 * Who owns a lease on AWS (issue 15, point 1): the owner is the caller's role, not the
 * assumed-role session that signed (the session name changes per CodeBuild build, EC2 instance,
 * ECS task, and the caller picks it). Two sessions of one role share their leases, commands and
 * idempotency keys; another role sees nothing. `ownerGranularity: 'session'` restores
 * per-session owners for operators who want them.
 */
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { callerIdentity, isAdminPrincipal } from '../../lambdas/core/identity.ts';
import { makeApiHandler } from '../../lambdas/handlers/api.ts';
import { ACCOUNT, ADMIN_ROLE, callApi, type HandlerEnv, handlerEnv } from './support.ts';

vi.hoisted(() => {
  if (!process.env.DRYDOCK_TEST_LOGS) process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
});

const ROLE = `arn:aws:iam::${ACCOUNT}:role/ci-builds`;
const BUILD_1 = `arn:aws:sts::${ACCOUNT}:assumed-role/ci-builds/build-1`;
const BUILD_2 = `arn:aws:sts::${ACCOUNT}:assumed-role/ci-builds/build-2`;
const OTHER_ROLE = `arn:aws:sts::${ACCOUNT}:assumed-role/deploys/build-1`;

const pool = {
  id: 'identity-pool',
  type: 'synthetic',
  resourceType: 'host',
  attributes: { pool: 'identity' },
  limits: { maxResources: 4, leasesPerResource: 1, idleGraceSeconds: 0 },
  config: {},
};

let env: HandlerEnv;

beforeAll(async () => {
  env = await handlerEnv();
  const created = await env.api({
    method: 'POST',
    path: '/v1/blueprints',
    principal: `arn:aws:sts::${ACCOUNT}:assumed-role/drydock-admin/ops`,
    body: pool,
  });
  expect(created.status).toBe(201);
});

async function activeLease(principal: string): Promise<string> {
  const created = await env.api({
    method: 'POST',
    path: '/v1/leases',
    principal,
    body: { type: 'host', attributes: { pool: 'identity' } },
  });
  expect(created.status).toBe(201);
  const id = created.body.lease.id as string;
  await env.driveWorker(
    async () => {
      const got = await env.api({ method: 'GET', path: `/v1/leases/${id}`, principal });
      return got.body.lease.status === 'active' ? true : undefined;
    },
    { message: `lease ${id} active` },
  );
  return id;
}

describe('the owner is the role, the session is for display', () => {
  it('maps principals: assumed role -> role ARN (path dropped), user -> itself', () => {
    expect(callerIdentity(BUILD_1)).toEqual({ owner: ROLE, session: 'build-1' });
    expect(callerIdentity(BUILD_1, 'session')).toEqual({ owner: BUILD_1, session: 'build-1' });
    const user = `arn:aws:iam::${ACCOUNT}:user/ci`;
    expect(callerIdentity(user)).toEqual({ owner: user });
    expect(callerIdentity(`arn:aws:iam::${ACCOUNT}:role/team/a/ci-builds`)).toEqual({
      owner: ROLE,
    });
    expect(callerIdentity('local:alice')).toEqual({ owner: 'local:alice' });
    // A role listed with its path admits the role's sessions (the session ARN has no path).
    expect(isAdminPrincipal(BUILD_1, `arn:aws:iam::${ACCOUNT}:role/team/ci-builds`)).toBe(true);
    expect(isAdminPrincipal(OTHER_ROLE, ROLE)).toBe(false);
    expect(isAdminPrincipal(BUILD_1, BUILD_2)).toBe(false);
  });

  it('two sessions of one role share a lease: read, logs, commands, release', async () => {
    const id = await activeLease(BUILD_1);
    const read = await env.api({ method: 'GET', path: `/v1/leases/${id}`, principal: BUILD_2 });
    expect(read.status).toBe(200);
    expect(read.body.lease).toMatchObject({ owner: ROLE, ownerSession: 'build-1' });

    const logs = await env.api({
      method: 'GET',
      path: `/v1/leases/${id}/logs`,
      principal: BUILD_2,
    });
    expect(logs.status).toBe(200);
    expect(logs.body.items.length).toBeGreaterThan(0);

    const started = await env.api({
      method: 'POST',
      path: `/v1/leases/${id}/commands`,
      principal: BUILD_2,
      body: { argv: ['echo', 'hi'] },
    });
    expect(started.status).toBe(202);
    const commandPath = `/v1/leases/${id}/commands/${started.body.command.id}`;
    const byFirst = await env.api({ method: 'GET', path: commandPath, principal: BUILD_1 });
    expect(byFirst.status).toBe(200);

    const listed = await env.api({ method: 'GET', path: '/v1/leases', principal: BUILD_2 });
    expect(listed.body.items.map((l: { id: string }) => l.id)).toContain(id);

    const released = await env.api({
      method: 'POST',
      path: `/v1/leases/${id}/release`,
      principal: BUILD_2,
    });
    expect(released.status).toBe(200);
    // Nothing to clean: torn down in the release's own write, recorded as released.
    expect(released.body.lease).toMatchObject({ status: 'destroyed', endedAs: 'released' });
  });

  it('a different role gets 404 for every lease route, and its listing is empty of it', async () => {
    const id = await activeLease(BUILD_1);
    for (const [method, path] of [
      ['GET', `/v1/leases/${id}`],
      ['GET', `/v1/leases/${id}/logs`],
      ['POST', `/v1/leases/${id}/release`],
      ['POST', `/v1/leases/${id}/commands`],
    ] as const) {
      const refused = await env.api({
        method,
        path,
        principal: OTHER_ROLE,
        ...(path.endsWith('/commands') ? { body: { argv: ['true'] } } : {}),
      });
      expect(refused.status, `${method} ${path}`).toBe(404);
    }
    const listed = await env.api({ method: 'GET', path: '/v1/leases', principal: OTHER_ROLE });
    expect(listed.body.items.map((l: { id: string }) => l.id)).not.toContain(id);
    const still = await env.api({ method: 'GET', path: `/v1/leases/${id}`, principal: BUILD_1 });
    expect(still.body.lease.status).toBe('active');
  });

  it('an idempotent retry from another session returns the same lease (200)', async () => {
    const request = {
      method: 'POST',
      path: '/v1/leases',
      body: { type: 'host', attributes: { pool: 'identity' } },
      headers: { 'Idempotency-Key': 'pipeline-7-stage-2' },
    };
    const first = await env.api({ ...request, principal: BUILD_1 });
    expect(first.status).toBe(201);
    const retry = await env.api({ ...request, principal: BUILD_2 });
    expect(retry.status).toBe(200);
    expect(retry.body.lease.id).toBe(first.body.lease.id);
    // Another role's key is its own: the same key makes that role its own lease.
    const other = await env.api({ ...request, principal: OTHER_ROLE });
    expect(other.status).toBe(201);
    expect(other.body.lease.id).not.toBe(first.body.lease.id);
  });

  it("with ownerGranularity 'session', each session is its own owner", async () => {
    const perSession = makeApiHandler({
      engine: env.engine,
      admins: ADMIN_ROLE,
      ownerGranularity: 'session',
    });
    const created = await callApi(perSession, {
      method: 'POST',
      path: '/v1/leases',
      principal: BUILD_1,
      body: { type: 'host', attributes: { pool: 'identity' } },
    });
    expect(created.status).toBe(201);
    expect(created.body.lease.owner).toBe(BUILD_1);
    const id = created.body.lease.id;
    const otherSession = await callApi(perSession, {
      method: 'GET',
      path: `/v1/leases/${id}`,
      principal: BUILD_2,
    });
    expect(otherSession.status).toBe(404);
    const sameSession = await callApi(perSession, {
      method: 'GET',
      path: `/v1/leases/${id}`,
      principal: BUILD_1,
    });
    expect(sameSession.status).toBe(200);
    await callApi(perSession, {
      method: 'POST',
      path: `/v1/leases/${id}/release`,
      principal: BUILD_1,
    });
  });
});
