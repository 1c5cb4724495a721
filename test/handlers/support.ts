/**
 * Drives the real handlers the way AWS does: API Gateway REST proxy events (IAM auth) into the
 * api handler, SQS events built from messages really received from the queue into the worker,
 * against DynamoDB Local and the SQS emulator. Every API response is checked against
 * openapi.yaml (status documented, required fields present, types right).
 *
 * Logs: the handlers' logger reads its level when it is created, so test files silence it in a
 * `vi.hoisted` block (before imports run); DRYDOCK_TEST_LOGS=1 shows the JSON logs.
 */

import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteMessageCommand } from '@aws-sdk/client-sqs';
import type {
  APIGatewayProxyEvent,
  APIGatewayProxyResult,
  Context,
  SQSBatchResponse,
  SQSEvent,
  SQSRecord,
} from 'aws-lambda';
import { expect } from 'vitest';
import { parse } from 'yaml';
import { deployedRegistry } from '../../lambdas/blueprints/registry.ts';
import { type Engine, type EngineSettings, makeEngine } from '../../lambdas/core/engine.ts';
import type { Metrics } from '../../lambdas/core/metrics.ts';
import type { Clock, Store } from '../../lambdas/core/ports.ts';
import { systemClock } from '../../lambdas/core/ports.ts';
import { makeApiHandler } from '../../lambdas/handlers/api.ts';
import { makeSetupHandler } from '../../lambdas/handlers/setup.ts';
import { makeSweepHandler } from '../../lambdas/handlers/sweep.ts';
import { makeWorkerHandler } from '../../lambdas/handlers/worker.ts';
import { SqsDeadLetterQueue } from '../../lambdas/queue/sqs-dead-letters.ts';
import { receiveUpdates, SqsWorkQueue } from '../../lambdas/queue/sqs-queue.ts';
import { DynamoStore } from '../../lambdas/store/dynamo-store.ts';
import {
  restProxyEvent,
  lambdaContext as sharedLambdaContext,
  sqsRecord,
} from '../../lib/local/lambda-events.ts';
import { type FreshQueue, freshQueue, freshTable, waitFor } from '../support/env.ts';

export const ACCOUNT = '123456789012';
/** An admin: a session of the role the handlers are given as their admins. */
export const ADMIN_ROLE = `arn:aws:iam::${ACCOUNT}:role/drydock-admin`;
export const ADMIN = `arn:aws:sts::${ACCOUNT}:assumed-role/drydock-admin/alice`;
export const CI = `arn:aws:iam::${ACCOUNT}:user/ci`;
export const OTHER = `arn:aws:iam::${ACCOUNT}:user/mallory`;

/** Test-sized engine settings (no blueprint cache: tests change blueprints). */
export const HANDLER_TEST_SETTINGS: Partial<EngineSettings> = {
  blueprintCacheMs: 0,
  backoffBaseSeconds: 1,
  backoffCapSeconds: 2,
  strandAfterSeconds: 60,
};

export interface HandlerEngineOptions {
  /** @default the system clock */
  clock?: Clock;
  /** The setup-workflow starter. @default none: setup is driven from the queue */
  startSetup?: (resourceId: string) => Promise<void>;
  /** Over HANDLER_TEST_SETTINGS. */
  settings?: Partial<EngineSettings>;
  /** Where the engine's metrics go (metrics.test.ts: EMF as on AWS). @default none */
  metrics?: Metrics;
  /** Wraps the DynamoDB store (an outage injected by dead-letters.test.ts). @default none */
  wrapStore?: (store: Store) => Store;
}

/** Where a handler test's engine keeps its state. */
export interface HandlerParts {
  dynamo: DynamoDBClient;
  tableName: string;
  queue: FreshQueue;
  dataDir: string;
}

/** An engine like the one composition.ts builds on AWS, on these parts. */
export function handlerEngine(parts: HandlerParts, options: HandlerEngineOptions = {}): Engine {
  const clock = options.clock ?? systemClock;
  const store = new DynamoStore({ client: parts.dynamo, tableName: parts.tableName, clock });
  return makeEngine({
    store: options.wrapStore ? options.wrapStore(store) : store,
    queue: new SqsWorkQueue({ client: parts.queue.client, queueUrl: parts.queue.queueUrl }),
    clock,
    registry: deployedRegistry(),
    dataDir: parts.dataDir,
    settings: { ...HANDLER_TEST_SETTINGS, ...options.settings },
    ...(options.startSetup ? { startSetup: options.startSetup } : {}),
    ...(options.metrics ? { metrics: options.metrics } : {}),
    // The emulator has no message move tasks (as in the local runtime).
    deadLetters: new SqsDeadLetterQueue({
      client: parts.queue.client,
      queueUrl: parts.queue.dlqUrl,
      sourceQueueUrl: parts.queue.queueUrl,
      redrive: 'one-by-one',
    }),
  });
}

/** The four Lambda handlers on one engine, as the stack deploys them (ADMIN_ROLE is admin). */
export function handlersOn(engine: Engine) {
  return {
    api: makeApiHandler({ engine, admins: ADMIN_ROLE }),
    worker: makeWorkerHandler({ engine }),
    sweep: makeSweepHandler({ engine }),
    setup: makeSetupHandler({ engine }),
  };
}

export interface HandlerEnv extends HandlerParts {
  engine: Engine;
  handlers: ReturnType<typeof handlersOn>;
  /** Sends a request through the api handler; the response must match openapi.yaml. */
  api(request: ApiRequest): Promise<ApiResponse>;
  invokeWorker(event: SQSEvent): Promise<SQSBatchResponse>;
  /** Feed the worker from the queue until `until` holds (or the deadline passes). */
  driveWorker<T>(
    until: () => Promise<T>,
    options?: { timeoutMs?: number; message?: string },
  ): Promise<NonNullable<T>>;
}

/** A fresh table and queue for this test file, and the handlers on an engine over them. */
export async function handlerEnv(options: HandlerEngineOptions = {}): Promise<HandlerEnv> {
  const [{ client: dynamo, tableName }, queue] = await Promise.all([
    freshTable('handlers'),
    freshQueue('work'),
  ]);
  const dataDir = mkdtempSync(join(tmpdir(), 'drydock-handlers-'));
  const parts = { dynamo, tableName, queue, dataDir };
  const engine = handlerEngine(parts, options);
  const handlers = handlersOn(engine);
  const invokeWorker = async (event: SQSEvent) =>
    (await handlers.worker(event, lambdaContext('worker', 60_000))) as SQSBatchResponse;
  return {
    ...parts,
    engine,
    handlers,
    api: (request) => callApi(handlers.api, request),
    invokeWorker,
    driveWorker: (until, driveOptions = {}) =>
      driveWorker(queue, invokeWorker, until, driveOptions),
  };
}

export function lambdaContext(name: string, timeoutMs = 30_000): Context {
  return sharedLambdaContext(name, timeoutMs);
}

// ---- API Gateway ----------------------------------------------------------------------------

export interface ApiRequest {
  method: string;
  /** Path with query string, e.g. `/v1/leases?status=active`. */
  path: string;
  /** The signing principal; null = no identity (an unauthenticated request). */
  principal?: string | null;
  /** A value to send as JSON, or a raw string (sent as is). */
  body?: unknown;
  headers?: Record<string, string>;
}

/** A REST API proxy event as API Gateway sends it for `ANY /v1/{proxy+}` with AWS_IAM auth. */
export function restEvent(request: ApiRequest): APIGatewayProxyEvent {
  const principal = request.principal === undefined ? CI : request.principal;
  const body =
    request.body === undefined
      ? null
      : typeof request.body === 'string'
        ? request.body
        : JSON.stringify(request.body);
  const headers: Record<string, string> = {
    Host: 'abc123.execute-api.us-east-1.amazonaws.com',
    'User-Agent': 'drydock-test',
    'X-Amz-Date': '20260101T000000Z',
    Authorization:
      'AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20260101/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=0',
    'X-Forwarded-Proto': 'https',
    ...(body === null ? {} : { 'Content-Type': 'application/json' }),
    ...request.headers,
  };
  return restProxyEvent(
    {
      method: request.method,
      url: request.path,
      headers: Object.entries(headers),
      body,
      principal,
      sourceIp: '203.0.113.7',
    },
    { accountId: ACCOUNT, apiId: 'abc123', stage: 'prod' },
  );
}

export interface ApiResponse {
  status: number;
  headers: Record<string, string>;
  // biome-ignore lint/suspicious/noExplicitAny: tests read response bodies freely.
  body: any;
  raw: APIGatewayProxyResult;
  requestId: string;
}

type ApiHandler = ReturnType<typeof makeApiHandler>;

/** Sends a request through an api handler; the response must match openapi.yaml. */
export async function callApi(handler: ApiHandler, request: ApiRequest): Promise<ApiResponse> {
  const event = restEvent(request);
  const raw = (await handler(event, lambdaContext('api'))) as APIGatewayProxyResult;
  const headers = Object.fromEntries(
    Object.entries(raw.headers ?? {}).map(([k, v]) => [k.toLowerCase(), String(v)]),
  );
  expect(headers['content-type'], `${request.method} ${request.path}`).toBe('application/json');
  const body = JSON.parse(raw.body);
  const url = new URL(request.path, 'https://api.example');
  const problems = checkResponse(request.method, url.pathname, raw.statusCode, body);
  expect(problems, `${request.method} ${request.path} -> ${raw.statusCode} ${raw.body}`).toEqual(
    [],
  );
  return { status: raw.statusCode, headers, body, raw, requestId: event.requestContext.requestId };
}

export { sqsRecord };

// ---- SQS ------------------------------------------------------------------------------------

export function sqsEvent(records: SQSRecord[]): SQSEvent {
  return { Records: records };
}

type InvokeWorker = (event: SQSEvent) => Promise<SQSBatchResponse>;

/**
 * What the event source mapping does, once: receive a batch, invoke the worker, delete what it
 * did not report as failed. Returns how many messages it handled.
 */
async function pumpOnce(queue: FreshQueue, arn: string, invoke: InvokeWorker): Promise<number> {
  const batch = await receiveUpdates(queue.client, queue.queueUrl, { max: 10 });
  if (batch.length === 0) return 0;
  const response = await invoke(sqsEvent(batch.map((m) => sqsRecord(m, arn))));
  const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
  await Promise.all(
    batch
      .filter((m) => !failed.has(m.messageId))
      .map((m) =>
        queue.client.send(
          new DeleteMessageCommand({ QueueUrl: queue.queueUrl, ReceiptHandle: m.receiptHandle }),
        ),
      ),
  );
  return batch.length;
}

async function driveWorker<T>(
  queue: FreshQueue,
  invoke: InvokeWorker,
  until: () => Promise<T>,
  options: { timeoutMs?: number; message?: string },
): Promise<NonNullable<T>> {
  const arn = queue.queueArn;
  return waitFor(
    async () => {
      await pumpOnce(queue, arn, invoke);
      return until();
    },
    { timeoutMs: options.timeoutMs ?? 15_000, message: options.message ?? 'the worker' },
  );
}

// ---- OpenAPI ----------------------------------------------------------------------------------

interface Schema {
  $ref?: string;
  type?: string;
  required?: string[];
  properties?: Record<string, Schema>;
  items?: Schema;
  enum?: unknown[];
  nullable?: boolean;
  additionalProperties?: boolean | Schema;
}

interface OpenApiDocument {
  paths: Record<string, Record<string, unknown>>;
  components: { schemas: Record<string, Schema>; responses: Record<string, unknown> };
}

let openApi: OpenApiDocument | undefined;

export function openApiDocument(): OpenApiDocument {
  openApi ??= parse(
    readFileSync(new URL('../../openapi.yaml', import.meta.url), 'utf8'),
  ) as OpenApiDocument;
  return openApi;
}

export const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch'];

function resolveRef<T>(node: T & { $ref?: string }): T {
  if (!node.$ref) return node;
  const path = node.$ref.replace(/^#\//, '').split('/');
  // biome-ignore lint/suspicious/noExplicitAny: walking a parsed document.
  let target: any = openApiDocument();
  for (const part of path) target = target?.[part];
  if (target === undefined) throw new Error(`unresolved $ref ${node.$ref}`);
  return resolveRef(target);
}

/** The documented path template an actual path falls under. */
export function openApiPathFor(actual: string): string | undefined {
  return Object.keys(openApiDocument().paths).find((template) =>
    new RegExp(`^${template.replace(/\{[^/]+\}/g, '[^/]+')}/?$`).test(actual),
  );
}

/** Problems with a response, judged by openapi.yaml (a structural check, not full JSON Schema). */
export function checkResponse(method: string, path: string, status: number, body: unknown) {
  const template = openApiPathFor(path);
  // Unknown routes answer 404 with the error body; nothing else to check against.
  if (!template) {
    return status === 404
      ? checkSchema(body, { $ref: '#/components/schemas/Error' }, 'body')
      : [`undocumented path ${path}`];
  }
  const operation = openApiDocument().paths[template]?.[method.toLowerCase()] as
    | { responses: Record<string, unknown> }
    | undefined;
  if (!operation) {
    return status === 404 ? [] : [`undocumented operation ${method} ${template}`];
  }
  const documented = operation.responses[String(status)];
  if (!documented) return [`${method} ${template}: status ${status} is not documented`];
  const response = resolveRef(
    documented as { $ref?: string; content?: Record<string, { schema: Schema }> },
  );
  const schema = response.content?.['application/json']?.schema;
  if (!schema) return [`${method} ${template} ${status}: no application/json schema`];
  return checkSchema(body, schema, 'body');
}

function checkSchema(value: unknown, node: Schema, at: string): string[] {
  const schema = resolveRef(node);
  if (value === null) return schema.nullable ? [] : [`${at}: null`];
  const problems: string[] = [];
  if (schema.enum && !schema.enum.includes(value)) {
    problems.push(`${at}: ${JSON.stringify(value)} not in ${JSON.stringify(schema.enum)}`);
  }
  switch (schema.type) {
    case 'object': {
      if (typeof value !== 'object' || Array.isArray(value)) return [`${at}: not an object`];
      const record = value as Record<string, unknown>;
      for (const key of schema.required ?? []) {
        if (!(key in record)) problems.push(`${at}.${key}: required but missing`);
      }
      for (const [key, child] of Object.entries(record)) {
        const property = schema.properties?.[key];
        if (property) problems.push(...checkSchema(child, property, `${at}.${key}`));
        else if (typeof schema.additionalProperties === 'object') {
          problems.push(...checkSchema(child, schema.additionalProperties, `${at}.${key}`));
        } else if (schema.properties && schema.additionalProperties !== true) {
          problems.push(`${at}.${key}: not documented`);
        }
      }
      break;
    }
    case 'array':
      if (!Array.isArray(value)) return [`${at}: not an array`];
      value.forEach((item, i) => {
        if (schema.items) problems.push(...checkSchema(item, schema.items, `${at}[${i}]`));
      });
      break;
    case 'string':
      if (typeof value !== 'string') problems.push(`${at}: not a string`);
      break;
    case 'integer':
      if (!Number.isInteger(value)) problems.push(`${at}: not an integer`);
      break;
    case 'number':
      if (typeof value !== 'number') problems.push(`${at}: not a number`);
      break;
    case 'boolean':
      if (typeof value !== 'boolean') problems.push(`${at}: not a boolean`);
      break;
  }
  return problems;
}
