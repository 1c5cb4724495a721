/**
 * The local runtime behind `npm start`: the same Lambda handlers as on AWS, wired to local
 * stand-ins for the managed services.
 *
 *   API Gateway (REST, SigV4)  -> an HTTP server on 127.0.0.1 with a bearer token; each request
 *                                 becomes a REST proxy event for lambdas/handlers/api.ts
 *   SQS + event source mapping -> fauxqs in-process + QueuePump feeding lambdas/handlers/worker.ts
 *                                 SQS events (failures stay on the queue and are redelivered)
 *   EventBridge schedule       -> a timer invoking lambdas/handlers/sweep.ts (and once at start)
 *   Step Functions             -> the synthesized setup state machine run by
 *                                 aws-local-stepfunctions, its Lambda tasks overridden with
 *                                 lambdas/handlers/setup.ts
 *   DynamoDB                   -> DynamoDB Local (java) with a persistent -dbPath in the data
 *                                 directory, so leases, resources and blueprints survive restarts
 *
 * Queue messages are not persistent: after a restart the sweep re-drives every lease and
 * resource left in a transitional state (that is what it is for when a message is lost on AWS).
 *
 * The handlers read their configuration from process.env, so there is one runtime per process.
 */
import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { constants as osConstants, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import type {
  APIGatewayProxyEvent,
  APIGatewayProxyResult,
  Context,
  ScheduledEvent,
  SQSEvent,
} from 'aws-lambda';
import type { StateMachine, StateMachineDefinition } from 'aws-local-stepfunctions';
import type { EngineSettings } from '../../lambdas/core/engine.ts';
import { ensureTable } from '../../lambdas/store/table.ts';
import { assertJava, type DynamoDbLocal, startDynamoDbLocal } from './dynamodb-local.ts';
import { LOCAL_ACCOUNT, LOCAL_REGION, lambdaContext, sqsEvent } from './lambda-events.ts';
import { QueuePump } from './queue-pump.ts';

export const DEFAULT_PORT = 8787;
export const DEFAULT_DATA_DIR = '.drydock';
export const LOCAL_INFO_FILE = 'local.json';
export const TOKEN_FILE = 'token';
const REGION = LOCAL_REGION;
const ACCOUNT = LOCAL_ACCOUNT;
const TABLE_NAME = 'drydock';
const QUEUE_NAME = 'drydock-updates';
const MAX_BODY_BYTES = 10 * 1024 * 1024;

/**
 * Engine settings for local use. A person waits at a terminal, so a waiting lease retries at
 * most every 15 s (it is also woken as soon as a host frees up), and the sweep re-drives a
 * lease or resource whose message was lost (e.g. by a restart) after 60 s instead of 5 min.
 */
export const LOCAL_SETTINGS: Partial<EngineSettings> = {
  backoffCapSeconds: 15,
  strandAfterSeconds: 60,
};

export interface LocalRuntimeOptions {
  /** Where the database, the token and local.json live. @default `.drydock` in the cwd */
  dataDir?: string;
  /** HTTP port; 0 picks a free one (see `url`). @default 8787 */
  port?: number;
  /** @default 60 */
  sweepIntervalSeconds?: number;
  /** Concurrent queue workers. @default 4 */
  workers?: number;
  /** Engine tunables over LOCAL_SETTINGS. */
  settings?: Partial<EngineSettings>;
  /** Create the `local` local-host blueprint if it does not exist. @default true */
  defaultBlueprint?: boolean;
  /** Each startup step, as it begins ("starting DynamoDB Local ..."). */
  progress?: (message: string) => void;
  /** Problems while running (a failing sweep, a handler error); the runtime keeps going. */
  warn?: (message: string) => void;
  /** Aborts a startup under way (Ctrl-C while starting): what started is stopped again. */
  signal?: AbortSignal;
}

export interface LocalRuntime {
  /** http://127.0.0.1:<port>; the API is under /v1. */
  url: string;
  token: string;
  dataDir: string;
  /** `<dataDir>/local.json`: `{url, token, pid}` for the CLI. */
  infoFile: string;
  tokenFile: string;
  /** The DynamoDB Local java process. */
  javaPid: number | undefined;
  /**
   * Settles (never rejects) with the reason when a part of the runtime died on its own (java
   * exited); everything else has been stopped by then.
   */
  failed: Promise<Error>;
  /** Stops the server, timer, workers, workflows, fauxqs and java; idempotent. */
  stop(): Promise<void>;
}

/** What local.json holds. */
export interface LocalInfo {
  url: string;
  token: string;
  pid: number;
  javaPid?: number;
  dataDir: string;
  startedAt: string;
}

type AnyHandler<E, R> = (event: E, context: Context) => Promise<R>;

function errorText(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}

/** Whether a process runs (a zombie, killed but not yet reaped, does not count). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc (macOS): signal 0 is all we know
  }
}

/** The token of this data dir, created (random, 0600) on first use. */
function loadOrCreateToken(tokenFile: string): string {
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

// ---- API Gateway stand-in -------------------------------------------------------------------

export interface ApiRequest {
  method: string;
  /** Path with query string, e.g. `/v1/leases?status=active`. */
  url: string;
  /** Raw header pairs as received (names keep their case, as API Gateway passes them). */
  rawHeaders: string[];
  body: string;
  sourceIp: string;
}

/**
 * A REST API proxy event as API Gateway builds it for `ANY /v1/{proxy+}` on stage `local`
 * with IAM auth: the caller's principal is `requestContext.identity.userArn`.
 */
export function toProxyEvent(request: ApiRequest, principal: string): APIGatewayProxyEvent {
  const url = new URL(request.url, 'http://localhost');
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  for (let i = 0; i + 1 < request.rawHeaders.length; i += 2) {
    const name = request.rawHeaders[i] as string;
    const value = request.rawHeaders[i + 1] as string;
    // Never hand the bearer token to the handler: on AWS the SigV4 header is consumed by
    // API Gateway too (it does pass it on, but nothing downstream needs it).
    if (name.toLowerCase() === 'authorization') continue;
    headers[name] = value;
    multiValueHeaders[name] = [...(multiValueHeaders[name] ?? []), value];
  }
  const query: Record<string, string> = {};
  const multiQuery: Record<string, string[]> = {};
  for (const [key, value] of url.searchParams) {
    query[key] = value;
    multiQuery[key] = [...(multiQuery[key] ?? []), value];
  }
  const hasQuery = Object.keys(query).length > 0;
  const path = decodeURI(url.pathname);
  const now = new Date();
  const requestId = randomUUID();
  return {
    resource: '/v1/{proxy+}',
    path,
    httpMethod: request.method,
    headers,
    multiValueHeaders,
    queryStringParameters: hasQuery ? query : null,
    multiValueQueryStringParameters: hasQuery ? multiQuery : null,
    pathParameters: { proxy: path.replace(/^\/v1\/?/, '') },
    stageVariables: null,
    body: request.body === '' ? null : request.body,
    isBase64Encoded: false,
    requestContext: {
      accountId: ACCOUNT,
      apiId: 'local',
      authorizer: undefined,
      protocol: 'HTTP/1.1',
      httpMethod: request.method,
      path: `/local${path}`,
      stage: 'local',
      requestId,
      requestTime: now.toUTCString(),
      requestTimeEpoch: now.getTime(),
      resourceId: 'local',
      resourcePath: '/v1/{proxy+}',
      identity: {
        accessKey: null,
        accountId: null,
        apiKey: null,
        apiKeyId: null,
        caller: principal,
        clientCert: null,
        cognitoAuthenticationProvider: null,
        cognitoAuthenticationType: null,
        cognitoIdentityId: null,
        cognitoIdentityPoolId: null,
        principalOrgId: null,
        sourceIp: request.sourceIp,
        user: principal,
        userAgent: headers['User-Agent'] ?? headers['user-agent'] ?? null,
        userArn: principal,
      },
    },
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

// ---- the runtime ----------------------------------------------------------------------------

export async function startLocalRuntime(options: LocalRuntimeOptions = {}): Promise<LocalRuntime> {
  const report = options.progress ?? (() => undefined);
  const progress = (message: string) => {
    options.signal?.throwIfAborted();
    report(message);
  };
  const warn = options.warn ?? ((message: string) => console.error(message));
  const dataDir = resolve(options.dataDir ?? DEFAULT_DATA_DIR);
  const infoFile = join(dataDir, LOCAL_INFO_FILE);
  const tokenFile = join(dataDir, TOKEN_FILE);
  const requestedPort = options.port ?? DEFAULT_PORT;
  const sweepIntervalMs = (options.sweepIntervalSeconds ?? 60) * 1000;

  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  if (existsSync(infoFile)) {
    try {
      const other = JSON.parse(readFileSync(infoFile, 'utf8')) as Partial<LocalInfo>;
      if (typeof other.pid === 'number' && other.pid !== process.pid && isAlive(other.pid)) {
        throw new Error(
          `another drydock runtime (pid ${other.pid}, ${other.url}) is already running on ${dataDir}; stop it first or use another --data-dir`,
        );
      }
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err;
    }
  }

  // Everything started so far, stopped in reverse order by stop().
  const cleanups: Array<{ what: string; run: () => Promise<void> | void }> = [];
  let stopped: Promise<void> | undefined;
  let resolveFailed: (err: Error) => void = () => undefined;
  const failed = new Promise<Error>((r) => {
    resolveFailed = r;
  });

  let closeFirst: (() => Promise<void>) | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      if (closeFirst) cleanups.push({ what: 'the API server', run: closeFirst });
      for (const cleanup of cleanups.reverse()) {
        try {
          await cleanup.run();
        } catch (err) {
          warn(`drydock: stopping ${cleanup.what} failed: ${errorText(err)}`);
        }
      }
    })();
    return stopped;
  };

  try {
    progress('checking Java');
    const java = assertJava();
    progress(`found ${java.line}`);

    // Taken first, so a busy port fails in a moment rather than after everything started.
    // Until the handlers are ready, requests get 503.
    progress(`opening the API port 127.0.0.1:${requestedPort}`);
    const token = loadOrCreateToken(tokenFile);
    let invokeApi: ((request: ApiRequest) => Promise<APIGatewayProxyResult>) | undefined;
    const server = createServer(
      (req, res) => void serve(req, res, token, tokenFile, invokeApi, warn),
    );
    await new Promise<void>((done, fail) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        fail(
          err.code === 'EADDRINUSE'
            ? new Error(
                `port ${requestedPort} on 127.0.0.1 is in use (another drydock runtime?); pass --port <n> (or DRYDOCK_PORT), or --port 0 for any free port`,
                { cause: err },
              )
            : err,
        ),
      );
      server.listen(requestedPort, '127.0.0.1', () => done());
    });
    // Closed first on stop (before the handlers' dependencies go away), not in reverse order.
    closeFirst = () => closeServer(server);

    const dbPath = join(dataDir, 'dynamodb');
    progress(`starting DynamoDB Local (database in ${dbPath})`);
    // Its own process group: Ctrl-C reaches us, and we stop java last, after the workers.
    const dynamoStarting = startDynamoDbLocal({ dbPath, detached: true });
    cleanups.push({
      what: 'DynamoDB Local',
      run: async () => (await dynamoStarting.catch(() => undefined))?.stop(),
    });
    // Awaited below; until then a failure must not count as unhandled.
    dynamoStarting.catch(() => undefined);

    // While java boots: synthesize the stack for the setup workflow definition (CPU-bound, a
    // second or two), and start the SQS emulator.
    progress('synthesizing the stack for the setup workflow definition');
    const workflowLoading = loadSetupWorkflow(dataDir);
    workflowLoading.catch(() => undefined);
    progress('starting the SQS emulator (fauxqs)');
    const { startFauxqs } = await import('fauxqs');
    const fauxqs = await startFauxqs({ port: 0, logger: false, host: '127.0.0.1' });
    cleanups.push({ what: 'the SQS emulator', run: () => fauxqs.stop() });
    const sqsEndpoint = `http://127.0.0.1:${fauxqs.port}`;

    const dynamo: DynamoDbLocal = await dynamoStarting;
    progress(`DynamoDB Local is up at ${dynamo.endpoint} (java pid ${dynamo.javaPid ?? '?'})`);

    // The handlers, and the SDK clients they share, are configured by the environment.
    Object.assign(process.env, {
      AWS_REGION: REGION,
      AWS_DEFAULT_REGION: REGION,
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
      AWS_ENDPOINT_URL_SQS: sqsEndpoint,
      AWS_EC2_METADATA_DISABLED: 'true',
      TABLE_NAME,
      ADMIN_PRINCIPALS: '*',
      DRYDOCK_DATA_DIR: dataDir,
    });
    delete process.env.AWS_SESSION_TOKEN;
    delete process.env.AWS_PROFILE;
    process.env.POWERTOOLS_SERVICE_NAME ??= 'drydock-local';
    process.env.LOG_LEVEL ??= 'WARN';

    progress(`creating table '${TABLE_NAME}' if missing`);
    const dynamoClient = new DynamoDBClient({
      endpoint: dynamo.endpoint,
      region: REGION,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    cleanups.push({ what: 'the DynamoDB client', run: () => dynamoClient.destroy() });
    await ensureTable(dynamoClient, TABLE_NAME, { timeoutMs: 30_000, intervalMs: 100 });

    progress('creating the work queue and its dead-letter queue');
    const sqs = new SQSClient({
      endpoint: sqsEndpoint,
      region: REGION,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    cleanups.push({ what: 'the SQS client', run: () => sqs.destroy() });
    const { queueUrl, queueArn } = await createQueues(sqs, sqsEndpoint);
    process.env.QUEUE_URL = queueUrl;

    const definition = await workflowLoading;

    // Loaded only now: they may read the environment when they load.
    const [apiModule, workerModule, sweepModule, setupModule, runtimeModule] = await Promise.all([
      import('../../lambdas/handlers/api.ts'),
      import('../../lambdas/handlers/worker.ts'),
      import('../../lambdas/handlers/sweep.ts'),
      import('../../lambdas/handlers/setup.ts'),
      import('../../lambdas/handlers/runtime.ts'),
    ]);
    const api = apiModule.handler as unknown as AnyHandler<
      APIGatewayProxyEvent,
      APIGatewayProxyResult
    >;
    const worker = workerModule.handler as unknown as AnyHandler<
      SQSEvent,
      { batchItemFailures?: Array<{ itemIdentifier: string }> } | undefined
    >;
    const sweep = sweepModule.handler as unknown as AnyHandler<ScheduledEvent, unknown>;
    const setup = setupModule.handler as unknown as AnyHandler<SetupEvent, unknown>;

    // ---- Step Functions stand-in ----
    const workflows = new SetupWorkflows(
      definition,
      (event) => setup(event, lambdaContext('setup', 60_000)),
      warn,
    );
    runtimeModule.setEngineOverrides({
      dataDir,
      settings: { ...LOCAL_SETTINGS, ...options.settings },
      startSetup: async (resourceId: string) => workflows.start(resourceId),
    });
    // Stopped in reverse: workers first, then running workflows, then the engine.
    cleanups.push({ what: 'the engine', run: () => runtimeModule.resetEngine() });
    cleanups.push({ what: 'setup workflows', run: () => workflows.abortAll() });

    // ---- SQS event source mapping stand-in ----
    progress(`starting ${options.workers ?? 4} queue workers`);
    const pump = new QueuePump({
      client: sqs,
      queueUrl,
      workers: options.workers ?? 4,
      batchSize: 10,
      waitSeconds: 1,
      handle: async (batch) => {
        const event = sqsEvent(batch, queueArn);
        try {
          const result = await worker(event, lambdaContext('worker', 60_000));
          return {
            failedMessageIds: (result?.batchItemFailures ?? []).map((f) => f.itemIdentifier),
          };
        } catch (err) {
          // What Lambda does when the function throws: the whole batch is redelivered.
          warn(
            `drydock: worker failed on a batch of ${batch.length}, leaving it for redelivery: ${errorText(err)}`,
          );
          return { failedMessageIds: batch.map((m) => m.messageId) };
        }
      },
      onError: (err) => {
        if (!stopped) warn(`drydock: queue worker: ${errorText(err)}`);
      },
    }).start();
    cleanups.push({ what: 'the queue workers', run: () => pump.stop() });

    // ---- EventBridge schedule stand-in ----
    let sweeping: Promise<void> | undefined;
    const runSweep = (): Promise<void> => {
      sweeping ??= (async () => {
        try {
          await sweep(scheduledEvent(), lambdaContext('sweep', 50_000));
        } catch (err) {
          warn(`drydock: sweep failed (the next one retries): ${errorText(err)}`);
        } finally {
          sweeping = undefined;
        }
      })();
      return sweeping;
    };
    progress('running the first sweep (re-drives anything a restart left half-done)');
    await runSweep();
    const timer = setInterval(() => void runSweep(), sweepIntervalMs);
    timer.unref();
    cleanups.push({
      what: 'the sweep timer',
      run: async () => {
        clearInterval(timer);
        await sweeping;
      },
    });

    // ---- API Gateway stand-in ----
    const principal = `local:${userInfo().username}`;
    const handleApi = async (request: ApiRequest): Promise<APIGatewayProxyResult> => {
      const event = toProxyEvent(request, principal);
      try {
        return await api(event, lambdaContext('api', 29_000));
      } catch (err) {
        // API Gateway answers a crashed integration with a bare 502; say a little more.
        warn(`drydock: api handler threw on ${request.method} ${request.url}: ${errorText(err)}`);
        return {
          statusCode: 500,
          headers: { 'content-type': 'application/json' },
          body: errorBody(
            'internal',
            `internal error; request id ${event.requestContext.requestId}`,
          ),
        };
      }
    };

    if (options.defaultBlueprint ?? true) {
      progress("ensuring the default 'local' blueprint exists");
      await ensureDefaultBlueprint(handleApi, dataDir);
    }
    invokeApi = handleApi;

    const port = (server.address() as AddressInfo).port;
    const url = `http://127.0.0.1:${port}`;

    const info: LocalInfo = {
      url,
      token,
      pid: process.pid,
      ...(dynamo.javaPid ? { javaPid: dynamo.javaPid } : {}),
      dataDir,
      startedAt: new Date().toISOString(),
    };
    writeFileSync(infoFile, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
    chmodSync(infoFile, 0o600);
    // Only our own info file: a second runtime refused above never gets here.
    cleanups.push({ what: 'local.json', run: () => rmSync(infoFile, { force: true }) });

    // A child that dies on its own takes the runtime down with it, saying what died.
    void dynamo.exited.then(({ code, signal }) => {
      if (dynamo.stopping) return;
      const err = new Error(
        `DynamoDB Local (java pid ${dynamo.javaPid ?? '?'}) exited unexpectedly (${describeExit(code, signal)}). Its last output:\n${dynamo.output().trim() || '(none)'}`,
      );
      void stop().then(() => resolveFailed(err));
    });

    return {
      url,
      token,
      dataDir,
      infoFile,
      tokenFile,
      javaPid: dynamo.javaPid,
      failed,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** `killed by SIGKILL (exit code 137)`: the watchdog shell reports java's signal as 128+n. */
function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  if (signal) return `killed by ${signal}`;
  if (code !== null && code > 128) {
    const name = Object.entries(osConstants.signals).find(([, n]) => n === code - 128)?.[0];
    if (name) return `killed by ${name} (exit code ${code})`;
  }
  return `exit code ${code}`;
}

async function createQueues(
  sqs: SQSClient,
  sqsEndpoint: string,
): Promise<{ queueUrl: string; queueArn: string }> {
  const dlq = await sqs.send(new CreateQueueCommand({ QueueName: `${QUEUE_NAME}-dlq` }));
  const dlqArn = (
    await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ['QueueArn'] }),
    )
  ).Attributes?.QueueArn;
  if (!dlq.QueueUrl || !dlqArn) throw new Error('fauxqs returned no URL/ARN for the DLQ');
  const queue = await sqs.send(
    new CreateQueueCommand({
      QueueName: QUEUE_NAME,
      Attributes: {
        // Short, unlike AWS (6 x the worker timeout): locally a failed update should be retried
        // within seconds, and no local update runs anywhere near this long.
        VisibilityTimeout: '30',
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 5 }),
      },
    }),
  );
  const queueArn = (
    await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queue.QueueUrl, AttributeNames: ['QueueArn'] }),
    )
  ).Attributes?.QueueArn;
  if (!queue.QueueUrl || !queueArn) throw new Error('fauxqs returned no URL/ARN for the queue');
  // fauxqs names queues `http://sqs.<region>.<bind host>:<port>/...`, which for 127.0.0.1 is
  // not a valid URL; it serves the same queue at its own endpoint.
  return { queueUrl: queue.QueueUrl.replace(/^https?:\/\/[^/]+/, sqsEndpoint), queueArn };
}

/** An SQS event record as Lambda's event source mapping delivers it. */
function scheduledEvent(): ScheduledEvent {
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: ACCOUNT,
    time: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region: REGION,
    resources: [`arn:aws:events:${REGION}:${ACCOUNT}:rule/drydock-local-sweep`],
    detail: {},
  };
}

async function ensureDefaultBlueprint(
  invokeApi: (request: ApiRequest) => Promise<APIGatewayProxyResult>,
  dataDir: string,
): Promise<void> {
  const request = (method: string, url: string, body = '') =>
    invokeApi({
      method,
      url,
      rawHeaders: ['content-type', 'application/json'],
      body,
      sourceIp: '127.0.0.1',
    });
  const existing = await request('GET', '/v1/blueprints/local');
  if (existing.statusCode === 200) return;
  if (existing.statusCode !== 404) {
    throw new Error(
      `reading blueprint 'local' failed: HTTP ${existing.statusCode} ${existing.body}`,
    );
  }
  const created = await request(
    'POST',
    '/v1/blueprints',
    JSON.stringify({
      id: 'local',
      type: 'local-host',
      resourceType: 'host',
      description: `Hosts on this machine: each is a directory under ${join(dataDir, 'local-host', 'local')}`,
      attributes: { platform: process.platform },
      limits: { maxResources: 4, leasesPerResource: 1, idleTtlSeconds: 600, idleGraceSeconds: 30 },
    }),
  );
  // 409: created meanwhile (another start racing this one); fine.
  if (created.statusCode !== 201 && created.statusCode !== 200 && created.statusCode !== 409) {
    throw new Error(
      `creating blueprint 'local' failed: HTTP ${created.statusCode} ${created.body}`,
    );
  }
}

async function serve(
  req: IncomingMessage,
  res: ServerResponse,
  token: string,
  tokenFile: string,
  invokeApi: ((request: ApiRequest) => Promise<APIGatewayProxyResult>) | undefined,
  warn: (message: string) => void,
): Promise<void> {
  const send = (status: number, body: string, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(body);
  };
  try {
    const auth = req.headers.authorization ?? '';
    const given = /^Bearer (.+)$/i.exec(auth)?.[1]?.trim();
    if (!given || !sameToken(given, token)) {
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
    const url = req.url ?? '/';
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

// ---- Step Functions stand-in ----------------------------------------------------------------

interface SetupEvent {
  resourceId: string;
  action: 'advance' | 'fail';
  error?: { Error: string; Cause: string };
}

/** State names of the synthesized workflow the setup handler runs in (setup-workflow.ts). */
const SETUP_TASK_STATES = ['Advance', 'BreakResource'] as const;

interface AslDefinitionLike {
  StartAt: string;
  States: Record<string, { Type: string; [field: string]: unknown }>;
}

/**
 * Synthesizes the CDK stack (no bundling) into `<dataDir>/cdk.out` and returns the setup
 * state machine's definition: the very ASL CloudFormation would deploy.
 */
async function loadSetupWorkflow(dataDir: string): Promise<AslDefinitionLike> {
  const [{ App }, { DrydockStack }, { setupDefinitionFromTemplate }] = await Promise.all([
    import('aws-cdk-lib'),
    import('../stack.ts'),
    import('../setup-definition.ts'),
  ]);
  const cdkJson = JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')) as {
    context?: Record<string, unknown>;
  };
  const app = new App({
    outdir: join(dataDir, 'cdk.out'),
    // Skip esbuild: only the state machine definition is needed.
    context: { ...cdkJson.context, 'aws:cdk:bundling-stacks': [] },
  });
  const stack = new DrydockStack(app, 'Drydock', {});
  const template = app.synth().getStackByName(stack.stackName).template as object;
  const definition = setupDefinitionFromTemplate(template) as AslDefinitionLike;
  for (const state of SETUP_TASK_STATES) {
    if (definition.States[state]?.Type !== 'Task') {
      throw new Error(
        `the setup workflow has no Task state '${state}' (states: ${Object.keys(definition.States).join(', ')})`,
      );
    }
  }
  return definition;
}

/** Setup workflow executions in this process (aws-local-stepfunctions). */
class SetupWorkflows {
  readonly #running = new Map<string, ReturnType<StateMachine['run']>>();
  readonly #machine: Promise<StateMachine>;
  readonly #invokeSetup: (event: SetupEvent) => Promise<unknown>;
  readonly #warn: (message: string) => void;
  #stopped = false;

  constructor(
    definition: AslDefinitionLike,
    invokeSetup: (event: SetupEvent) => Promise<unknown>,
    warn: (message: string) => void,
  ) {
    this.#invokeSetup = invokeSetup;
    this.#warn = warn;
    this.#machine = import('aws-local-stepfunctions').then(
      ({ StateMachine }) => new StateMachine(definition as unknown as StateMachineDefinition),
    );
  }

  /** Starts an execution (like StartExecution: returns once it is started, not finished). */
  async start(resourceId: string): Promise<void> {
    if (this.#stopped) throw new Error('the local runtime is stopping');
    // One execution per resource at a time, as the execution name makes it on AWS.
    if (this.#running.has(resourceId)) return;
    const machine = await this.#machine;
    type TaskHandler = NonNullable<
      NonNullable<
        NonNullable<Parameters<StateMachine['run']>[1]>['overrides']
      >['taskResourceLocalHandlers']
    >[string];
    const task: TaskHandler = async (input) =>
      (await this.#invokeSetup(input as unknown as SetupEvent)) as Awaited<ReturnType<TaskHandler>>;
    const execution = machine.run(
      { resourceId },
      {
        overrides: {
          taskResourceLocalHandlers: Object.fromEntries(SETUP_TASK_STATES.map((s) => [s, task])),
        },
        noThrowOnAbort: true,
      },
    );
    this.#running.set(resourceId, execution);
    void execution.result
      .catch((err: unknown) => {
        // A failed setup has already broken the resource (BreakResource) and said why on it.
        if (!this.#stopped) {
          const cause = (err as { cause?: Error }).cause;
          this.#warn(
            `drydock: setup workflow for ${resourceId} ended in failure: ${cause?.message ?? (err as Error)?.message ?? String(err)}`,
          );
        }
      })
      .finally(() => this.#running.delete(resourceId));
  }

  async abortAll(): Promise<void> {
    this.#stopped = true;
    const executions = [...this.#running.values()];
    for (const execution of executions) execution.abort();
    await Promise.allSettled(executions.map((e) => e.result));
    this.#running.clear();
  }
}
