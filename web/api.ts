/**
 * The page's way into the API: same-origin `/v1/*` with the bearer token its server handed it
 * (site.ts). Errors carry the API's own message, which says what to do.
 */

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

export type Query = Record<string, string | number | undefined>;

export class Api {
  readonly #token: string;

  constructor(token: string) {
    this.#token = token;
  }

  get<T>(path: string, query: Query = {}, signal?: AbortSignal): Promise<T> {
    return this.request<T>('GET', path, { query, ...(signal ? { signal } : {}) });
  }

  async request<T>(
    method: string,
    path: string,
    options: {
      query?: Query;
      body?: unknown;
      headers?: Record<string, string>;
      signal?: AbortSignal;
    } = {},
  ): Promise<T> {
    const url = new URL(path, window.location.origin);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined && value !== '') url.searchParams.set(key, String(value));
    }
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: {
          accept: 'application/json',
          authorization: `Bearer ${this.#token}`,
          ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
          ...options.headers,
        },
        ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
        ...(options.signal ? { signal: options.signal } : {}),
      });
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
      throw new ApiError(
        0,
        'unreachable',
        `cannot reach the Drydock server at ${url.origin} (${(err as Error).message}); is it still running? (npm start, or drydock console)`,
      );
    }
    const text = await response.text();
    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (response.ok) return body as T;
    const error = (body as { error?: { code?: string; message?: string }; message?: string })
      ?.error;
    throw new ApiError(
      response.status,
      error?.code ?? `http_${response.status}`,
      error?.message ??
        (body as { message?: string } | undefined)?.message ??
        `${method} ${url.pathname} answered HTTP ${response.status}: ${text.slice(0, 200)}`,
    );
  }
}
