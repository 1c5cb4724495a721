/**
 * The lease API (docs/api-contract.md, openapi.yaml): API Gateway REST proxy events in, JSON
 * out. Each route parses its input, calls one use case and maps the result; who may call what
 * is the core's business (owners, admins), except the admin-only routes, refused up front.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import httpJsonBodyParser from '@middy/http-json-body-parser';
import httpRouterHandler, { type Route } from '@middy/http-router';
import type { Context } from 'aws-lambda';
import type { z } from 'zod';
import { type Caller, requireAdmin } from '../core/access.ts';
import type { Engine } from '../core/engine.ts';
import { ValidationError } from '../core/errors.ts';
import type { OwnerGranularity } from '../core/identity.ts';
import { renewLease } from '../core/lease-hold.ts';
import {
  blueprintInputSchema,
  cancelCommand,
  createBlueprint,
  getBlueprint,
  getLease,
  getResource,
  listBlueprints,
  listDeadLetters,
  listLeases,
  listResources,
  poolStats,
  readBlueprintLogs,
  readCommand,
  readLeaseLogs,
  readResourceLogs,
  redriveDeadLetters,
  releaseLease,
  releaseResource,
  startCommand,
  submitLeaseRequest,
  updateBlueprint,
} from '../core/use-cases.ts';
import { quoted } from '../core/validation.ts';
import {
  blueprintPatchBody,
  commandBody,
  commandJson,
  commandReadQuery,
  deadLetterQuery,
  leaseJson,
  leaseListQuery,
  leaseQuery,
  leaseRequestBody,
  logPage,
  logQuery,
  noQuery,
  renewBody,
  resourceListQuery,
} from './api-shapes.ts';
import {
  adminPrincipalsFromEnvironment,
  engineFromEnvironment,
  ownerGranularityFromEnvironment,
} from './composition.ts';
import { flushMetrics } from './emf-metrics.ts';
import {
  type ApiContext,
  type ApiEvent,
  type ApiResult,
  authenticate,
  header,
  httpErrors,
  jsonResponse,
  parseInput,
  requestIdOf,
} from './http.ts';
import { bodyLimit, boundedPath, type LimitName } from './limits.ts';
import { type EngineSource, engineOf, isAdmin, type LogIds, logger } from './runtime.ts';

/** `If-Match: 3`, `"3"` or `W/"3"`: the blueprint version the change was made against. */
function expectedVersion(event: ApiEvent): number | undefined {
  const value = header(event, 'if-match');
  if (value === undefined) return undefined;
  const match = /^\s*(?:W\/)?"?(\d{1,9})"?\s*$/.exec(value);
  if (!match) {
    throw new ValidationError(
      `If-Match must be a blueprint version such as 3, got ${quoted(value)}`,
    );
  }
  return Number(match[1]);
}

// ---- response shapes ------------------------------------------------------------------------

const ok = (body: unknown) => jsonResponse(200, body);

// ---- routes ---------------------------------------------------------------------------------

interface RouteInput<B, Q> {
  engine: Engine;
  caller: Caller;
  params: Record<string, string>;
  body: B;
  query: Q;
  event: ApiEvent;
}

interface RouteSpec<B = unknown, Q = unknown> {
  method: 'GET' | 'POST' | 'PATCH';
  /** As in docs/api-contract.md; `{name}` is a path parameter. */
  path: string;
  /** Only ADMIN_PRINCIPALS may call it: 403 before the request is looked at further. */
  admin?: boolean;
  /** The JSON body's schema; routes without one ignore any body. */
  body?: z.ZodType<B>;
  /** The most bytes that body may have (limits.ts). @default 'leaseBodyBytes' */
  bodyLimit?: LimitName;
  /** No body at all reads as `{}` (a POST without one). */
  bodyOptional?: boolean;
  /** @default no query parameters allowed */
  query?: z.ZodType<Q>;
  run(input: RouteInput<B, Q>): Promise<ApiResult>;
}

function route<B = undefined, Q = Record<string, never>>(spec: RouteSpec<B, Q>): RouteSpec {
  return spec as RouteSpec;
}

const param = (params: Record<string, string>, name: string): string => params[name] ?? '';

export const routes: RouteSpec[] = [
  route({
    method: 'GET',
    path: '/v1/me',
    // Lets a client (the web console) show only what the caller may do: no admin buttons for
    // a holder, rather than buttons that answer 403.
    run: async ({ caller }) =>
      ok({
        principal: caller.principal,
        ...(caller.session === undefined ? {} : { session: caller.session }),
        admin: Boolean(caller.admin),
      }),
  }),
  route({
    method: 'POST',
    path: '/v1/leases',
    body: leaseRequestBody,
    bodyLimit: 'leaseBodyBytes',
    run: async ({ engine, caller, body, event }) => {
      const { lease, created } = await submitLeaseRequest(engine, {
        ...body,
        owner: caller.principal,
        ...(caller.session === undefined ? {} : { ownerSession: caller.session }),
        idempotencyKey: header(event, 'idempotency-key'),
      });
      logger.appendKeys({ leaseId: lease.id });
      return jsonResponse(
        created ? 201 : 200,
        { lease: leaseJson(lease) },
        {
          location: `/v1/leases/${lease.id}`,
        },
      );
    },
  }),
  route({
    method: 'GET',
    path: '/v1/leases',
    query: leaseListQuery,
    run: async ({ engine, caller, query }) => {
      const page = await listLeases(engine, query, caller);
      return ok({ ...page, items: page.items.map(leaseJson) });
    },
  }),
  route({
    method: 'GET',
    path: '/v1/leases/{id}',
    query: leaseQuery,
    run: async ({ engine, caller, params, query }) => {
      const lease = await getLease(engine, param(params, 'id'), caller);
      const place =
        query.place === 'true' && lease.status === 'pending'
          ? {
              waitingAhead: await engine.store.countWaitingAhead(
                lease.type,
                lease.requestedAt,
                lease.id,
              ),
            }
          : {};
      return ok({ lease: leaseJson(lease), ...place });
    },
  }),
  route({
    method: 'POST',
    path: '/v1/leases/{id}/release',
    run: async ({ engine, caller, params }) =>
      ok({ lease: leaseJson(await releaseLease(engine, param(params, 'id'), caller)) }),
  }),
  route({
    method: 'POST',
    path: '/v1/leases/{id}/renew',
    body: renewBody,
    bodyLimit: 'leaseBodyBytes',
    bodyOptional: true,
    run: async ({ engine, caller, params, body }) =>
      ok({
        lease: leaseJson(
          await renewLease(engine, param(params, 'id'), caller, { drop: body.drop === true }),
        ),
      }),
  }),
  route({
    method: 'GET',
    path: '/v1/leases/{id}/logs',
    query: logQuery,
    run: async ({ engine, caller, params, query }) =>
      ok(logPage(await readLeaseLogs(engine, param(params, 'id'), caller, query))),
  }),
  route({
    method: 'POST',
    path: '/v1/leases/{id}/commands',
    body: commandBody,
    bodyLimit: 'commandBodyBytes',
    run: async ({ engine, caller, params, body }) => {
      const command = await startCommand(engine, param(params, 'id'), body, caller);
      logger.appendKeys({ commandId: command.id });
      return jsonResponse(
        202,
        { command: commandJson(command) },
        {
          location: `/v1/leases/${command.leaseId}/commands/${command.id}`,
        },
      );
    },
  }),
  route({
    method: 'GET',
    path: '/v1/leases/{id}/commands/{commandId}',
    query: commandReadQuery,
    run: async ({ engine, caller, params, query }) => {
      const { command, output } = await readCommand(
        engine,
        param(params, 'id'),
        param(params, 'commandId'),
        caller,
        {
          ...(query.stdoutFrom === undefined ? {} : { stdout: query.stdoutFrom }),
          ...(query.stderrFrom === undefined ? {} : { stderr: query.stderrFrom }),
        },
      );
      return ok({ command: commandJson(command), output });
    },
  }),
  route({
    method: 'POST',
    path: '/v1/leases/{id}/commands/{commandId}/cancel',
    run: async ({ engine, caller, params }) => {
      const command = await cancelCommand(
        engine,
        param(params, 'id'),
        param(params, 'commandId'),
        caller,
      );
      return jsonResponse(202, { command: commandJson(command) });
    },
  }),
  route({
    method: 'GET',
    path: '/v1/blueprints',
    run: async ({ engine }) => ok({ items: await listBlueprints(engine) }),
  }),
  route({
    method: 'POST',
    path: '/v1/blueprints',
    admin: true,
    body: blueprintInputSchema,
    bodyLimit: 'blueprintBodyBytes',
    run: async ({ engine, body }) => {
      const blueprint = await createBlueprint(engine, body);
      return jsonResponse(201, { blueprint }, { location: `/v1/blueprints/${blueprint.id}` });
    },
  }),
  route({
    method: 'GET',
    path: '/v1/blueprints/{id}',
    run: async ({ engine, params }) =>
      ok({ blueprint: await getBlueprint(engine, param(params, 'id')) }),
  }),
  route({
    method: 'PATCH',
    path: '/v1/blueprints/{id}',
    admin: true,
    body: blueprintPatchBody,
    bodyLimit: 'blueprintBodyBytes',
    run: async ({ engine, params, body, event }) => {
      const blueprint = await updateBlueprint(
        engine,
        param(params, 'id'),
        body,
        expectedVersion(event),
      );
      return ok({ blueprint });
    },
  }),
  route({
    method: 'GET',
    path: '/v1/blueprints/{id}/logs',
    query: logQuery,
    run: async ({ engine, params, query }) =>
      ok(logPage(await readBlueprintLogs(engine, param(params, 'id'), query))),
  }),
  route({
    method: 'GET',
    path: '/v1/pools',
    run: async ({ engine }) => ok({ pools: await poolStats(engine) }),
  }),
  route({
    method: 'GET',
    path: '/v1/resources',
    admin: true,
    query: resourceListQuery,
    run: async ({ engine, caller, query }) => ok(await listResources(engine, query, caller)),
  }),
  route({
    method: 'GET',
    path: '/v1/resources/{id}',
    admin: true,
    run: async ({ engine, params }) =>
      ok({ resource: await getResource(engine, param(params, 'id')) }),
  }),
  route({
    method: 'GET',
    path: '/v1/resources/{id}/logs',
    admin: true,
    query: logQuery,
    run: async ({ engine, caller, params, query }) =>
      ok(logPage(await readResourceLogs(engine, param(params, 'id'), caller, query))),
  }),
  route({
    method: 'POST',
    path: '/v1/resources/{id}/release',
    admin: true,
    run: async ({ engine, caller, params }) =>
      ok({ resource: await releaseResource(engine, param(params, 'id'), caller) }),
  }),
  route({
    method: 'GET',
    path: '/v1/admin/dlq',
    admin: true,
    query: deadLetterQuery,
    run: async ({ engine, caller, query }) =>
      ok(await listDeadLetters(engine, caller, query.limit)),
  }),
  route({
    method: 'POST',
    path: '/v1/admin/dlq/redrive',
    admin: true,
    run: async ({ engine, caller }) => ok({ redrive: await redriveDeadLetters(engine, caller) }),
  }),
];

/** The ids a route's path names, for the log lines of the request. */
function idsOf(path: string, params: Record<string, string>): LogIds {
  const [, collection] = path.split('/').slice(1);
  const objectId = params.id;
  if (objectId === undefined) return {};
  const ids: LogIds =
    collection === 'leases'
      ? { leaseId: objectId }
      : collection === 'resources'
        ? { resourceId: objectId }
        : { blueprintId: objectId };
  return params.commandId ? { ...ids, commandId: params.commandId } : ids;
}

/** A route whose body may be left out: none at all reads as `{}`. */
function emptyBodyAsObject(): middy.MiddlewareObj<ApiEvent, ApiResult> {
  return {
    before: (request) => {
      const { body } = request.event;
      if (body === null || body === undefined || body.trim() === '') request.event.body = '{}';
    },
  };
}

/** Admin-only routes refuse everyone else before their body is even parsed. */
function adminOnly(what: string): middy.MiddlewareObj<ApiEvent, ApiResult> {
  return {
    before: (request) => {
      requireAdmin(callerOf(request.context), what);
    },
  };
}

function callerOf(context: Context): Caller {
  const { caller } = context as ApiContext;
  if (!caller) throw new Error('authenticate() did not run before the route');
  return caller;
}

function toRouterRoute(spec: RouteSpec, engine: EngineSource): Route<ApiEvent, ApiResult> {
  const run = async (event: ApiEvent, context: Context): Promise<ApiResult> => {
    const params = Object.fromEntries(
      Object.entries(event.pathParameters ?? {}).filter(
        (entry): entry is [string, string] => entry[1] !== undefined,
      ),
    );
    logger.appendKeys({ ...idsOf(spec.path, params) });
    const query = parseInput(spec.query ?? noQuery, event.queryStringParameters ?? {}, 'query');
    const body = spec.body ? parseInput(spec.body, event.body, 'body') : undefined;
    const response = await spec.run({
      engine: engineOf(engine),
      caller: callerOf(context),
      params,
      body,
      query,
      event,
    });
    logger.info('request served', {
      requestId: requestIdOf(event, context),
      method: spec.method,
      route: spec.path,
      statusCode: response.statusCode,
    });
    return response;
  };
  if (!spec.admin && !spec.body) return { method: spec.method, path: spec.path, handler: run };
  const handler = middy<ApiEvent, ApiResult>(run);
  if (spec.admin) handler.use(adminOnly(`${spec.method} ${spec.path}`));
  // Any content type: callers that forget `content-type: application/json` still get served,
  // and a body that is not JSON is refused as such (400) rather than as a media type.
  if (spec.body) {
    if (spec.bodyOptional) handler.use(emptyBodyAsObject());
    handler.use(bodyLimit(spec.bodyLimit ?? 'leaseBodyBytes'));
    handler.use(httpJsonBodyParser({ disableContentTypeCheck: true }));
  }
  return { method: spec.method, path: spec.path, handler };
}

export interface ApiHandlerDeps {
  engine: EngineSource;
  /** Who may administer (the ADMIN_PRINCIPALS format). @default nobody */
  admins?: string;
  /** Whether each session of a role is its own owner (OWNER_GRANULARITY). @default 'role' */
  ownerGranularity?: OwnerGranularity;
}

/** The lease API Lambda handler on `deps.engine`. */
export function makeApiHandler(deps: ApiHandlerDeps) {
  const admins = deps.admins ?? '';
  return middy<ApiEvent, ApiResult, Error, ApiContext>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(flushMetrics(deps.engine))
    .use(httpErrors({ logger }))
    .use(
      authenticate({
        isAdmin: (principal) => isAdmin(principal, admins),
        ownerGranularity: deps.ownerGranularity ?? 'role',
      }),
    )
    .use(boundedPath())
    .handler(
      httpRouterHandler<ApiEvent, ApiResult>({
        routes: routes.map((spec) => toRouterRoute(spec, deps.engine)),
      }),
    );
}

export const handler = makeApiHandler({
  engine: engineFromEnvironment,
  admins: adminPrincipalsFromEnvironment(),
  ownerGranularity: ownerGranularityFromEnvironment(),
});
