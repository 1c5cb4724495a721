/**
 * Fuzzing the lease API (issue 15, point 5): fast-check generates requests over every route of
 * the api handler (bodies, query strings, headers, path ids: hostile JSON, wrong types, huge and
 * deeply nested values, unicode, path traversal, unknown fields, other callers) and sends them
 * through the real handler onto DynamoDB Local. Every response must be a 2xx or a 4xx with a
 * JSON error message, never a 5xx, and a refused request must leave the table exactly as it was.
 *
 * `npm test` runs FUZZ_RUNS (2,000) requests with a fixed seed, so a failure reproduces;
 * `npm run fuzz` runs more with a random seed (printed, so a failure can be replayed with
 * DRYDOCK_FUZZ_SEED=<seed>).
 */
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import type { APIGatewayProxyResult } from 'aws-lambda';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { routes } from '../../lambdas/handlers/api.ts';
import {
  ACCOUNT,
  ADMIN,
  CI,
  checkResponse,
  type HandlerEnv,
  handlerEnv,
  lambdaContext,
  openApiPathFor,
  restEvent,
} from '../handlers/support.ts';

vi.hoisted(() => {
  if (!process.env.DRYDOCK_TEST_LOGS) process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
});

const FIXED_SEED = 15_2026;
const FUZZ_RUNS = 2000;
const seedSetting = process.env.DRYDOCK_FUZZ_SEED;
const seed =
  seedSetting === 'random'
    ? Math.floor(Math.random() * 2 ** 31)
    : seedSetting
      ? Number(seedSetting)
      : FIXED_SEED;
const numRuns = Number(process.env.DRYDOCK_FUZZ_RUNS ?? FUZZ_RUNS);

const OTHER_SESSION = `arn:aws:sts::${ACCOUNT}:assumed-role/someone-else/s1`;

let env: HandlerEnv;
/** Ids that exist, so generated requests also reach objects, not only 404s. */
const real = { lease: '', command: '', resource: '', blueprint: 'fuzz-pool' };

beforeAll(async () => {
  env = await handlerEnv();
  const created = await env.api({
    method: 'POST',
    path: '/v1/blueprints',
    principal: ADMIN,
    body: {
      id: real.blueprint,
      type: 'synthetic',
      resourceType: 'host',
      attributes: { pool: 'fuzz' },
      limits: { maxResources: 2, leasesPerResource: 1, idleGraceSeconds: 0 },
      config: {},
    },
  });
  expect(created.status).toBe(201);
  const lease = await env.api({
    method: 'POST',
    path: '/v1/leases',
    body: { type: 'host', attributes: { pool: 'fuzz' } },
  });
  real.lease = lease.body.lease.id;
  const active = await env.driveWorker(async () => {
    const got = await env.api({ method: 'GET', path: `/v1/leases/${real.lease}` });
    return got.body.lease.status === 'active' ? got.body.lease : undefined;
  });
  real.resource = active.resourceId;
  const command = await env.api({
    method: 'POST',
    path: `/v1/leases/${real.lease}/commands`,
    body: { argv: ['echo', 'fuzz'] },
  });
  real.command = command.body.command.id;
});

// ---- generators -------------------------------------------------------------------------------

const hugeString = fc.integer({ min: 1000, max: 300_000 }).map((n) => 'x'.repeat(n));
const hostileString = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme', maxLength: 50 }),
  fc.string({ unit: 'binary', maxLength: 50 }),
  fc.constantFrom(
    '',
    ' ',
    '..',
    '../..',
    '../../etc/passwd',
    '%2e%2e%2f',
    '\u0000',
    '\uFFFF',
    '\uD800',
    '𝕯𝖗𝖞𝖉𝖔𝖈𝖐',
    '<script>alert(1)</script>',
    "' OR '1'='1",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a log4shell probe, sent as text.
    '${jndi:ldap://x}',
    'LEASE#x',
    '#',
    '%',
    '__proto__',
    'constructor',
  ),
  hugeString,
);

const pathId = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('lease', 'command', 'resource', 'blueprint') },
  { weight: 3, arbitrary: hostileString },
  { weight: 1, arbitrary: fc.integer({ min: 100, max: 6000 }).map((n) => 'i'.repeat(n)) },
);

const deepNesting = fc
  .tuple(fc.integer({ min: 10, max: 20_000 }), fc.constantFrom('[', '{"a":'))
  .map(([depth, open]) => {
    const close = open === '[' ? ']' : '}';
    return `${open.repeat(depth)}1${close.repeat(depth)}`;
  });

/** A value nested deeper than DynamoDB stores (32 levels). */
const deepValue = fc.integer({ min: 30, max: 60 }).map((depth) => {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = i % 2 ? [value] : { a: value };
  return value;
});

const jsonish = fc.oneof(
  fc.jsonValue({ maxDepth: 6 }),
  fc.anything({ maxDepth: 4 }).map((v) => JSON.parse(JSON.stringify(v ?? null) ?? 'null')),
);

/** Known fields with values of every type, plus unknown ones. */
function fieldsOf(names: string[]) {
  const value = fc.oneof(
    jsonish,
    hostileString,
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.dictionary(hostileString, hostileString, { maxKeys: 5 }),
    fc.array(hostileString, { maxLength: 5 }),
  );
  return fc.record(
    Object.fromEntries(names.map((n) => [n, value])) as Record<string, fc.Arbitrary<unknown>>,
    { requiredKeys: [] },
  );
}

const leaseBody = fc.record(
  {
    type: fc.oneof(fc.constant('host'), hostileString),
    attributes: fc.oneof(
      fc.constant({ pool: 'fuzz' }),
      fc.dictionary(hostileString, hostileString, { maxKeys: 30 }),
      jsonish,
    ),
    ttlSeconds: fc.oneof(fc.integer({ min: -10, max: 100_000 }), jsonish),
    blueprintIds: fc.oneof(fc.array(hostileString, { maxLength: 25 }), jsonish),
  },
  { requiredKeys: [] },
);
const commandBody = fc.record(
  {
    argv: fc.oneof(fc.array(hostileString, { maxLength: 20 }), jsonish),
    script: fc.oneof(hostileString, jsonish),
    timeoutSeconds: fc.oneof(fc.integer({ min: -5, max: 100_000 }), jsonish),
    cwd: fc.oneof(hostileString, jsonish),
    env: fc.oneof(fc.dictionary(hostileString, hostileString, { maxKeys: 10 }), jsonish),
  },
  { requiredKeys: [] },
);
const blueprintBody = fc.record(
  {
    id: fc.oneof(fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/), hostileString),
    type: fc.oneof(fc.constantFrom('synthetic', 'static-host', 'ec2-host'), hostileString),
    resourceType: fc.oneof(fc.constant('host'), hostileString),
    state: fc.oneof(fc.constantFrom('enabled', 'draining', 'disabled'), hostileString),
    attributes: fc.oneof(fc.dictionary(hostileString, hostileString, { maxKeys: 5 }), jsonish),
    limits: fc.oneof(fieldsOf(['maxResources', 'minIdle', 'leasesPerResource']), jsonish),
    // Deeper than DynamoDB's 32 levels, yet shallow enough for fast-check to print.
    config: fc.oneof(fc.constant({}), jsonish, deepValue),
    description: hostileString,
  },
  { requiredKeys: [] },
);

const body = fc.oneof(
  { weight: 2, arbitrary: fc.constant(undefined) },
  { weight: 4, arbitrary: fc.oneof(leaseBody, commandBody, blueprintBody) },
  { weight: 2, arbitrary: jsonish },
  {
    weight: 2,
    arbitrary: fc.oneof(
      hostileString,
      deepNesting,
      fc.constantFrom(
        '{',
        '{"__proto__": {"admin": true}}',
        '{"constructor": {"prototype": {"x": 1}}}',
        'null',
        '[]',
        '"string"',
        '1e999',
        '{"type": "host", "type": "other"}',
      ),
    ),
  },
);

const queryKey = fc.oneof(
  fc.constantFrom(
    'status',
    'type',
    'limit',
    'cursor',
    'order',
    'after',
    'stdoutFrom',
    'stderrFrom',
    '__proto__',
  ),
  hostileString,
);
const queryValue = fc.oneof(
  fc.constantFrom('active', 'pending', 'newest', '0', '-1', '1e9', 'NaN', '1.5', 'true'),
  fc.integer().map(String),
  hostileString,
);
const query = fc.oneof(fc.constant(undefined), fc.dictionary(queryKey, queryValue, { maxKeys: 6 }));

const headerValue = fc.oneof(
  fc.constantFrom('"3"', 'W/"1"', '*', 'application/json', 'text/plain', 'gzip'),
  hostileString,
);
const headers = fc.dictionary(
  fc.constantFrom(
    'Idempotency-Key',
    'If-Match',
    'Content-Type',
    'content-type',
    'Content-Encoding',
    'X-Forwarded-For',
  ),
  headerValue,
  { maxKeys: 4 },
);

const principal = fc.constantFrom<string | null>(CI, ADMIN, OTHER_SESSION, null);
const method = fc.constantFrom('GET', 'POST', 'PATCH', 'PUT', 'DELETE', 'HEAD', 'OPTIONS');

/**
 * A valid body for some routes, so generated requests also succeed and write (and the check
 * that refused ones write nothing runs against a table that changes).
 */
const VALID_BODY: Record<string, unknown> = {
  'POST /v1/leases': { type: 'host', attributes: { pool: 'fuzz' }, ttlSeconds: 60, holdSeconds: 5 },
  'POST /v1/leases/{id}/commands': { argv: ['echo', 'fuzz'] },
  'POST /v1/leases/{id}/renew': {},
  'PATCH /v1/blueprints/{id}': { description: 'fuzzed' },
};

const request = fc.record({
  route: fc.nat({ max: routes.length - 1 }),
  /** Send the route's valid body (when it has one) instead of the generated one. */
  valid: fc.boolean(),
  sameMethod: fc.boolean(),
  method,
  id: pathId,
  commandId: pathId,
  trailingSlash: fc.boolean(),
  query,
  headers,
  body,
  principal,
});
type FuzzRequest = typeof request extends fc.Arbitrary<infer T> ? T : never;

function idFor(generated: string): string {
  const known = Object.hasOwn(real, generated)
    ? (real as Record<string, string>)[generated]
    : undefined;
  return known ?? generated;
}

// ---- the property ------------------------------------------------------------------------------

/** Everything in the table, in a stable order: a refused request must leave it unchanged. */
async function snapshot(): Promise<string> {
  const items: string[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await env.dynamo.send(
      new ScanCommand({
        TableName: env.tableName,
        ...(start ? { ExclusiveStartKey: start as never } : {}),
      }),
    );
    for (const item of page.Items ?? []) items.push(JSON.stringify(item));
    start = page.LastEvaluatedKey;
  } while (start);
  return items.sort().join('\n');
}

const served = new Map<string, number>();
const statuses = new Map<number, number>();

async function send(r: FuzzRequest): Promise<void> {
  const spec = routes[r.route];
  if (!spec) throw new Error('no route');
  const path =
    spec.path.replace('{id}', idFor(r.id)).replace('{commandId}', idFor(r.commandId)) +
    (r.trailingSlash ? '/' : '');
  const httpMethod = r.sameMethod ? spec.method : r.method;
  const event = restEvent({ method: httpMethod, path: '/v1/me', principal: r.principal });
  // The path as API Gateway would hand it over, traversal and all (no URL normalisation).
  event.path = path;
  event.httpMethod = httpMethod;
  event.requestContext.httpMethod = httpMethod;
  event.pathParameters = { proxy: path.replace(/^\/v1\/?/, '') };
  event.queryStringParameters = r.query ?? null;
  event.headers = { ...event.headers, ...r.headers };
  const routeKey = `${spec.method} ${spec.path}`;
  const sent = r.valid && routeKey in VALID_BODY ? VALID_BODY[routeKey] : r.body;
  event.body = sent === undefined ? null : typeof sent === 'string' ? sent : JSON.stringify(sent);

  // Only POST and PATCH reach a handler that writes; any other method is refused by the router.
  const writes = httpMethod === 'POST' || httpMethod === 'PATCH';
  const before = writes ? await snapshot() : '';
  const response = (await env.handlers.api(event, lambdaContext('api'))) as APIGatewayProxyResult;
  const where = `${httpMethod} ${path.slice(0, 200)} -> ${response.statusCode} ${response.body.slice(0, 300)}`;
  statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
  served.set(`${spec.method} ${spec.path}`, (served.get(`${spec.method} ${spec.path}`) ?? 0) + 1);

  expect(response.statusCode, where).toBeLessThan(500);
  expect(response.statusCode, where).toBeGreaterThanOrEqual(200);
  expect(response.headers?.['content-type'], where).toBe('application/json');
  const parsed = JSON.parse(response.body);
  if (response.statusCode >= 400) {
    expect(typeof parsed.error?.code, where).toBe('string');
    expect(typeof parsed.error?.message, where).toBe('string');
    expect(parsed.error.message.length, where).toBeGreaterThan(0);
    expect(response.body.length, where).toBeLessThan(4096);
    if (writes)
      expect(await snapshot(), `${where}: a refused request changed the table`).toBe(before);
  }
  const template = openApiPathFor(path);
  if (template && response.statusCode !== 404 && httpMethod === spec.method && path.length < 2000) {
    expect(checkResponse(httpMethod, path, response.statusCode, parsed), where).toEqual([]);
  }
}

describe('the api handler under generated requests', () => {
  afterAll(() => {
    if (process.env.DRYDOCK_TEST_LOGS || seedSetting) {
      console.log(`fuzz seed ${seed}, ${numRuns} runs; statuses`, Object.fromEntries(statuses));
    }
  });

  it(`answers ${numRuns} generated requests over every route with 2xx or a JSON 4xx, never 5xx (seed ${seed})`, async () => {
    await fc.assert(fc.asyncProperty(request, send), {
      seed,
      numRuns,
      endOnFailure: true,
    });
    // Every route was exercised, and not only refused.
    for (const spec of routes) {
      expect(served.get(`${spec.method} ${spec.path}`) ?? 0, spec.path).toBeGreaterThan(
        numRuns / routes.length / 3,
      );
    }
    const ok = [...statuses].filter(([s]) => s < 300).reduce((n, [, c]) => n + c, 0);
    expect(ok).toBeGreaterThan(numRuns / 50);
  }, 120_000);
});
