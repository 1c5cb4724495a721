/**
 * On AWS, commands never run in a Lambda (issue 9, point 3): the deployed registry has no
 * `local-host`, the composition root uses it, and a deployed API refuses a local-host blueprint
 * with a 400 that names the types the deployment offers. The local runtime keeps local-host.
 */
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { deployedRegistry, localRegistry } from '../../lambdas/blueprints/registry.ts';
import { buildEngineFromEnvironment } from '../../lambdas/handlers/composition.ts';
import { ADMIN, type HandlerEnv, handlerEnv } from './support.ts';

vi.hoisted(() => {
  if (!process.env.DRYDOCK_TEST_LOGS) process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
});

describe('the deployed registry', () => {
  it('offers no type whose commands run inside the Lambda', () => {
    expect(deployedRegistry().get('local-host')).toBeUndefined();
    expect(deployedRegistry().types()).not.toContain('local-host');
    expect(deployedRegistry().types()).toContain('synthetic');
    expect(deployedRegistry().types()).toContain('static-host');
    expect(deployedRegistry().types()).toContain('ec2-host');
  });

  it('is what the AWS composition root registers', () => {
    const engine = buildEngineFromEnvironment({
      TABLE_NAME: 'drydock',
      QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/drydock-updates',
    });
    expect(engine.registry.types()).toEqual(deployedRegistry().types());
  });

  it('is a part of the local registry, which adds local-host', () => {
    const local = localRegistry().types();
    expect(local).toEqual([...deployedRegistry().types(), 'local-host']);
  });
});

describe('a deployed API', () => {
  let env: HandlerEnv;
  beforeAll(async () => {
    env = await handlerEnv();
  });

  it('refuses a local-host blueprint (400) and says which types it offers', async () => {
    const refused = await env.api({
      method: 'POST',
      path: '/v1/blueprints',
      principal: ADMIN,
      body: { id: 'here', type: 'local-host', resourceType: 'host' },
    });
    expect(refused.status).toBe(400);
    expect(refused.body.error.code).toBe('invalid_request');
    expect(refused.body.error.message).toBe(
      `blueprint type 'local-host' is not offered here; this deployment offers: ${deployedRegistry().types().join(', ')}`,
    );
    const listed = await env.api({ method: 'GET', path: '/v1/blueprints' });
    expect(listed.body.items).toEqual([]);
  });
});
