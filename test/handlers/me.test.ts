/**
 * GET /v1/me: who the API takes the caller for, and whether it may administer (what the web
 * console uses to show admin actions only to admins).
 */
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { ADMIN, ADMIN_ROLE, CI, type HandlerEnv, handlerEnv } from './support.ts';

vi.hoisted(() => {
  if (!process.env.DRYDOCK_TEST_LOGS) process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
});

let env: HandlerEnv;

beforeAll(async () => {
  env = await handlerEnv();
});

describe('GET /v1/me', () => {
  it('names the caller and says whether it is an admin (an admin role session is one)', async () => {
    const holder = await env.api({ method: 'GET', path: '/v1/me', principal: CI });
    expect(holder.status).toBe(200);
    expect(holder.body).toEqual({ principal: CI, admin: false });
    const admin = await env.api({ method: 'GET', path: '/v1/me', principal: ADMIN });
    // The owner is the role; the session that signed (ADMIN is `.../drydock-admin/alice`) is
    // shown beside it (issue 15: core/identity.ts).
    expect(admin.body).toEqual({ principal: ADMIN_ROLE, session: 'alice', admin: true });
  });

  it('answers 401 without an identity', async () => {
    const anonymous = await env.api({ method: 'GET', path: '/v1/me', principal: null });
    expect(anonymous.status).toBe(401);
  });
});
