/**
 * The API Gateway stand-in: an HTTP server on 127.0.0.1 that checks a bearer token (where API
 * Gateway checks SigV4), turns each request under /v1 into the REST proxy event API Gateway
 * would send for `ANY /v1/{proxy+}`, and answers with what the api handler returns.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { lambdaContext, restProxyEvent } from './lambda-events.ts';
import { errorText } from './process.ts';

const MAX_BODY_BYTES = 10 * 1024 * 1024;

export interface ApiRequest {
  method: string;
  /** Path with query string, e.g. `/v1/leases?status=active`. */
  url: string;
  /** Raw header pairs as received (names keep their case, as API Gateway passes them). */
  rawHeaders: string[];
  body: string;
  sourceIp: string;
  /** Who sent it, when not the runtime's own user (a holder token, see `holders`). */
  principal?: string;
}

export type InvokeApi = (request: ApiRequest) => Promise<APIGatewayProxyResult>;

/**
 * A REST API proxy event as API Gateway builds it for `ANY /v1/{proxy+}` on stage `local`
 * with IAM auth: the caller's principal is `requestContext.identity.userArn`.
 */
export function toProxyEvent(request: ApiRequest, principal: string): APIGatewayProxyEvent {
  const headers: Array<[string, string]> = [];
  for (let i = 0; i + 1 < request.rawHeaders.length; i += 2) {
    const name = request.rawHeaders[i] as string;
    // Never hand the bearer token to the handler: on AWS the SigV4 header is consumed by
    // API Gateway too (it does pass it on, but nothing downstream needs it).
    if (name.toLowerCase() === 'authorization') continue;
    headers.push([name, request.rawHeaders[i + 1] as string]);
  }
  return restProxyEvent({
    method: request.method,
    url: request.url,
    headers,
    body: request.body === '' ? null : request.body,
    principal,
    sourceIp: request.sourceIp,
  });
}

/**
 * Invokes the api handler as API Gateway's Lambda proxy integration does, on behalf of
 * `principal` (every request with the token is that one local user).
 */
export function apiInvoker(
  api: (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult>,
  principal: string,
  warn: (message: string) => void,
): InvokeApi {
  return async (request) => {
    const event = toProxyEvent(request, request.principal ?? principal);
    try {
      return await api(event, lambdaContext('api', 29_000));
    } catch (err) {
      // API Gateway answers a crashed integration with a bare 502; say a little more.
      warn(`drydock: api handler threw on ${request.method} ${request.url}: ${errorText(err)}`);
      return {
        statusCode: 500,
        headers: { 'content-type': 'application/json' },
        body: errorBody('internal', `internal error; request id ${event.requestContext.requestId}`),
      };
    }
  };
}

/** The token of this data dir, created (random, 0600) on first use. */
export function loadOrCreateToken(tokenFile: string): string {
  if (existsSync(tokenFile)) {
    const token = readFileSync(tokenFile, 'utf8').trim();
    if (token.length >= 32) return token;
  }
  const token = randomBytes(32).toString('base64url');
  writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  chmodSync(tokenFile, 0o600);
  return token;
}

function sameToken(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export interface ApiServerOptions {
  port: number;
  token: string;
  /** Named in 401 answers: where the caller finds the token. */
  tokenFile: string;
  warn: (message: string) => void;
  /**
   * Bearer tokens of other callers, token → principal: holders who are no admins (tests and
   * demos of what a holder sees). @default none
   */
  holders?: ReadonlyMap<string, string>;
  /**
   * Serves the web console outside /v1 (lib/console/site.ts): answers true when it handled the
   * request. Without it, everything outside /v1 is 404 (after the token check).
   */
  site?: (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;
}

export interface ApiServer {
  /** The port it listens on (the one asked for, or the free one picked for 0). */
  port: number;
  /** Starts passing requests to `invoke`; until then they are answered 503. */
  serve(invoke: InvokeApi): void;
  /** Stops accepting and closes every connection (keep-alive ones after 2 s). */
  close(): Promise<void>;
}

/**
 * Listens on 127.0.0.1:`port`. Taken before the handlers exist, so a busy port fails in a
 * moment rather than after everything else started.
 */
export async function openApiServer(options: ApiServerOptions): Promise<ApiServer> {
  let invokeApi: InvokeApi | undefined;
  const server = createServer((req, res) => void serve(req, res, options, invokeApi));
  await new Promise<void>((done, fail) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      fail(
        err.code === 'EADDRINUSE'
          ? new Error(
              `port ${options.port} on 127.0.0.1 is in use (another drydock runtime?); pass --port <n> (or DRYDOCK_PORT), or --port 0 for any free port`,
              { cause: err },
            )
          : err,
      ),
    );
    server.listen(options.port, '127.0.0.1', () => done());
  });
  return {
    port: (server.address() as AddressInfo).port,
    serve: (invoke) => {
      invokeApi = invoke;
    },
    close: () => closeServer(server),
  };
}

function errorBody(code: string, message: string): string {
  return JSON.stringify({ error: { code, message } });
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

/** The principal a bearer token stands for: undefined for the runtime's own user. */
function callerOf(
  given: string,
  options: ApiServerOptions,
): { ok: true; principal?: string } | { ok: false } {
  if (sameToken(given, options.token)) return { ok: true };
  for (const [token, principal] of options.holders ?? []) {
    if (sameToken(given, token)) return { ok: true, principal };
  }
  return { ok: false };
}

async function serve(
  req: IncomingMessage,
  res: ServerResponse,
  options: ApiServerOptions,
  invokeApi: ((request: ApiRequest) => Promise<APIGatewayProxyResult>) | undefined,
): Promise<void> {
  const { tokenFile, warn } = options;
  const send = (status: number, body: string, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(body);
  };
  try {
    const url = req.url ?? '/';
    // The console's page and files need no token: the page is how the browser gets it.
    if (options.site && !/^\/v1(\/|$|\?)/.test(url) && (await options.site(req, res))) return;
    const auth = req.headers.authorization ?? '';
    const given = /^Bearer (.+)$/i.exec(auth)?.[1]?.trim();
    const caller = given ? callerOf(given, options) : { ok: false as const };
    if (!given || !caller.ok) {
      send(
        401,
        errorBody(
          'unauthenticated',
          `${given ? 'wrong' : 'missing'} bearer token: send "Authorization: Bearer <token>" with the token from ${tokenFile}`,
        ),
        { 'www-authenticate': 'Bearer' },
      );
      return;
    }
    if (!invokeApi) {
      send(
        503,
        errorBody('temporary', 'the local runtime is still starting; try again in a moment'),
        {
          'retry-after': '1',
        },
      );
      return;
    }
    if (!/^\/v1(\/|$|\?)/.test(url)) {
      send(
        404,
        errorBody('not_found', `no route ${req.method} ${url.split('?')[0]}; the API is under /v1`),
      );
      return;
    }
    const body = await readBody(req);
    if (body === undefined) {
      send(413, errorBody('invalid_request', `request body over ${MAX_BODY_BYTES} bytes`));
      return;
    }
    const result = await invokeApi({
      method: req.method ?? 'GET',
      url,
      rawHeaders: req.rawHeaders,
      body,
      sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
      ...(caller.principal ? { principal: caller.principal } : {}),
    });
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(result.headers ?? {})) headers[name] = String(value);
    for (const [name, values] of Object.entries(result.multiValueHeaders ?? {})) {
      headers[name] = values.map(String);
    }
    res.writeHead(result.statusCode, headers);
    res.end(result.isBase64Encoded ? Buffer.from(result.body, 'base64') : result.body);
  } catch (err) {
    warn(`drydock: serving ${req.method} ${req.url} failed: ${errorText(err)}`);
    if (!res.headersSent)
      send(500, errorBody('internal', 'internal error in the local API server'));
    else res.destroy();
  }
}

function closeServer(server: Server): Promise<void> {
  return new Promise((done) => {
    server.close(() => done());
    // Keep-alive connections from CLIs would hold close() open.
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), 2_000).unref();
  });
}
