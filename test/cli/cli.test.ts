/**
 * The CLI's pieces that need no runtime: argument parsing, finding the API, SigV4 signing,
 * error messages. The end-to-end behaviour is in test/e2e.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LogEvent } from '../../lambdas/core/model.ts';
import { applySet, blueprintInput } from '../../lib/cli/admin.ts';
import { ApiClient, ApiError, findDataDir, regionOfUrl, resolveTarget } from '../../lib/cli/api.ts';
import type { ApiLease } from '../../lib/cli/lease.ts';
import { endCause, logsPath } from '../../lib/cli/logs.ts';
import { formatDuration, parseAttributes, parseDuration, table } from '../../lib/cli/output.ts';
import { freePort } from '../../lib/local/dynamodb-local.ts';
import { expectedAuthorization, type ReceivedRequest } from '../support/sigv4.ts';

describe('arguments', () => {
  it('parses durations', () => {
    expect(parseDuration('90')).toBe(90);
    expect(parseDuration('90s')).toBe(90);
    expect(parseDuration('30m')).toBe(1800);
    expect(parseDuration('1h30m')).toBe(5400);
    expect(parseDuration('2d')).toBe(172800);
    expect(() => parseDuration('soon', '--ttl')).toThrow(
      /--ttl 'soon' is not a duration; use e\.g\. 90s/,
    );
    expect(() => parseDuration('1h 3x')).toThrow(/not a duration/);
    expect(formatDuration(3725)).toBe('1h2m5s');
    expect(formatDuration(2.25)).toBe('2.3s');
  });

  it('parses attributes, repeated or comma-separated', () => {
    expect(parseAttributes(['platform=linux,arch=x64', 'gpu=none'])).toEqual({
      platform: 'linux',
      arch: 'x64',
      gpu: 'none',
    });
    expect(parseAttributes(undefined)).toEqual({});
    expect(() => parseAttributes(['linux'])).toThrow(/'linux' is not key=value/);
  });

  it('builds a blueprint from options and --set, attributes always strings', () => {
    expect(
      blueprintInput({
        id: 'pool',
        type: 'local-host',
        attributes: { platform: 'linux' },
        maxResources: 3,
        reclaimOnRelease: true,
        set: ['limits.idleTtlSeconds=60', 'attributes.version=17', 'config.root=/srv/hosts'],
      }),
    ).toEqual({
      id: 'pool',
      type: 'local-host',
      attributes: { platform: 'linux', version: '17' },
      limits: { maxResources: 3, reclaimOnRelease: true, idleTtlSeconds: 60 },
      config: { root: '/srv/hosts' },
    });
    expect(() => blueprintInput({ set: [] })).toThrow(/needs id and type/);
    const target: Record<string, unknown> = {};
    applySet(target, 'config.activation.delaySeconds=2');
    expect(target).toEqual({ config: { activation: { delaySeconds: 2 } } });
    expect(() => applySet(target, '__proto__.x=1')).toThrow(/bad path/);
  });

  it('takes a warm pool size from --min-idle, 0 included', () => {
    expect(blueprintInput({ id: 'pool', type: 'synthetic', minIdle: 2, set: [] })).toEqual({
      id: 'pool',
      type: 'synthetic',
      limits: { minIdle: 2 },
    });
    expect(blueprintInput({ id: 'pool', type: 'synthetic', minIdle: 0, set: [] }).limits).toEqual({
      minIdle: 0,
    });
  });

  it('lays out tables', () => {
    expect(
      table(
        ['ID', 'STATUS'],
        [
          ['lease-1', 'active'],
          ['lease-22', undefined],
        ],
      ),
    ).toBe('ID        STATUS\nlease-1   active\nlease-22\n');
  });

  it('picks the logs endpoint from the id', () => {
    expect(logsPath('lease-abc')).toBe('/v1/leases/lease-abc/logs');
    expect(logsPath('res-abc')).toBe('/v1/resources/res-abc/logs');
    expect(logsPath('linux-pool')).toBe('/v1/blueprints/linux-pool/logs');
  });
});

describe('why a lease ended', () => {
  const lease = { id: 'lease-1', status: 'destroyed' } as ApiLease;
  const log = (type: string, message: string): LogEvent =>
    ({ objectId: 'lease-1', seq: `${type}`, at: '', type, message }) as LogEvent;

  it('says how (from the log) and why (the end reason)', () => {
    expect(
      endCause({ ...lease, endReason: 'no blueprint can ever serve this lease' }, [
        log('lease.queued', 'queued'),
        log('lease.broken', 'broken: no blueprint can ever serve this lease'),
        log('lease.destroyed', 'destroyed'),
      ]),
    ).toBe('broke: no blueprint can ever serve this lease');
  });

  it('falls back to the log, never to a blank', () => {
    expect(endCause(lease, [log('lease.expired', 'expired after its 60s TTL')])).toBe(
      'expired: expired after its 60s TTL',
    );
    expect(endCause(lease, [log('lease.queued', 'queued')])).toBe(
      'is destroyed; no end reason recorded, its last log says: queued',
    );
    expect(endCause(lease, [])).toMatch(/no end reason recorded \(see `drydock logs lease-1`\)/);
  });
});

describe('finding the API', () => {
  const root = mkdtempSync(join(tmpdir(), 'drydock-cli-'));
  const env = {} as NodeJS.ProcessEnv;
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('says to run npm start or pass --url when there is no runtime', () => {
    expect(() => resolveTarget({ cwd: root, env })).toThrow(
      /no local Drydock runtime found: no \.drydock\/ directory in .*Start one with `npm start`.*--url/s,
    );
  });

  it('finds the nearest .drydock walking up, and says when it is not running', () => {
    const dataDir = join(root, '.drydock');
    mkdirSync(join(root, 'a', 'b'), { recursive: true });
    mkdirSync(dataDir);
    expect(findDataDir(join(root, 'a', 'b'))).toBe(dataDir);
    expect(() => resolveTarget({ cwd: join(root, 'a', 'b'), env })).toThrow(
      /the local Drydock runtime for .*\.drydock is not running \(no .*local\.json\)/,
    );
    writeFileSync(
      join(dataDir, 'local.json'),
      JSON.stringify({ url: 'http://127.0.0.1:9/', token: 't', pid: 1 }),
    );
    expect(resolveTarget({ cwd: join(root, 'a'), env })).toMatchObject({
      kind: 'local',
      baseUrl: 'http://127.0.0.1:9',
      token: 't',
      dataDir,
    });
  });

  it('uses --url with the region of the execute-api host, or AWS_REGION', () => {
    expect(
      resolveTarget({ url: 'https://abc123.execute-api.eu-west-1.amazonaws.com/prod/', env }),
    ).toEqual({
      kind: 'aws',
      baseUrl: 'https://abc123.execute-api.eu-west-1.amazonaws.com/prod',
      region: 'eu-west-1',
    });
    expect(regionOfUrl(new URL('https://api.example.com'))).toBeUndefined();
    expect(() => resolveTarget({ url: 'https://api.example.com', env })).toThrow(/set AWS_REGION/);
    expect(
      resolveTarget({ url: 'https://api.example.com', env: { AWS_REGION: 'us-west-2' } }),
    ).toMatchObject({
      region: 'us-west-2',
    });
  });

  it('says the runtime is not running when nothing listens', async () => {
    const port = await freePort(); // nothing listens on it any more
    const client = new ApiClient({
      kind: 'local',
      baseUrl: `http://127.0.0.1:${port}`,
      token: 't',
      dataDir: '/x/.drydock',
      infoFile: '/x/.drydock/local.json',
      pid: 4242,
    });
    await expect(client.get('/v1/leases')).rejects.toThrow(
      /the local Drydock runtime at http:\/\/127\.0\.0\.1:\d+ is not running \(connection refused; .* from pid 4242\)\.\nStart it with `npm start`/,
    );
  });
});

describe('talking to the API', () => {
  const requests: Array<{
    method?: string;
    url?: string;
    headers: IncomingHttpHeaders;
    body: string;
  }> = [];
  let reply: { status: number; body: unknown } = { status: 200, body: {} };
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      requests.push({ method: req.method, url: req.url, headers: req.headers, body });
      res.writeHead(reply.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(reply.body));
    });
  });
  let baseUrl = '';

  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/prod`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('sends the bearer token to the local runtime and shows the API error message', async () => {
    const client = new ApiClient({
      kind: 'local',
      baseUrl,
      token: 'sekrit',
      dataDir: '',
      infoFile: '',
    });
    reply = {
      status: 409,
      body: { error: { code: 'conflict', message: 'lease lease-1 is released, not active' } },
    };
    const error = await client
      .post<never>('/v1/leases/lease-1/commands', { argv: ['true'] })
      .catch((e: unknown) => e as ApiError);
    expect(error).toBeInstanceOf(ApiError);
    expect(error.message).toBe(
      'lease lease-1 is released, not active (POST /prod/v1/leases/lease-1/commands: HTTP 409 conflict)',
    );
    expect(requests.at(-1)?.headers.authorization).toBe('Bearer sekrit');
  });

  it('signs requests with SigV4 for execute-api, verifiably', async () => {
    process.env.AWS_ACCESS_KEY_ID = 'AKIDEXAMPLE';
    process.env.AWS_SECRET_ACCESS_KEY = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
    delete process.env.AWS_SESSION_TOKEN;
    delete process.env.AWS_PROFILE;
    const client = new ApiClient({ kind: 'aws', baseUrl, region: 'eu-west-1' });
    reply = { status: 201, body: { lease: { id: 'lease-1' } } };
    await client.post(
      '/v1/leases',
      { type: 'host' },
      { headers: { 'Idempotency-Key': 'k-1' }, query: { a: 'b' } },
    );
    const sent = requests.at(-1);
    const authorization = String(sent?.headers.authorization);
    expect(authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/execute-api\/aws4_request, SignedHeaders=[a-z0-9;-]*host[a-z0-9;-]*, Signature=[0-9a-f]{64}$/,
    );
    expect(authorization).toContain('idempotency-key');

    // Re-sign what the server received at the same instant: the signatures must match.
    expect(await expectedAuthorization(sent as ReceivedRequest, 'eu-west-1')).toBe(authorization);
  });
});
