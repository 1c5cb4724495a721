/**
 * `drydock console` against a deployment: a local server that checks SigV4 the way API Gateway
 * does (test/support/sigv4.ts, as the CLI's tests check it) stands in for the deployed API and
 * passes verified requests on to a real local runtime. The console runs as the real CLI child
 * process; the page in Chromium talks only to it.
 */
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Blueprint } from '../../lambdas/core/model.ts';
import { consoleAssets } from '../../lib/console/assets.ts';
import { ConsoleHostError, startConsoleServer } from '../../lib/console/proxy.ts';
import { type CliProcess, drydock, spawnDrydock } from '../e2e/support.ts';
import { type ReceivedRequest, TEST_CREDENTIALS, validSigV4 } from '../support/sigv4.ts';
import {
  type ConsoleRuntime,
  eventually,
  launchBrowser,
  screenshot,
  startConsoleRuntime,
} from './support.ts';

const REGION = 'eu-west-1';
const STAGE = '/prod';

let env: ConsoleRuntime;
let browser: Browser;
let gateway: Server;
let gatewayUrl = '';
const seen: Array<ReceivedRequest & { verified: boolean }> = [];
let cli: CliProcess | undefined;
let consoleUrl = '';
const saved = { ...process.env };

/** A GET with its own Host header (fetch always sends the URL's). */
function getWithHost(url: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((done, fail) => {
    const req = request(url, { headers: { host } }, (res) => {
      let body = '';
      res.on('data', (chunk) => {
        body += chunk;
      });
      res.on('end', () => done({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', fail);
    req.end();
  });
}

/** API Gateway's stand-in: 403 unless validly signed, else the request goes to the runtime. */
function startGateway(): Promise<void> {
  gateway = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', async () => {
      const received: ReceivedRequest = {
        method: req.method,
        url: req.url,
        headers: req.headers,
        body,
      };
      const verified = await validSigV4(received, REGION);
      seen.push({ ...received, verified });
      if (!verified || !req.url?.startsWith(`${STAGE}/v1/`)) {
        res.writeHead(403, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ message: 'The request signature we calculated does not match' }));
        return;
      }
      const upstream = await fetch(`${env.runtime.url}${req.url.slice(STAGE.length)}`, {
        method: req.method ?? 'GET',
        headers: {
          authorization: `Bearer ${env.runtime.token}`,
          ...(req.headers['content-type'] ? { 'content-type': req.headers['content-type'] } : {}),
          ...(req.headers['if-match'] ? { 'if-match': String(req.headers['if-match']) } : {}),
        },
        ...(body === '' ? {} : { body }),
      });
      res.writeHead(upstream.status, { 'content-type': 'application/json' });
      res.end(await upstream.text());
    });
  });
  return new Promise((done) =>
    gateway.listen(0, '127.0.0.1', () => {
      gatewayUrl = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}${STAGE}`;
      done();
    }),
  );
}

beforeAll(async () => {
  [env, browser] = await Promise.all([
    startConsoleRuntime('proxy'),
    launchBrowser(),
    startGateway(),
  ]);
  const created = await env.api('POST', '/v1/blueprints', {
    id: 'signed',
    type: 'synthetic',
    resourceType: 'host',
    limits: { maxResources: 1 },
  });
  expect(created.status).toBe(201);
  // The console signs with the default AWS credential chain: here, the environment.
  process.env.AWS_ACCESS_KEY_ID = TEST_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = TEST_CREDENTIALS.secretAccessKey;
  process.env.AWS_REGION = REGION;
  delete process.env.AWS_SESSION_TOKEN;
  delete process.env.AWS_PROFILE;
}, 120_000);

afterAll(async () => {
  process.env = saved;
  if (cli && cli.child.exitCode === null) {
    cli.child.kill('SIGINT');
    await cli.done;
  }
  await browser?.close();
  await new Promise<void>((done) => (gateway ? gateway.close(() => done()) : done()));
  await env?.stop();
});

describe('drydock console', () => {
  it('proxies the page’s requests to the API signed with SigV4, and listens on 127.0.0.1 only', async () => {
    cli = spawnDrydock(env.dataDir, ['--url', gatewayUrl, 'console', '--port', '0', '--no-open']);
    consoleUrl = await eventually(
      async () => /at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(cli?.stderr() ?? '')?.[1] ?? '',
      Boolean,
      'drydock console to say where it listens',
      20_000,
    );

    const page = await browser.newPage();
    await page.goto(consoleUrl);
    await page.locator('tr[data-blueprint="signed"] [data-field="state"]').waitFor();
    await expect(page.locator('.target').textContent()).resolves.toBe(gatewayUrl);
    await screenshot(page, 'proxy-overview');

    // A change goes through signed too, its If-Match header and body included.
    await page.goto(`${consoleUrl}#/blueprints/signed`);
    await page.getByRole('button', { name: 'Drain' }).click();
    await page.getByRole('status').filter({ hasText: 'is now draining' }).waitFor();
    const drained = await env.api<{ blueprint: Blueprint }>('GET', '/v1/blueprints/signed');
    expect(drained.body.blueprint.state).toBe('draining');
    await screenshot(page, 'proxy-blueprint');
    await page.close();

    const paths = seen.map((r) => `${r.method} ${r.url?.split('?')[0]}`);
    expect(paths).toEqual(
      expect.arrayContaining([
        'GET /prod/v1/me',
        'GET /prod/v1/pools',
        'GET /prod/v1/blueprints/signed',
        'PATCH /prod/v1/blueprints/signed',
      ]),
    );
    expect(seen.filter((r) => !r.verified).map((r) => r.url)).toEqual([]);
    const patch = seen.find((r) => r.method === 'PATCH');
    expect(patch?.headers['if-match']).toBe('1');
    expect(String(patch?.headers.authorization)).toMatch(/SignedHeaders=[^,]*if-match/);
    // The page's own token never leaves this machine's proxy.
    expect(seen.some((r) => String(r.headers.authorization).startsWith('Bearer'))).toBe(false);

    // Only the page may use it: no token, or another host name (DNS rebinding), is refused.
    const bare = await fetch(`${consoleUrl}v1/me`);
    expect(bare.status).toBe(401);
    const rebound = await getWithHost(consoleUrl, 'evil.example');
    expect(rebound.status).toBe(421);
    expect(rebound.body).toMatch(/answers only to http:\/\/127\.0\.0\.1/);
    expect(rebound.body).not.toContain('drydock-config');

    // Bound to 127.0.0.1, and nothing else accepted.
    const refused = await drydock(env.dataDir, [
      '--url',
      gatewayUrl,
      'console',
      '--host',
      '0.0.0.0',
      '--no-open',
    ]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/listens on 127\.0\.0\.1 only, not '0\.0\.0\.0'/);
    await expect(
      startConsoleServer({
        target: { kind: 'aws', baseUrl: gatewayUrl, region: REGION },
        host: '::',
        port: 0,
        assets: consoleAssets(),
        warn: () => undefined,
      }),
    ).rejects.toBeInstanceOf(ConsoleHostError);

    cli.child.kill('SIGINT');
    const ended = await cli.done;
    expect(ended.code).toBe(130);
  });

  it('without --url, forwards to the local runtime with its bearer token', async () => {
    const local = spawnDrydock(env.dataDir, ['console', '--port', '0', '--no-open']);
    try {
      const url = await eventually(
        async () => /at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(local.stderr())?.[1] ?? '',
        Boolean,
        'drydock console to say where it listens',
        20_000,
      );
      const page = await (await fetch(url)).text();
      const config = JSON.parse(
        /id="drydock-config">(.*?)<\/script>/.exec(page)?.[1] as string,
      ) as { token: string; target: string };
      expect(config.target).toBe(`local runtime · ${env.dataDir}`);
      // The page's token is the console's own, not the runtime's.
      expect(config.token).not.toBe(env.runtime.token);
      const me = await fetch(`${url}v1/me`, {
        headers: { authorization: `Bearer ${config.token}` },
      });
      expect(me.status).toBe(200);
      expect(await me.json()).toMatchObject({ admin: true });
    } finally {
      local.child.kill('SIGINT');
      expect((await local.done).code).toBe(130);
    }
  });
});
