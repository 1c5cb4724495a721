/**
 * `drydock console`'s server (like `kubectl proxy`): the console's files, and `/v1/*` forwarded
 * to the API the CLI would use, each request signed there with the user's own credentials
 * (SigV4 for a deployment, the runtime's bearer token locally). No new auth system: the page
 * holds only a random token of this server's session (handed over as by the local runtime,
 * see site.ts), so other pages on this machine cannot make it act for the user.
 *
 * It listens on 127.0.0.1 only, and refuses anything else: whoever reaches it acts with the
 * user's AWS credentials.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { makeSigner, type Target } from '../cli/api.ts';
import type { ConsoleAssets } from './assets.ts';
import { consoleSite, isLoopbackHost } from './site.ts';

export const CONSOLE_HOST = '127.0.0.1';
export const DEFAULT_CONSOLE_PORT = 8788;
const MAX_BODY_BYTES = 10 * 1024 * 1024;

/** Request headers the API reads; everything else (cookies, the page's token) stays here. */
const FORWARDED_REQUEST_HEADERS = ['accept', 'content-type', 'if-match', 'idempotency-key'];
/** Response headers passed back to the page. */
const FORWARDED_RESPONSE_HEADERS = ['content-type', 'etag', 'location', 'retry-after'];

export class ConsoleHostError extends Error {
  constructor(host: string) {
    super(
      `drydock console listens on ${CONSOLE_HOST} only, not '${host}': it forwards requests signed with your AWS credentials, so anyone who could reach it would act as you. To use it from another machine, forward the port over SSH (ssh -L 8788:127.0.0.1:8788 …).`,
    );
    this.name = 'ConsoleHostError';
  }
}

/** Adds the credentials of `target` to a request for it: SigV4 or the local bearer token. */
export type Authorize = (request: {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body: string | undefined;
}) => Promise<Record<string, string>>;

export function authorizerFor(target: Target): Authorize {
  if (target.kind === 'local') {
    return async ({ headers }) => ({ ...headers, authorization: `Bearer ${target.token}` });
  }
  const signer = makeSigner(target.region);
  return async (request) => (await signer).sign(request);
}

export interface ConsoleServerOptions {
  target: Target;
  /** @default 127.0.0.1; anything else is refused (ConsoleHostError) */
  host?: string;
  /** 0 picks a free one. @default 8788 */
  port?: number;
  assets: ConsoleAssets;
  /** @default authorizerFor(target) */
  authorize?: Authorize;
  warn: (message: string) => void;
}

export interface ConsoleServer {
  /** http://127.0.0.1:<port>/ */
  url: string;
  port: number;
  close(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((done, fail) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () =>
      done(size > MAX_BODY_BYTES ? undefined : Buffer.concat(chunks).toString('utf8')),
    );
    req.on('error', fail);
  });
}

function sameToken(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

function errorJson(res: ServerResponse, status: number, code: string, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify({ error: { code, message } }));
}

export async function startConsoleServer(options: ConsoleServerOptions): Promise<ConsoleServer> {
  const host = options.host ?? CONSOLE_HOST;
  if (host !== CONSOLE_HOST) throw new ConsoleHostError(host);
  const { target, warn } = options;
  const token = randomBytes(32).toString('base64url');
  const authorize = options.authorize ?? authorizerFor(target);
  const site = consoleSite({
    token,
    target: target.kind === 'aws' ? target.baseUrl : `local runtime · ${target.dataDir}`,
    assets: options.assets,
    warn,
  });

  const forward = async (req: IncomingMessage, res: ServerResponse, path: string) => {
    // The page's own token: other pages on this machine have none, so they cannot use us.
    const given = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1]?.trim();
    if (!given || !sameToken(given, token) || !isLoopbackHost(req.headers.host, port())) {
      errorJson(
        res,
        401,
        'unauthenticated',
        'this is the drydock console proxy: open the console page it serves; the CLI talks to the API directly',
      );
      return;
    }
    const body = await readBody(req);
    if (body === undefined) {
      errorJson(res, 413, 'invalid_request', `request body over ${MAX_BODY_BYTES} bytes`);
      return;
    }
    const url = new URL(`${target.baseUrl}${path}`);
    const headers: Record<string, string> = { 'user-agent': 'drydock-console' };
    for (const name of FORWARDED_REQUEST_HEADERS) {
      const value = req.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    const method = req.method ?? 'GET';
    const sent = body === '' ? undefined : body;
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: await authorize({ method, url, headers, body: sent }),
        ...(sent === undefined ? {} : { body: sent }),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      errorJson(
        res,
        502,
        'temporary',
        `the console proxy could not reach ${url.origin}: ${(err as Error).message}`,
      );
      return;
    }
    const out: Record<string, string> = { 'cache-control': 'no-store' };
    for (const name of FORWARDED_RESPONSE_HEADERS) {
      const value = response.headers.get(name);
      if (value !== null) out[name] = value;
    }
    const text = await response.text();
    res.writeHead(response.status, out);
    res.end(text);
  };

  const server: Server = createServer((req, res) => {
    void (async () => {
      const path = req.url ?? '/';
      try {
        if (/^\/v1(\/|$|\?)/.test(path)) await forward(req, res, path);
        else if (!(await site(req, res)))
          errorJson(res, 404, 'not_found', `no ${path} here: the console is at /`);
      } catch (err) {
        warn(`drydock console: ${req.method} ${path} failed: ${(err as Error).message}`);
        if (!res.headersSent) errorJson(res, 500, 'internal', 'the console proxy failed');
        else res.destroy();
      }
    })();
  });
  const port = () => (server.address() as AddressInfo | null)?.port;
  await new Promise<void>((done, fail) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      fail(
        err.code === 'EADDRINUSE'
          ? new Error(
              `port ${options.port ?? DEFAULT_CONSOLE_PORT} on ${host} is in use (another drydock console?); pass --port <n>, or --port 0 for any free port`,
              { cause: err },
            )
          : err,
      ),
    );
    server.listen(options.port ?? DEFAULT_CONSOLE_PORT, host, () => done());
  });
  const listening = port() as number;
  return {
    url: `http://${host}:${listening}/`,
    port: listening,
    close: () =>
      new Promise<void>((done) => {
        server.close(() => done());
        server.closeAllConnections();
      }),
  };
}
