/**
 * How the console's page and files are served (lib/console/site.ts), without a browser: the
 * token reaches only a page asked for by this machine's loopback name, inside a JSON block that
 * cannot be broken out of, with headers that keep it out of frames, caches and referrers.
 */
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consoleAssets } from '../../lib/console/assets.ts';
import { consoleSite, indexHtml, isLoopbackHost } from '../../lib/console/site.ts';

let server: Server;
let port = 0;
const warnings: string[] = [];

beforeAll(async () => {
  const site = consoleSite({
    token: 'tok-123',
    target: 'a </script><script>alert(1)</script> target',
    assets: consoleAssets(),
    warn: (message) => warnings.push(message),
  });
  server = createServer((req, res) => {
    void site(req, res).then((handled) => {
      if (!handled) {
        res.writeHead(404);
        res.end('not mine');
      }
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  port = (server.address() as AddressInfo).port;
});

afterAll(() => new Promise<void>((done) => server.close(() => done())));

function get(
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((done, fail) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers }, (res) => {
      let body = '';
      res.on('data', (chunk) => {
        body += chunk;
      });
      res.on('end', () => done({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', fail);
    req.end();
  });
}

describe('the console site', () => {
  it('hands the page its token in a JSON block that the target text cannot break out of', async () => {
    const page = await get('/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    const json = /<script type="application\/json" id="drydock-config">(.*?)<\/script>/.exec(
      page.body,
    )?.[1];
    expect(JSON.parse(json as string)).toEqual({
      token: 'tok-123',
      target: 'a </script><script>alert(1)</script> target',
    });
    expect(page.body.match(/<script/g)).toHaveLength(2);
    expect(page.headers['content-security-policy']).toMatch(
      /script-src 'self'.*frame-ancestors 'none'/,
    );
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.headers['cache-control']).toBe('no-store');
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    expect(indexHtml({ token: 't', target: '<b>' })).toContain('&lt;b&gt;');
  });

  it('serves the page only to its loopback names (no DNS rebinding), and only GET', async () => {
    expect((await get('/', { host: `localhost:${port}` })).status).toBe(200);
    const rebound = await get('/', { host: `attacker.example:${port}` });
    expect(rebound.status).toBe(421);
    expect(rebound.body).not.toContain('tok-123');
    expect((await get('/', { host: '127.0.0.1:1' })).status).toBe(421);
    expect((await get('/', {}, 'POST')).status).toBe(405);
    expect(isLoopbackHost(undefined, port)).toBe(false);
    expect((await get('/v1/leases')).body).toBe('not mine');
  });

  it('bundles web/ with esbuild on the fly, once, with no imports left for the browser', async () => {
    const [script, css] = await Promise.all([get('/console.js'), get('/console.css')]);
    expect(script.status).toBe(200);
    expect(script.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(script.body).not.toMatch(/^\s*import\s/m);
    expect(script.body).toContain('/v1/me');
    expect(css.status).toBe(200);
    expect(css.body).toContain(':focus-visible');
    expect(warnings).toEqual([]);
  });
});
