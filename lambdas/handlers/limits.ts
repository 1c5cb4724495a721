/**
 * How big a request may be (issue 15, point 2). Every limit is here, named, and every refusal
 * is a 400 that names the limit it broke, so nothing oversized reaches the engine: no request
 * can make a DynamoDB item over its 400 KB limit (a 500 `store_failure`) or a key over its
 * 1,024/2,048-byte limits. Sizes are UTF-8 bytes, as DynamoDB counts them; a JSON body never
 * decodes to more bytes than it has, so the body limit also bounds what a request can store.
 *
 * The ids in a path are checked for length here, at the HTTP edge, before any route runs; what
 * characters an id may hold is the core's business.
 */
import type { MiddlewareObj } from '@middy/core';
import { z } from 'zod';
import { ValidationError } from '../core/errors.ts';
import { quoted } from '../core/validation.ts';
import type { ApiEvent, ApiResult } from './http.ts';

export const LIMITS = {
  /**
   * Any id in a path (lease, command, blueprint, resource): every id is a name (core/names.ts,
   * at most 64 characters), which the core checks too; this refuses a longer one before any
   * route, with the limit's name.
   */
  pathIdChars: 64,
  /** A lease request's JSON body. */
  leaseBodyBytes: 32 * 1024,
  /** Attributes of a lease request or a blueprint: how many, and their keys and values in all. */
  attributesCount: 64,
  attributesBytes: 8 * 1024,
  /** A command's JSON body: bounds the command item (argv or script, env, cwd) well under 400 KB. */
  commandBodyBytes: 192 * 1024,
  /** argv's arguments in all. */
  argvBytes: 64 * 1024,
  /** A script. */
  scriptBytes: 64 * 1024,
  /** A command's environment: how many variables, and their names and values in all. */
  envCount: 128,
  envBytes: 64 * 1024,
  /** A blueprint's JSON body (create or change): its config is stored in one item. */
  blueprintBodyBytes: 64 * 1024,
  /**
   * How deeply a JSON body may nest. DynamoDB stores 32 levels, and a body nested thousands
   * deep overflows the stack of whatever walks it next (JSON.stringify, the logger).
   */
  bodyDepth: 20,
} as const;

export type LimitName = keyof typeof LIMITS;

const utf8 = (text: string) => Buffer.byteLength(text, 'utf8');

/** The message of a refusal: what was sent, the limit and its name (for the docs and a search). */
export function overLimit(what: string, size: number, limit: LimitName, unit: string): string {
  return `${what} is ${size} ${unit}; the limit is ${LIMITS[limit]} ${unit} (${limit})`;
}

/** A body over `limit` bytes is refused before it is parsed. */
export function bodyLimit(limit: LimitName): MiddlewareObj<ApiEvent, ApiResult> {
  return {
    before: (request) => {
      const body = request.event.body;
      if (typeof body !== 'string') return;
      const bytes = request.event.isBase64Encoded ? Buffer.from(body, 'base64').length : utf8(body);
      if (bytes > LIMITS[limit]) {
        throw new ValidationError(
          `invalid request: ${overLimit('the body', bytes, limit, 'bytes')}`,
        );
      }
    },
  };
}

/**
 * Every path segment is at most LIMITS.pathIdChars characters: ids are the only segments that
 * vary, and a 5,000-character one must be a 400, not a key DynamoDB refuses (a 500).
 */
export function boundedPath(): MiddlewareObj<ApiEvent, ApiResult> {
  return {
    before: (request) => {
      const path = request.event.path ?? '';
      for (const segment of path.split('/')) {
        if (segment.length > LIMITS.pathIdChars) {
          throw new ValidationError(
            `invalid request: ${overLimit(
              `the id ${quoted(segment)} in the path`,
              segment.length,
              'pathIdChars',
              'characters',
            )}`,
          );
        }
      }
    },
  };
}

/** A record whose entries are counted and whose keys and values are bounded in all. */
export function boundedRecord<K extends z.ZodType<string>, V extends z.ZodType<string>>(
  key: K,
  value: V,
  limits: { count: LimitName; bytes: LimitName; what: string },
) {
  return z.record(key, value).superRefine((record, ctx) => {
    const entries = Object.entries(record as Record<string, string>);
    if (entries.length > LIMITS[limits.count]) {
      ctx.addIssue({
        code: 'custom',
        message: overLimit(limits.what, entries.length, limits.count, 'entries'),
      });
    }
    const bytes = entries.reduce((sum, [k, v]) => sum + utf8(k) + utf8(v), 0);
    if (bytes > LIMITS[limits.bytes]) {
      ctx.addIssue({
        code: 'custom',
        message: overLimit(`${limits.what} (names and values)`, bytes, limits.bytes, 'bytes'),
      });
    }
  });
}

/** A string list bounded in all, in UTF-8 bytes. */
export function boundedTotal(limit: LimitName, what: string) {
  return (items: string[], ctx: z.RefinementCtx) => {
    const bytes = items.reduce((sum, item) => sum + utf8(item), 0);
    if (bytes > LIMITS[limit]) {
      ctx.addIssue({ code: 'custom', message: overLimit(what, bytes, limit, 'bytes') });
    }
  };
}

/** A string bounded in UTF-8 bytes (a character count lets a 4-byte-per-character text by). */
export function boundedBytes(limit: LimitName, what: string) {
  return (text: string, ctx: z.RefinementCtx) => {
    const bytes = utf8(text);
    if (bytes > LIMITS[limit]) {
      ctx.addIssue({ code: 'custom', message: overLimit(what, bytes, limit, 'bytes') });
    }
  };
}
