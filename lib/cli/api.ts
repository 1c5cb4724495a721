/**
 * The CLI's only way into Drydock: the HTTPS API (docs/api-contract.md).
 *
 * Where it goes:
 *   --url / DRYDOCK_URL   a deployed API Gateway stage; requests are SigV4-signed (service
 *                         execute-api) with the default AWS credential chain
 *   otherwise             the local runtime (`npm start`): `<dir>/local.json` gives its URL and
 *                         bearer token, dir = --data-dir, DRYDOCK_DATA_DIR, or the nearest
 *                         `.drydock/` walking up from the current directory
 *
 * Errors say what to do: no runtime found, runtime not running, the API's own message.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { CliError } from './output.ts';

export interface LocalTarget {
  kind: 'local';
  /** Base URL without a trailing slash, e.g. http://127.0.0.1:8787 */
  baseUrl: string;
  token: string;
  dataDir: string;
  infoFile: string;
  pid?: number;
}

export interface AwsTarget {
  kind: 'aws';
  baseUrl: string;
  region: string;
}

export type Target = LocalTarget | AwsTarget;

export interface TargetOptions {
  url?: string;
  dataDir?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** `https://abc.execute-api.eu-west-1.amazonaws.com/prod` -> eu-west-1 */
export function regionOfUrl(url: URL): string | undefined {
  return /\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$/.exec(url.hostname)?.[1];
}

/** The nearest `.drydock` directory at or above `from`. */
export function findDataDir(from: string): string | undefined {
  let dir = resolve(from);
  for (;;) {
    const candidate = join(dir, '.drydock');
    try {
      if (statSync(candidate).isDirectory()) return candidate;
    } catch {
      // not here
    }
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

export function resolveTarget(options: TargetOptions = {}): Target {
  const env = options.env ?? process.env;
  const urlText = options.url ?? env.DRYDOCK_URL;
  if (urlText) {
    let url: URL;
    try {
      url = new URL(urlText);
    } catch {
      throw new CliError(
        `--url '${urlText}' is not a URL; expected e.g. https://abc123.execute-api.eu-west-1.amazonaws.com/prod`,
      );
    }
    const region = regionOfUrl(url) ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
    if (!region) {
      throw new CliError(
        `cannot tell the AWS region of ${url.origin} (not an execute-api URL): set AWS_REGION`,
      );
    }
    return { kind: 'aws', baseUrl: url.href.replace(/\/+$/, ''), region };
  }

  const cwd = options.cwd ?? process.cwd();
  const explicit = options.dataDir ?? env.DRYDOCK_DATA_DIR;
  const dataDir = explicit ? resolve(cwd, explicit) : findDataDir(cwd);
  if (!dataDir) {
    throw new CliError(
      `no local Drydock runtime found: no .drydock/ directory in ${cwd} or any parent, and DRYDOCK_DATA_DIR is not set.\n` +
        'Start one with `npm start` in the drydock checkout (then run drydock from inside it), or pass --url <API URL> (or set DRYDOCK_URL) to use a deployed API.',
    );
  }
  const infoFile = join(dataDir, 'local.json');
  if (!existsSync(infoFile)) {
    throw new CliError(
      `the local Drydock runtime for ${dataDir} is not running (no ${infoFile}).\n` +
        'Start it with `npm start`' +
        (explicit ? ` (with --data-dir ${dataDir})` : '') +
        ', or pass --url <API URL> to use a deployed API.',
    );
  }
  let info: { url?: unknown; token?: unknown; pid?: unknown };
  try {
    info = JSON.parse(readFileSync(infoFile, 'utf8'));
  } catch (err) {
    throw new CliError(
      `cannot read ${infoFile}: ${(err as Error).message}. Restart the runtime (npm start) to rewrite it.`,
    );
  }
  if (typeof info.url !== 'string' || typeof info.token !== 'string') {
    throw new CliError(
      `${infoFile} has no url/token. Restart the runtime (npm start) to rewrite it.`,
    );
  }
  return {
    kind: 'local',
    baseUrl: info.url.replace(/\/+$/, ''),
    token: info.token,
    dataDir,
    infoFile,
    ...(typeof info.pid === 'number' ? { pid: info.pid } : {}),
  };
}

export function describeTarget(target: Target): string {
  return target.kind === 'local'
    ? `the local runtime at ${target.baseUrl} (${target.dataDir})`
    : `${target.baseUrl} (${target.region})`;
}

/** An error response of the API: `{"error": {"code", "message"}}`. */
export class ApiError extends CliError {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

export interface RequestOptions {
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  headers?: Record<string, string>;
  /**
   * Safe to send again after a network error or a 5xx/429 (GETs, idempotent POSTs such as a
   * release or a create with an Idempotency-Key). @default true for GET
   */
  retry?: boolean;
  /** @default 30_000 */
  timeoutMs?: number;
}

export interface Signer {
  sign(request: {
    method: string;
    url: URL;
    headers: Record<string, string>;
    body: string | undefined;
  }): Promise<Record<string, string>>;
}

const RETRY_STATUSES = new Set([429, 502, 503, 504]);
const ATTEMPTS = 4;

function networkCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

export class ApiClient {
  readonly target: Target;
  #signer: Promise<Signer> | undefined;

  constructor(target: Target) {
    this.target = target;
  }

  get<T>(path: string, options: RequestOptions = {}): Promise<T> {
    return this.request<T>('GET', path, options);
  }

  post<T>(path: string, body: unknown, options: RequestOptions = {}): Promise<T> {
    return this.request<T>('POST', path, { ...options, body });
  }

  patch<T>(path: string, body: unknown, options: RequestOptions = {}): Promise<T> {
    return this.request<T>('PATCH', path, { ...options, body });
  }

  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const url = new URL(`${this.target.baseUrl}${path}`);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined && value !== '') url.searchParams.set(key, String(value));
    }
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    const retry = options.retry ?? method === 'GET';
    let lastError: unknown;
    for (let attempt = 1; attempt <= (retry ? ATTEMPTS : 1); attempt++) {
      if (attempt > 1) await new Promise((r) => setTimeout(r, 200 * 2 ** (attempt - 2)));
      let response: Response;
      try {
        const headers = await this.#headers(method, url, body, options.headers ?? {});
        response = await fetch(url, {
          method,
          headers,
          ...(body === undefined ? {} : { body }),
          signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
        });
      } catch (err) {
        if (err instanceof CliError) throw err;
        lastError = this.#networkError(method, url, err);
        // Nothing listens: retrying will not help and the message says what to do.
        if (networkCode(err) === 'ECONNREFUSED') throw lastError;
        continue;
      }
      const text = await response.text();
      if (response.ok) {
        if (text === '') return undefined as T;
        try {
          return JSON.parse(text) as T;
        } catch {
          throw new CliError(
            `${method} ${url.pathname} answered ${response.status} with a body that is not JSON: ${text.slice(0, 200)}`,
          );
        }
      }
      lastError = this.#apiError(method, url, response, text);
      if (!RETRY_STATUSES.has(response.status)) throw lastError;
    }
    throw lastError;
  }

  async #headers(
    method: string,
    url: URL,
    body: string | undefined,
    extra: Record<string, string>,
  ): Promise<Record<string, string>> {
    const headers: Record<string, string> = {
      accept: 'application/json',
      'user-agent': 'drydock-cli',
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...extra,
    };
    if (this.target.kind === 'local') {
      return { ...headers, authorization: `Bearer ${this.target.token}` };
    }
    this.#signer ??= makeSigner(this.target.region);
    return (await this.#signer).sign({ method, url, headers, body });
  }

  #networkError(method: string, url: URL, err: unknown): CliError {
    const code = networkCode(err);
    const target = this.target;
    if (code === 'ECONNREFUSED' && target.kind === 'local') {
      return new CliError(
        `the local Drydock runtime at ${target.baseUrl} is not running (connection refused; ${target.infoFile} is left over${
          target.pid ? ` from pid ${target.pid}` : ''
        }).\nStart it with \`npm start\`.`,
      );
    }
    const reason =
      (err as Error)?.name === 'TimeoutError'
        ? 'no answer within the timeout'
        : `${code ?? ''} ${(err as Error)?.cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error)?.message}`.trim();
    return new CliError(`${method} ${url.origin}${url.pathname} failed: ${reason}`);
  }

  #apiError(method: string, url: URL, response: Response, text: string): ApiError {
    let code = `http_${response.status}`;
    let message = text.slice(0, 500) || response.statusText;
    try {
      const parsed = JSON.parse(text) as {
        error?: { code?: string; message?: string };
        message?: string;
      };
      if (parsed.error?.message) {
        code = parsed.error.code ?? code;
        message = parsed.error.message;
      } else if (parsed.message) {
        // API Gateway's own errors (e.g. a bad signature): {"message": "..."}
        message = parsed.message;
      }
    } catch {
      // not JSON: keep the text
    }
    if (response.status === 403 && this.target.kind === 'aws' && code === `http_403`) {
      message = `${message} (API Gateway refused the SigV4-signed request: check the credentials, region ${this.target.region} and that the principal may invoke this API)`;
    }
    return new ApiError(
      response.status,
      code,
      `${message} (${method} ${url.pathname}: HTTP ${response.status} ${code})`,
    );
  }
}

/** SigV4 (service execute-api) with the default AWS credential chain; `drydock console` signs with it too. */
export async function makeSigner(region: string): Promise<Signer> {
  const [{ SignatureV4 }, { Sha256 }, { fromNodeProviderChain }] = await Promise.all([
    import('@smithy/signature-v4'),
    import('@aws-crypto/sha256-js'),
    import('@aws-sdk/credential-providers'),
  ]);
  const signer = new SignatureV4({
    service: 'execute-api',
    region,
    credentials: fromNodeProviderChain(),
    sha256: Sha256,
  });
  return {
    async sign({ method, url, headers, body }) {
      const query: Record<string, string> = {};
      for (const [key, value] of url.searchParams) query[key] = value;
      try {
        const signed = await signer.sign({
          method,
          protocol: url.protocol,
          hostname: url.hostname,
          ...(url.port ? { port: Number(url.port) } : {}),
          path: url.pathname,
          query,
          headers: { ...headers, host: url.host },
          ...(body === undefined ? {} : { body }),
        });
        // fetch sets Host from the URL itself (the same value that was signed).
        const { host: _host, ...rest } = signed.headers as Record<string, string>;
        return rest;
      } catch (err) {
        throw new CliError(
          `could not sign the request to ${url.origin} with AWS credentials: ${(err as Error).message}\n` +
            'Configure credentials (aws configure, AWS_PROFILE, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), or drop --url to use the local runtime.',
        );
      }
    },
  };
}
