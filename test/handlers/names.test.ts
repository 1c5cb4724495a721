/**
 * Names are names (issue 16, point 7): a lease type, an attribute name, a blueprint id or a
 * lease id that is blank, holds a control character or a path, or is too long, is refused with
 * a 400 that shows the pattern, at the API and in the engine.
 */
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { ValidationError } from '../../lambdas/core/errors.ts';
import { NAME_PATTERN } from '../../lambdas/core/names.ts';
import { requestLease } from '../../lambdas/core/use-cases.ts';
import { CI, type HandlerEnv, handlerEnv } from './support.ts';

vi.hoisted(() => {
  if (!process.env.DRYDOCK_TEST_LOGS) process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
});

let env: HandlerEnv;

beforeAll(async () => {
  env = await handlerEnv();
});

const post = (body: unknown) => env.api({ method: 'POST', path: '/v1/leases', body });

describe('names at the API', () => {
  it.each([
    ['a blank type', { type: '   ' }, /body\.type: type must be .*pattern/],
    ['a type with a NUL', { type: 'ho\u0000st' }, /body\.type: type must be/],
    ['a type too long', { type: 'h'.repeat(65) }, /body\.type: type must be .*1 to 64/],
    [
      'an attribute name with a space',
      { type: 'host', attributes: { 'plat form': 'linux' } },
      /attribute name must be/,
    ],
    [
      'a blueprint id that is a path',
      { type: 'host', blueprintIds: ['../../etc'] },
      /body\.blueprintIds\.0: blueprint id must be .*linux-pool/,
    ],
  ])('refuses %s with a 400 showing the pattern', async (_what, body, message) => {
    const res = await post(body);
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(message);
  });

  it('accepts names that fit, and refuses a lease id that is not one', async () => {
    const ok = await post({ type: 'host', attributes: { 'instance.type_v2': 'x' } });
    expect(ok.status).toBe(201);
    const bad = await env.api({ method: 'GET', path: '/v1/leases/lease%0Aid' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/lease id "lease\\nid" is not a name/);
  });
});

describe('names in the engine', () => {
  it('refuses the same names when the API is not in front', async () => {
    const owner = CI;
    for (const request of [
      { type: '   ' },
      { type: 'ho\u0000st' },
      { type: 'host', attributes: { '': 'x' } },
      { type: 'host', blueprintIds: ['../../etc'] },
    ]) {
      await expect(requestLease(env.engine, { ...request, owner })).rejects.toThrow(
        ValidationError,
      );
    }
    await expect(requestLease(env.engine, { type: 'ho\u0000st', owner })).rejects.toThrow(
      NAME_PATTERN.source,
    );
  });
});
