/**
 * Serving the web console: `/` (the page), `/console.js` and `/console.css`. Used by the local
 * runtime's HTTP server (`npm start`) and by `drydock console`'s proxy alike.
 *
 * How the page gets its bearer token: the server writes it into the page it serves, as an
 * inline JSON block (`<script type="application/json">`, data, never run). Why not a cookie:
 * cookies are not scoped by port, so every other server on 127.0.0.1 (any dev server) would
 * receive it, and a cookie is sent on requests other pages trigger (CSRF); a token the page
 * puts in an Authorization header is sent by this page only. Other pages cannot read it:
 *   - another origin (another port, a web site) cannot read the page: same-origin policy, and
 *     neither this page nor /v1 sends CORS headers;
 *   - a web site that re-points its own host name at 127.0.0.1 (DNS rebinding) would be same
 *     origin, so the page is only served when the Host header names 127.0.0.1 or localhost
 *     on this port;
 *   - no framing (CSP frame-ancestors, X-Frame-Options), no caching, no referrer.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ConsoleAssets } from './assets.ts';

export interface ConsoleSiteOptions {
  /** The bearer token the page sends to /v1 on this server. */
  token: string;
  /** What the page talks to, shown in its header (e.g. "the local runtime"). */
  target: string;
  assets: ConsoleAssets;
  warn: (message: string) => void;
}

/** Handles a request for the console; false when the path is not one of its files. */
export type ConsoleSite = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

/** Everything the page may load or call is on this server; nothing may frame it. */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

/** Host names the page may be asked for by: this machine's loopback, on the server's port. */
export function isLoopbackHost(host: string | undefined, port: number | undefined): boolean {
  if (!host || port === undefined) return false;
  return [`127.0.0.1:${port}`, `localhost:${port}`].includes(host.toLowerCase());
}

/** `<`, `>` and `&` escaped, so the JSON cannot end the script element it sits in. */
function inlineJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026');
}

function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
  );
}

export function indexHtml(config: { token: string; target: string }): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Drydock console</title>
<link rel="stylesheet" href="/console.css">
<script type="application/json" id="drydock-config">${inlineJson(config)}</script>
<script type="module" src="/console.js"></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <p class="brand">Drydock <span class="target">${escapeHtml(config.target)}</span></p>
  <nav aria-label="Main"><ul id="nav"></ul></nav>
</header>
<div id="problem" role="alert" hidden></div>
<main id="main" tabindex="-1"><p>Loading…</p></main>
<noscript><p>The Drydock console needs JavaScript. The CLI shows the same: <code>npx drydock --help</code>.</p></noscript>
</body>
</html>
`;
}

export function consoleSite(options: ConsoleSiteOptions): ConsoleSite {
  const send = (
    res: ServerResponse,
    status: number,
    type: string,
    body: string,
    extra: Record<string, string> = {},
  ) => {
    res.writeHead(status, { 'content-type': type, ...SECURITY_HEADERS, ...extra });
    res.end(body);
  };
  return async (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path !== '/' && path !== '/index.html' && path !== '/console.js' && path !== '/console.css')
      return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'text/plain; charset=utf-8', `${req.method} ${path}: only GET\n`, {
        allow: 'GET, HEAD',
      });
      return true;
    }
    if (!isLoopbackHost(req.headers.host, req.socket.localPort)) {
      send(
        res,
        421,
        'text/plain; charset=utf-8',
        `The Drydock console answers only to http://127.0.0.1:${req.socket.localPort}/ (or localhost), not to Host ${req.headers.host ?? '(none)'}; open that address instead.\n`,
      );
      return true;
    }
    try {
      if (path === '/console.js') {
        send(res, 200, 'text/javascript; charset=utf-8', await options.assets.script());
      } else if (path === '/console.css') {
        send(res, 200, 'text/css; charset=utf-8', await options.assets.stylesheet());
      } else {
        send(
          res,
          200,
          'text/html; charset=utf-8',
          indexHtml({ token: options.token, target: options.target }),
        );
      }
    } catch (err) {
      options.warn(`drydock: serving the console's ${path} failed: ${(err as Error).message}`);
      send(
        res,
        500,
        'text/plain; charset=utf-8',
        `The console could not be built: ${(err as Error).message}\n`,
      );
    }
    return true;
  };
}
