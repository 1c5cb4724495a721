/**
 * The HTTP edge of the api handler: small middy middleware factories and helpers that turn a
 * REST proxy event into a caller and validated input, and any outcome into the JSON responses
 * of docs/api-contract.md. Nothing here knows a route.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { MiddlewareObj } from '@middy/core';
import { HttpError } from '@middy/util';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import type { z } from 'zod';
import type { Caller } from '../core/access.ts';
import { DrydockError, ValidationError } from '../core/errors.ts';
import { callerIdentity, type OwnerGranularity } from '../core/identity.ts';
import { formatZodIssues, quoted } from '../core/validation.ts';

export type ApiEvent = APIGatewayProxyEvent;
export type ApiResult = APIGatewayProxyResult;
/** The Lambda context, plus what `authenticate` learned about the caller. */
export type ApiContext = Context & { caller?: Caller };

export const JSON_HEADERS = { 'content-type': 'application/json' } as const;

export function jsonResponse(
  statusCode: number,
  body: unknown,
  headers: Record<string, string> = {},
): ApiResult {
  return { statusCode, headers: { ...JSON_HEADERS, ...headers }, body: JSON.stringify(body) };
}

/** The request id a caller can quote (API Gateway's, which it also returns as a header). */
export function requestIdOf(event: ApiEvent, context: Context): string {
  return event.requestContext?.requestId || context.awsRequestId || 'unknown';
}

/** A header, case-insensitively (API Gateway passes them as the client sent them). */
export function header(event: ApiEvent, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(event.headers ?? {})) {
    if (key.toLowerCase() === wanted && value !== undefined) return value;
  }
  return undefined;
}

// ---- middlewares ----------------------------------------------------------------------------

/**
 * Who is calling. On AWS, API Gateway has verified the SigV4 signature and reports the
 * principal as `identity.userArn` (`caller` for some federated identities); the local HTTP
 * server puts its bearer-token principal in the same fields. No principal: 401. The caller's
 * principal is the stable owner that ARN stands for (core/identity.ts), not the ARN itself.
 */
export function authenticate(options: {
  isAdmin: (principal: string) => boolean;
  /** How sessions of one role map to owners. @default 'role' */
  ownerGranularity?: OwnerGranularity;
}): MiddlewareObj<ApiEvent, ApiResult, Error, ApiContext> {
  return {
    before: (request) => {
      const identity = request.event.requestContext?.identity;
      const principal = identity?.userArn || identity?.caller;
      if (!principal) {
        throw new DrydockError(
          'unauthenticated',
          'no caller identity: sign the request with SigV4 (AWS IAM credentials), or with the local bearer token',
        );
      }
      // The owner, not the signing session: every session of a role is one owner (identity.ts).
      const { owner, session } = callerIdentity(principal, options.ownerGranularity);
      request.context.caller = {
        principal: owner,
        ...(session === undefined ? {} : { session }),
        admin: options.isAdmin(principal),
      };
    },
  };
}

const STATUS_BY_CODE: Record<string, number> = {
  invalid_request: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  write_conflict: 409,
  busy: 503,
  temporary: 503,
};

/** The response for an error; 4xx messages are the caller's to read, 5xx never leak internals. */
export function errorResponse(err: unknown, requestId: string): ApiResult {
  const { statusCode, code, message } = describeError(err, requestId);
  return jsonResponse(
    statusCode,
    { error: { code, message: capped(message) } },
    statusCode === 503 ? { 'retry-after': '1' } : {},
  );
}

function describeError(
  err: unknown,
  requestId: string,
): { statusCode: number; code: string; message: string } {
  const internal = {
    statusCode: 500,
    code: 'internal',
    message: `internal error; request id ${requestId}`,
  };
  if (err instanceof HttpError) {
    // Raised by middy itself: the JSON body parser and the router.
    if (err.statusCode === 422 || err.statusCode === 415) {
      // The parse error (the caller's own text) when there is one; else why it was refused
      // (a `__proto__` key).
      const cause = (err.cause as { message?: string } | undefined)?.message;
      return {
        statusCode: 400,
        code: 'invalid_request',
        message: cause
          ? `the request body is not valid JSON: ${cause}`
          : `the request body was refused: ${err.message}`,
      };
    }
    if (err.statusCode === 404) {
      const data = (err.cause as { data?: { method?: string; path?: string } } | undefined)?.data;
      return {
        statusCode: 404,
        code: 'not_found',
        message:
          `there is no route ${data?.method ?? ''} ${data?.path ?? ''}`.trim() +
          '; see docs/api-contract.md for the routes under /v1',
      };
    }
    if (!err.expose) return internal;
    return {
      statusCode: err.statusCode,
      code: codeForStatus(err.statusCode),
      message: err.message,
    };
  }
  if (err instanceof DrydockError) {
    const statusCode = STATUS_BY_CODE[err.code];
    if (statusCode === undefined) return internal;
    if (err.code === 'temporary') {
      // Its message names the store operation that was throttled: for the log, not the caller.
      return {
        statusCode,
        code: 'unavailable',
        message: `the service is busy; retry with backoff (request id ${requestId})`,
      };
    }
    if (err.code === 'write_conflict') {
      return {
        statusCode,
        code: 'conflict',
        message: 'the object changed while this request was applied; read it again and retry',
      };
    }
    return {
      statusCode,
      code: statusCode === 503 ? 'unavailable' : err.code,
      message: err.message,
    };
  }
  return internal;
}

/** The longest error message a response carries: every message is for a person to read. */
export const MAX_ERROR_MESSAGE_CHARS = 2000;

/** A backstop: messages quote short prefixes already, but 1,000 problems still add up. */
function capped(message: string): string {
  return message.length > MAX_ERROR_MESSAGE_CHARS
    ? `${message.slice(0, MAX_ERROR_MESSAGE_CHARS)}… (message cut at ${MAX_ERROR_MESSAGE_CHARS} characters)`
    : message;
}

function codeForStatus(status: number): string {
  const codes: Record<number, string> = {
    400: 'invalid_request',
    401: 'unauthenticated',
    403: 'forbidden',
    404: 'not_found',
    409: 'conflict',
  };
  return codes[status] ?? (status >= 500 ? 'internal' : 'invalid_request');
}

/**
 * Turns any error into the contract's error body. Registered first, so its onError runs last
 * and sees what every other middleware and the route left behind.
 */
export function httpErrors(options: {
  logger: Logger;
}): MiddlewareObj<ApiEvent, ApiResult, Error, Context> {
  return {
    onError: (request) => {
      const requestId = requestIdOf(request.event, request.context);
      const response = errorResponse(request.error, requestId);
      const error = request.error;
      if (response.statusCode >= 500) {
        options.logger.error('request failed', {
          requestId,
          statusCode: response.statusCode,
          error,
        });
      } else {
        options.logger.info('request refused', {
          requestId,
          statusCode: response.statusCode,
          reason: error?.message,
        });
      }
      request.response = response;
    },
  };
}

// ---- validation -----------------------------------------------------------------------------

/** Parse with a zod schema; every problem in one ValidationError naming where it is. */
export function parseInput<S extends z.ZodType>(
  schema: S,
  input: unknown,
  where: 'body' | 'query',
): z.output<S> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const problems = formatZodIssues(parsed.error, {
    at: where,
    message: (issue) => {
      if (issue.code !== 'unrecognized_keys') return undefined;
      const noun = where === 'query' ? 'parameter' : 'field';
      // A short prefix of each name, and not all of 20,000 of them.
      const shown = issue.keys.slice(0, 5).map((k) => quoted(k));
      const more = issue.keys.length - shown.length;
      const names = `${shown.join(', ')}${more > 0 ? ` and ${more} more` : ''}`;
      return `unknown ${noun}${issue.keys.length === 1 ? '' : 's'} ${names}`;
    },
  });
  throw new ValidationError(`invalid request: ${problems}`);
}
