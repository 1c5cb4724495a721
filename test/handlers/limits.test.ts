/**
 * Bounded requests (issue 15, point 2): the largest request the API accepts round-trips through
 * the api handler into DynamoDB Local; one byte (or entry, or character) over any limit is a 400
 * naming that limit; ids in paths are bounded before DynamoDB sees them; error messages and log
 * lines quote only a short prefix of what was sent.
 */
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { LIMITS } from '../../lambdas/handlers/limits.ts';
import { ADMIN, type HandlerEnv, handlerEnv } from './support.ts';

vi.hoisted(() => {
  if (!process.env.DRYDOCK_TEST_LOGS) process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
});

const pool = {
  id: 'limits-pool',
  type: 'synthetic',
  resourceType: 'host',
  attributes: { pool: 'limits' },
  limits: { maxResources: 2, leasesPerResource: 1, idleGraceSeconds: 0 },
  config: {},
};

let env: HandlerEnv;
let leaseId: string;

/** `count` attributes whose names and values add up to exactly `bytes` UTF-8 bytes. */
function attributesOf(count: number, bytes: number): Record<string, string> {
  const out: Record<string, string> = {};
  let left = bytes;
  for (let i = 0; i < count; i++) {
    const key = `k${String(i).padStart(3, '0')}`;
    const share = Math.min(256, left - key.length - (count - i - 1) * (key.length + 1));
    out[key] = 'v'.repeat(Math.max(1, share));
    left -= key.length + out[key].length;
  }
  expect(left).toBe(0);
  return out;
}

/** A JSON body of exactly `bytes` bytes: `value` padded with trailing whitespace. */
function paddedBody(value: unknown, bytes: number): string {
  const json = JSON.stringify(value);
  expect(json.length).toBeLessThanOrEqual(bytes);
  return json + ' '.repeat(bytes - json.length);
}

function refusedFor(
  response: { status: number; body: { error: { code: string; message: string } } },
  limit: keyof typeof LIMITS,
) {
  expect(response.status, JSON.stringify(response.body).slice(0, 300)).toBe(400);
  expect(response.body.error.code).toBe('invalid_request');
  expect(response.body.error.message).toContain(`(${limit})`);
  expect(response.body.error.message).toContain(String(LIMITS[limit]));
}

beforeAll(async () => {
  env = await handlerEnv();
  expect(
    (await env.api({ method: 'POST', path: '/v1/blueprints', principal: ADMIN, body: pool }))
      .status,
  ).toBe(201);
  const created = await env.api({
    method: 'POST',
    path: '/v1/leases',
    body: { type: 'host', attributes: { pool: 'limits' } },
  });
  leaseId = created.body.lease.id;
  await env.driveWorker(async () => {
    const got = await env.api({ method: 'GET', path: `/v1/leases/${leaseId}` });
    return got.body.lease.status === 'active' ? true : undefined;
  });
});

describe('a lease request', () => {
  it('the largest attributes round-trip; one entry or one byte over is a 400 naming the limit', async () => {
    const largest = attributesOf(LIMITS.attributesCount, LIMITS.attributesBytes);
    const created = await env.api({
      method: 'POST',
      path: '/v1/leases',
      body: { type: 'host', attributes: largest, ttlSeconds: 60 },
    });
    expect(created.status).toBe(201);
    const got = await env.api({ method: 'GET', path: `/v1/leases/${created.body.lease.id}` });
    expect(got.body.lease.attributes).toEqual(largest);
    await env.api({ method: 'POST', path: `/v1/leases/${created.body.lease.id}/release` });

    const byteOver = attributesOf(LIMITS.attributesCount, LIMITS.attributesBytes + 1);
    refusedFor(
      await env.api({
        method: 'POST',
        path: '/v1/leases',
        body: { type: 'host', attributes: byteOver },
      }),
      'attributesBytes',
    );
    const entryOver = attributesOf(LIMITS.attributesCount + 1, LIMITS.attributesCount * 8 + 8);
    refusedFor(
      await env.api({
        method: 'POST',
        path: '/v1/leases',
        body: { type: 'host', attributes: entryOver },
      }),
      'attributesCount',
    );
  });

  it('a body of exactly the limit is served; one byte more is a 400 naming the limit', async () => {
    const request = { type: 'host', attributes: { pool: 'nowhere' }, ttlSeconds: 60 };
    const atLimit = await env.api({
      method: 'POST',
      path: '/v1/leases',
      body: paddedBody(request, LIMITS.leaseBodyBytes),
    });
    expect(atLimit.status).toBe(201);
    await env.api({ method: 'POST', path: `/v1/leases/${atLimit.body.lease.id}/release` });
    refusedFor(
      await env.api({
        method: 'POST',
        path: '/v1/leases',
        body: paddedBody(request, LIMITS.leaseBodyBytes + 1),
      }),
      'leaseBodyBytes',
    );
  });

  it('what a new user tried: ~1 MB of attributes, 20,000 attributes, a 100 KB key: 400s, short', async () => {
    const many = Object.fromEntries(
      Array.from({ length: 20_000 }, (_, i) => [`a${i}`, 'x'.repeat(8)]),
    );
    const huge = { big: 'x'.repeat(1_000_000) };
    const longKey = { ['k'.repeat(100_000)]: 'v' };
    for (const attributes of [many, huge, longKey]) {
      const refused = await env.api({
        method: 'POST',
        path: '/v1/leases',
        body: { type: 'host', attributes },
      });
      expect(refused.status).toBe(400);
      expect(refused.raw.body.length).toBeLessThan(2500);
    }
    // The body limit is met before any field is looked at: the limit named is the body's.
    refusedFor(
      await env.api({
        method: 'POST',
        path: '/v1/leases',
        body: { type: 'host', attributes: huge },
      }),
      'leaseBodyBytes',
    );
    const shortKey = { ['k'.repeat(10_000)]: 'v' };
    const quoted = await env.api({
      method: 'POST',
      path: '/v1/leases',
      body: { type: 'host', attributes: shortKey },
    });
    expect(quoted.status).toBe(400);
    expect(quoted.body.error.message).toContain('k'.repeat(40));
    expect(quoted.body.error.message).not.toContain('k'.repeat(41));
    const unknown = await env.api({
      method: 'POST',
      path: '/v1/leases',
      body: { type: 'host', ['f'.repeat(10_000)]: 1 },
    });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.message).not.toContain('f'.repeat(41));
  });
});

describe('a command', () => {
  it('the largest argv, env and cwd round-trip; one byte over each is a 400 naming its limit', async () => {
    const argv = Array.from({ length: LIMITS.argvBytes / 4096 }, (_, i) =>
      `${i}`.padEnd(4096, 'a'),
    );
    const env16 = Object.fromEntries(
      Array.from({ length: LIMITS.envBytes / 8192 }, (_, i) => {
        const name = `V${String(i).padStart(2, '0')}`;
        return [name, 'e'.repeat(8192 - name.length)];
      }),
    );
    const body = { argv, env: env16, cwd: `/${'d'.repeat(1023)}` };
    const started = await env.api({ method: 'POST', path: `/v1/leases/${leaseId}/commands`, body });
    expect(started.status).toBe(202);
    const got = await env.api({
      method: 'GET',
      path: `/v1/leases/${leaseId}/commands/${started.body.command.id}`,
    });
    expect(got.status).toBe(200);
    expect(got.body.command.argv).toEqual(argv);

    const argvOver = [...argv.slice(0, -1), `${argv.at(-1)}b`];
    refusedFor(
      await env.api({
        method: 'POST',
        path: `/v1/leases/${leaseId}/commands`,
        body: { argv: argvOver },
      }),
      'argvBytes',
    );
    refusedFor(
      await env.api({
        method: 'POST',
        path: `/v1/leases/${leaseId}/commands`,
        body: { argv: ['true'], env: { ...env16, V00: `${env16.V00}x` } },
      }),
      'envBytes',
    );
    const envMany = Object.fromEntries(
      Array.from({ length: LIMITS.envCount + 1 }, (_, i) => [`N${i}`, '1']),
    );
    refusedFor(
      await env.api({
        method: 'POST',
        path: `/v1/leases/${leaseId}/commands`,
        body: { argv: ['true'], env: envMany },
      }),
      'envCount',
    );
  });

  it('a script of the limit in bytes is taken, one more byte is not; log lines show a prefix', async () => {
    // 'é' is two bytes: a character limit alone would let twice the bytes by.
    const script = `echo ${'é'.repeat((LIMITS.scriptBytes - 5) / 2)}`.padEnd(0);
    expect(Buffer.byteLength(script)).toBeLessThanOrEqual(LIMITS.scriptBytes);
    const exact = script + 'x'.repeat(LIMITS.scriptBytes - Buffer.byteLength(script));
    const started = await env.api({
      method: 'POST',
      path: `/v1/leases/${leaseId}/commands`,
      body: { script: exact },
    });
    expect(started.status).toBe(202);
    refusedFor(
      await env.api({
        method: 'POST',
        path: `/v1/leases/${leaseId}/commands`,
        body: { script: `${exact}y` },
      }),
      'scriptBytes',
    );
    const logs = await env.api({ method: 'GET', path: `/v1/leases/${leaseId}/logs?limit=1000` });
    const queued = logs.body.items.filter(
      (e: { type: string; data?: { commandId?: string } }) =>
        e.type === 'lease.command-queued' && e.data?.commandId === started.body.command.id,
    );
    expect(queued).toHaveLength(1);
    expect(queued[0].message.length).toBeLessThan(300);
    expect(queued[0].message).toMatch(/characters\)/);
  });

  it('a body over its limit is refused before it is parsed', async () => {
    refusedFor(
      await env.api({
        method: 'POST',
        path: `/v1/leases/${leaseId}/commands`,
        body: paddedBody({ argv: ['true'] }, LIMITS.commandBodyBytes + 1),
      }),
      'commandBodyBytes',
    );
    refusedFor(
      await env.api({
        method: 'POST',
        path: '/v1/blueprints',
        principal: ADMIN,
        body: paddedBody({ ...pool, id: 'big' }, LIMITS.blueprintBodyBytes + 1),
      }),
      'blueprintBodyBytes',
    );
  });
});

describe('ids in paths', () => {
  it('an id of the limit is looked up (404); longer ones are a short 400 naming the limit', async () => {
    const atLimit = 'x'.repeat(LIMITS.pathIdChars);
    expect((await env.api({ method: 'GET', path: `/v1/leases/${atLimit}` })).status).toBe(404);
    for (const length of [LIMITS.pathIdChars + 1, 2000, 5000]) {
      const id = 'x'.repeat(length);
      for (const [method, path] of [
        ['GET', `/v1/leases/${id}`],
        ['POST', `/v1/leases/${id}/release`],
        ['GET', `/v1/leases/${id}/logs`],
        ['GET', `/v1/leases/${leaseId}/commands/${id}`],
        ['GET', `/v1/blueprints/${id}`],
      ] as const) {
        const refused = await env.api({ method, path });
        refusedFor(refused, 'pathIdChars');
        expect(refused.raw.body.length, `${method} ${length}`).toBeLessThan(400);
      }
    }
  });
});
