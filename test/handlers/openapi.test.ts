/**
 * openapi.yaml and the api handler describe the same API: the same routes, and responses that
 * carry what the document promises (every response in the handler tests is checked the same
 * way, by support.ts).
 */
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { routes } from '../../lambdas/handlers/api.ts';
import {
  ADMIN,
  CI,
  checkResponse,
  type HandlerEnv,
  HTTP_METHODS,
  handlerEnv,
  openApiDocument,
  openApiPathFor,
} from './support.ts';

vi.hoisted(() => {
  if (!process.env.DRYDOCK_TEST_LOGS) process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
});

type Operation = { responses: Record<string, unknown>; operationId?: string };

function documentedOperations(): Array<{ method: string; path: string; operation: Operation }> {
  return Object.entries(openApiDocument().paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => HTTP_METHODS.includes(method))
      .map(([method, operation]) => ({
        method: method.toUpperCase(),
        path,
        operation: operation as Operation,
      })),
  );
}

describe('openapi.yaml', () => {
  it('documents exactly the routes the api handler serves', () => {
    const served = routes.map((r) => `${r.method} ${r.path}`).sort();
    const documented = documentedOperations()
      .map((o) => `${o.method} ${o.path}`)
      .sort();
    expect(documented).toEqual(served);
  });

  it('gives every operation an id and the errors every route can answer', () => {
    const ids = new Set<string>();
    for (const { method, path, operation } of documentedOperations()) {
      const name = `${method} ${path}`;
      expect(operation.operationId, name).toBeTruthy();
      ids.add(operation.operationId as string);
      for (const status of ['400', '401', '500', '503']) {
        expect(operation.responses, `${name} documents ${status}`).toHaveProperty(status);
      }
      if (path.includes('{'))
        expect(operation.responses, `${name} documents 404`).toHaveProperty('404');
    }
    expect(ids.size).toBe(documentedOperations().length);
    for (const route of routes.filter((r) => r.admin)) {
      const operation = documentedOperations().find(
        (o) => o.method === route.method && o.path === route.path,
      );
      expect(
        operation?.operation.responses,
        `${route.method} ${route.path} documents 403`,
      ).toHaveProperty('403');
    }
  });

  it('resolves every $ref', () => {
    const refs = JSON.stringify(openApiDocument()).match(/"\$ref":"[^"]+"/g) ?? [];
    expect(refs.length).toBeGreaterThan(20);
    for (const ref of new Set(refs)) {
      const target = ref.slice('"$ref":"#/'.length, -1).split('/');
      // biome-ignore lint/suspicious/noExplicitAny: walking a parsed document.
      let node: any = openApiDocument();
      for (const part of target) node = node?.[part];
      expect(node, ref).toBeDefined();
    }
  });

  it('the structural check catches a response that breaks the document', () => {
    expect(checkResponse('GET', '/v1/leases/L1', 200, { lease: { id: 'L1' } })).toEqual(
      expect.arrayContaining(['body.lease.type: required but missing']),
    );
    expect(
      checkResponse('GET', '/v1/leases/L1', 200, {
        lease: {
          id: 'L1',
          type: 'host',
          attributes: {},
          owner: CI,
          status: 'active',
          version: 1,
          requestedAt: 'x',
          updatedAt: 'x',
          requeues: 0,
          waitSeq: 3,
        },
      }),
    ).toEqual(['body.lease.waitSeq: not documented']);
    expect(checkResponse('GET', '/v1/leases/L1', 418, {})).toEqual([
      'GET /v1/leases/{id}: status 418 is not documented',
    ]);
    expect(openApiPathFor('/v1/leases/L1/commands/C1')).toBe(
      '/v1/leases/{id}/commands/{commandId}',
    );
  });
});

describe('responses validate against openapi.yaml', () => {
  let env: HandlerEnv;
  beforeAll(async () => {
    env = await handlerEnv();
  });

  it('on a lease from request to release, and on errors', async () => {
    // api() fails the test if a response is undocumented or lacks a required field.
    await env.api({
      method: 'POST',
      path: '/v1/blueprints',
      principal: ADMIN,
      body: { id: 'pool', type: 'synthetic', limits: { maxResources: 1 } },
    });
    const { body } = await env.api({ method: 'POST', path: '/v1/leases', body: { type: 'host' } });
    const id = body.lease.id as string;
    await env.driveWorker(async () => {
      const lease = await env.api({ method: 'GET', path: `/v1/leases/${id}` });
      return lease.body.lease.status === 'active';
    });
    const command = await env.api({
      method: 'POST',
      path: `/v1/leases/${id}/commands`,
      body: { script: 'echo hi' },
    });
    await env.driveWorker(async () => {
      const got = await env.api({
        method: 'GET',
        path: `/v1/leases/${id}/commands/${command.body.command.id}`,
      });
      return got.body.command.status === 'finished';
    });
    for (const path of [
      '/v1/leases',
      `/v1/leases/${id}/logs`,
      '/v1/blueprints',
      '/v1/blueprints/pool',
      '/v1/pools',
      '/v1/blueprints/pool/logs',
    ]) {
      expect((await env.api({ method: 'GET', path })).status, path).toBe(200);
    }
    await env.api({ method: 'GET', path: '/v1/admin/dlq', principal: ADMIN });
    await env.api({ method: 'POST', path: '/v1/admin/dlq/redrive', principal: ADMIN });
    const resources = await env.api({ method: 'GET', path: '/v1/resources', principal: ADMIN });
    const resourceId = resources.body.items[0].id as string;
    await env.api({ method: 'GET', path: `/v1/resources/${resourceId}`, principal: ADMIN });
    await env.api({ method: 'GET', path: `/v1/resources/${resourceId}/logs`, principal: ADMIN });
    await env.api({
      method: 'PATCH',
      path: '/v1/blueprints/pool',
      principal: ADMIN,
      body: { state: 'draining' },
    });
    await env.api({ method: 'POST', path: `/v1/leases/${id}/release` });
    await env.api({
      method: 'POST',
      path: `/v1/resources/${resourceId}/release`,
      principal: ADMIN,
    });

    // Errors too: each is a documented status with the error body.
    const statuses = [
      (await env.api({ method: 'GET', path: '/v1/leases/nope' })).status,
      (await env.api({ method: 'GET', path: '/v1/resources' })).status,
      (await env.api({ method: 'GET', path: '/v1/leases', principal: null })).status,
      (await env.api({ method: 'POST', path: '/v1/leases', body: '[' })).status,
      (await env.api({ method: 'POST', path: `/v1/leases/${id}/commands`, body: { argv: ['x'] } }))
        .status,
    ];
    expect(statuses).toEqual([404, 403, 401, 400, 409]);
  });
});
