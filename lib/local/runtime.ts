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
 * Queue messages are not persistent: at start every lease, resource and command left in a
 * transitional state is re-driven at once (the sweep's job when a message is lost on AWS,
 * without waiting for the stranded-state bound: the runtime knows its queue is new).
 *
 * The parts live in their own modules (http-server, emulators, workers, setup-driver, data-dir);
 * this one starts them in order, builds the engine the handlers share, and stops everything in
 * reverse. The AWS SDK's environment (region, dummy credentials, emulator endpoints) is set for
 * the whole process, so there is one runtime per process.
 */
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { localRegistry } from '../../lambdas/blueprints/registry.ts';
import { type Engine, type EngineSettings, makeEngine } from '../../lambdas/core/engine.ts';
import type { Metrics } from '../../lambdas/core/metrics.ts';
import { systemClock } from '../../lambdas/core/ports.ts';
import { runSweep } from '../../lambdas/core/sweep.ts';
import { SqsDeadLetterQueue } from '../../lambdas/queue/sqs-dead-letters.ts';
import { SqsWorkQueue } from '../../lambdas/queue/sqs-queue.ts';
import { DynamoStore } from '../../lambdas/store/dynamo-store.ts';
import { backfillFreeKeys } from '../../lambdas/store/free-backfill.ts';
import { backfillListingKeys } from '../../lambdas/store/listing-backfill.ts';
import { ensureTable } from '../../lambdas/store/table.ts';
import { consoleAssets } from '../console/assets.ts';
import { consoleSite } from '../console/site.ts';
import { claimDataDir, type LocalInfo, publishLocalInfo } from './data-dir.ts';
import { ensureLocalWorkingCopyBlueprint } from './default-working-copy.ts';
import { assertJava } from './dynamodb-local.ts';
import {
  createWorkQueue,
  type Emulators,
  localDynamoClient,
  localSqsClient,
  startEmulators,
  useLocalAwsEnvironment,
} from './emulators.ts';
import { apiInvoker, type InvokeApi, loadOrCreateToken, openApiServer } from './http-server.ts';
import { lambdaContext } from './lambda-events.ts';
import { describeExit, errorText } from './process.ts';
import { loadSetupWorkflow, SetupWorkflows } from './setup-driver.ts';
import { startQueueWorkers, startSweepSchedule } from './workers.ts';

export const DEFAULT_PORT = 8787;
export const DEFAULT_DATA_DIR = '.drydock';
const TABLE_NAME = 'drydock';
const QUEUE_NAME = 'drydock-updates';

/**
 * Engine settings for local use. A person waits at a terminal, so a waiting lease retries at
 * most every 15 s (it is also woken as soon as a host frees up), and the sweep re-drives a
 * lease or resource whose message was lost (e.g. by a restart) after 60 s instead of 5 min.
 */
export const LOCAL_SETTINGS: Partial<EngineSettings> = {
  backoffCapSeconds: 15,
  strandAfterSeconds: 60,
  // Queue messages do not survive a restart: re-drive a running command's polls soon after.
  commandStrandSeconds: 10,
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
  /** The worker function's timeout per invocation, as on AWS. @default 60 */
  workerTimeoutSeconds?: number;
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
  /**
   * Callers besides this machine's user, each with a token of its own, who are no admins:
   * what a lease holder sees (tests, demos). @default none
   */
  holders?: Array<{ principal: string; token: string }>;
  /** Where the engine's metrics go (`npm start --verbose`: metric lines). @default none */
  metrics?: Metrics;
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
  /**
   * The DynamoDB client the handlers' store uses (for call accounting by the benchmarks).
   */
  dynamoClient: DynamoDBClient;
  /** Stops the server, timer, workers, workflows, fauxqs and java; idempotent. */
  stop(): Promise<void>;
}

/** Something started, and how to stop it again. */
interface Cleanup {
  what: string;
  run: () => Promise<void> | void;
}

export async function startLocalRuntime(options: LocalRuntimeOptions = {}): Promise<LocalRuntime> {
  const report = options.progress ?? (() => undefined);
  const progress = (message: string) => {
    options.signal?.throwIfAborted();
    report(message);
  };
  const warn = options.warn ?? ((message: string) => console.error(message));
  const dataDir = resolve(options.dataDir ?? DEFAULT_DATA_DIR);
  const { infoFile, tokenFile } = claimDataDir(dataDir);

  // Everything started so far, stopped in reverse order by stop(); the API server first.
  const cleanups: Cleanup[] = [];
  let closeFirst: Cleanup | undefined;
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      const order = [...(closeFirst ? [closeFirst] : []), ...[...cleanups].reverse()];
      for (const cleanup of order) {
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
    progress(`found ${assertJava().line}`);

    // Until the handlers are ready, requests get 503.
    const requestedPort = options.port ?? DEFAULT_PORT;
    progress(`opening the API port 127.0.0.1:${requestedPort}`);
    const token = loadOrCreateToken(tokenFile);
    const server = await openApiServer({
      port: requestedPort,
      token,
      tokenFile,
      warn,
      holders: new Map((options.holders ?? []).map((h) => [h.token, h.principal])),
      // The web console at /: the page carries the token (lib/console/site.ts says why).
      site: consoleSite({
        token,
        target: `local runtime · ${dataDir}`,
        assets: consoleAssets(),
        warn,
      }),
    });
    // Closed first on stop (before the handlers' dependencies go away), not in reverse order.
    closeFirst = { what: 'the API server', run: () => server.close() };

    const emulators = await startEmulatorsWhileSynthesizing(dataDir, progress, cleanups);
    const { dynamo, definition } = emulators;
    progress(`DynamoDB Local is up at ${dynamo.endpoint} (java pid ${dynamo.javaPid ?? '?'})`);
    useLocalAwsEnvironment(emulators);
    process.env.POWERTOOLS_SERVICE_NAME ??= 'drydock-local';
    process.env.LOG_LEVEL ??= 'WARN';

    progress(`creating table '${TABLE_NAME}' if missing`);
    const dynamoClient = localDynamoClient(emulators.dynamoEndpoint);
    cleanups.push({ what: 'the DynamoDB client', run: () => dynamoClient.destroy() });
    await ensureTable(dynamoClient, TABLE_NAME, { timeoutMs: 30_000, intervalMs: 100 });
    // A data dir from before the listing index: its live leases and resources get their keys.
    const backfilled = await backfillListingKeys(
      DynamoDBDocumentClient.from(dynamoClient),
      TABLE_NAME,
    );
    if (backfilled > 0) progress(`gave ${backfilled} leases and resources their listing keys`);
    // And from before the free-candidate index: its free resources get their keys.
    const freed = await backfillFreeKeys(DynamoDBDocumentClient.from(dynamoClient), TABLE_NAME);
    if (freed > 0) progress(`gave ${freed} free resources their free-index keys`);

    progress('creating the work queue and its dead-letter queue');
    const sqs = localSqsClient(emulators.sqsEndpoint);
    cleanups.push({ what: 'the SQS client', run: () => sqs.destroy() });
    // A short visibility timeout, unlike AWS (6 x the worker timeout): locally a failed update
    // should be retried within seconds, and no local update runs anywhere near this long.
    const queue = await createWorkQueue(sqs, emulators.sqsEndpoint, QUEUE_NAME, {
      visibilityTimeoutSeconds: 30,
      maxReceiveCount: 5,
    });

    // Loaded only now: the handlers' logger reads the environment when it loads.
    const { makeApiHandler, makeSetupHandler, makeSweepHandler, makeWorkerHandler } =
      await loadHandlerFactories();

    // ---- the engine and the handlers on it; Step Functions stand-in ----
    // The setup handler needs the engine and the engine's setup starter needs the workflows
    // that call the setup handler: the handler takes the engine as a thunk.
    let engine: Engine | undefined;
    const setup = makeSetupHandler({
      engine: () => {
        if (!engine) throw new Error('the engine is not built yet');
        return engine;
      },
    });
    const workflows = new SetupWorkflows(
      definition,
      (event) => setup(event, lambdaContext('setup', 60_000)),
      warn,
    );
    engine = makeEngine({
      store: new DynamoStore({ client: dynamoClient, tableName: TABLE_NAME }),
      queue: new SqsWorkQueue({ client: sqs, queueUrl: queue.queueUrl }),
      clock: systemClock,
      registry: localRegistry(),
      dataDir,
      settings: { ...LOCAL_SETTINGS, ...options.settings },
      startSetup: (resourceId) => workflows.start(resourceId),
      ...(options.metrics ? { metrics: options.metrics } : {}),
      // fauxqs has no message move tasks: `drydock dlq redrive` moves messages one by one.
      deadLetters: new SqsDeadLetterQueue({
        client: sqs,
        queueUrl: queue.dlqUrl,
        sourceQueueUrl: queue.queueUrl,
        redrive: 'one-by-one',
      }),
    });
    cleanups.push({ what: 'setup workflows', run: () => workflows.abortAll() });

    // ---- SQS event source mapping stand-in ----
    const workerCount = options.workers ?? 4;
    progress(`starting ${workerCount} queue workers`);
    const workers = startQueueWorkers({
      client: sqs,
      queueUrl: queue.queueUrl,
      queueArn: queue.queueArn,
      workers: workerCount,
      ...(options.workerTimeoutSeconds ? { timeoutSeconds: options.workerTimeoutSeconds } : {}),
      worker: makeWorkerHandler({ engine }),
      warn,
    });
    cleanups.push({ what: 'the queue workers', run: () => workers.stop() });

    // ---- EventBridge schedule stand-in ----
    const sweeps = startSweepSchedule({
      sweep: makeSweepHandler({ engine }),
      intervalMs: (options.sweepIntervalSeconds ?? 60) * 1000,
      warn,
    });
    cleanups.push({ what: 'the sweep timer', run: () => sweeps.stop() });
    // The queue is new (its messages did not survive the last run): every lease, resource and
    // command in a transitional state is re-driven now, not after the stranded-state bound.
    progress('re-driving whatever the last run left half-done');
    try {
      const redriven = await runSweep(engine, { allInFlight: true });
      const moving =
        redriven.redrivenLeases + redriven.redrivenResources + redriven.redrivenCommands;
      if (moving > 0) {
        progress(
          `re-drove ${redriven.redrivenLeases} leases, ${redriven.redrivenResources} resources, ${redriven.redrivenCommands} commands`,
        );
      }
    } catch (err) {
      // The sweep timer does the same work at its next tick.
      warn(`re-driving at start failed (the sweep will retry): ${errorText(err)}`);
    }

    // ---- API Gateway stand-in ----
    // Every request with the token is this machine's user, an admin (holders' tokens are not).
    const localUser = `local:${userInfo().username}`;
    const invokeApi = apiInvoker(makeApiHandler({ engine, admins: localUser }), localUser, warn);
    if (options.defaultBlueprint ?? true) {
      progress("ensuring the default 'local' blueprint exists");
      await ensureDefaultBlueprint(invokeApi, dataDir);
      progress("ensuring the default 'local-wc' working-copy blueprint exists");
      await ensureLocalWorkingCopyBlueprint(invokeApi);
    }
    server.serve(invokeApi);

    const url = `http://127.0.0.1:${server.port}`;
    const info: LocalInfo = {
      url,
      token,
      pid: process.pid,
      ...(dynamo.javaPid ? { javaPid: dynamo.javaPid } : {}),
      dataDir,
      startedAt: new Date().toISOString(),
      queues: {
        sqsEndpoint: emulators.sqsEndpoint,
        workQueueUrl: queue.queueUrl,
        deadLetterQueueUrl: queue.dlqUrl,
      },
    };
    // Only our own info file: a second runtime refused above never gets here.
    cleanups.push({ what: 'local.json', run: publishLocalInfo(infoFile, info) });

    // A child that dies on its own takes the runtime down with it, saying what died.
    const failed = dynamo.exited.then(({ code, signal }) => {
      if (dynamo.stopping) return new Promise<Error>(() => undefined);
      const err = new Error(
        `DynamoDB Local (java pid ${dynamo.javaPid ?? '?'}) exited unexpectedly (${describeExit(code, signal)}). Its last output:\n${dynamo.output().trim() || '(none)'}`,
      );
      return stop().then(() => err);
    });

    return {
      url,
      token,
      dataDir,
      infoFile,
      tokenFile,
      javaPid: dynamo.javaPid,
      failed,
      dynamoClient,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Starts DynamoDB Local (persistent, in the data dir) and fauxqs, and meanwhile synthesizes
 * the stack for the setup workflow's definition (CPU-bound, a second or two, while java boots).
 */
async function startEmulatorsWhileSynthesizing(
  dataDir: string,
  progress: (message: string) => void,
  cleanups: Cleanup[],
) {
  const dbPath = join(dataDir, 'dynamodb');
  progress(`starting DynamoDB Local (database in ${dbPath}) and the SQS emulator (fauxqs)`);
  // Its own process group: Ctrl-C reaches us, and we stop java last, after the workers.
  const starting = startEmulators({ dbPath, detached: true });
  cleanups.push({
    what: 'DynamoDB Local and the SQS emulator',
    run: async () => (await starting.catch(() => undefined))?.stop(),
  });
  // Awaited below; until then a failure must not count as unhandled.
  starting.catch(() => undefined);
  progress('synthesizing the stack for the setup workflow definition');
  const definition = await loadSetupWorkflow(join(dataDir, 'cdk.out'));
  const emulators: Emulators = await starting;
  return { ...emulators, definition };
}

async function loadHandlerFactories() {
  const [api, setup, sweep, worker] = await Promise.all([
    import('../../lambdas/handlers/api.ts'),
    import('../../lambdas/handlers/setup.ts'),
    import('../../lambdas/handlers/sweep.ts'),
    import('../../lambdas/handlers/worker.ts'),
  ]);
  return {
    makeApiHandler: api.makeApiHandler,
    makeSetupHandler: setup.makeSetupHandler,
    makeSweepHandler: sweep.makeSweepHandler,
    makeWorkerHandler: worker.makeWorkerHandler,
  };
}

async function ensureDefaultBlueprint(invokeApi: InvokeApi, dataDir: string): Promise<void> {
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
