/**
 * The composition root of a Lambda container: the one place that reads the environment and
 * creates the SDK clients, and so the engine every handler file's production `handler` uses.
 * The local runtime, the bench and the tests build their own engines and pass them to the
 * handler factories (makeApiHandler, makeWorkerHandler, ...) instead.
 *
 * Environment (set by the CDK stack's `bind*` methods):
 *   TABLE_NAME               the DynamoDB table                                    (required)
 *   QUEUE_URL                the work queue                                        (required)
 *   SETUP_STATE_MACHINE_ARN  the setup workflow; unset = setup is driven from the queue
 *   ADMIN_PRINCIPALS         comma-separated principal ARNs, `*` = everyone (api only)
 *   OWNER_GRANULARITY        `role` (default) or `session`: who owns a lease (api only;
 *                            core/identity.ts)
 *   DRYDOCK_DATA_DIR         where local plug-ins keep files          @default /tmp/drydock
 *   DRYDOCK_DEPLOYMENT       the `drydock:deployment` tag value of this deployment's hosts
 *   DEAD_LETTER_QUEUE_URL    the work queue's DLQ (api only: `drydock dlq`, redrive)
 *   DRYDOCK_COMMAND_LOG_GROUP  the log group SSM Run Command writes command output to
 *                            (worker and setup only: the functions that run plug-ins)
 *
 * The registry is `deployedRegistry()`: no blueprint type whose commands would run inside the
 * Lambda itself (local-host) is offered on AWS.
 */
import { SFNClient } from '@aws-sdk/client-sfn';
import { awsCloudClients } from '../blueprints/cloud-clients.ts';
import { deployedRegistry } from '../blueprints/registry.ts';
import { type Engine, makeEngine } from '../core/engine.ts';
import type { OwnerGranularity } from '../core/identity.ts';
import { systemClock } from '../core/ports.ts';
import { SqsDeadLetterQueue } from '../queue/sqs-dead-letters.ts';
import { SqsWorkQueue } from '../queue/sqs-queue.ts';
import { createDynamoClient, createSqsClient } from '../store/clients.ts';
import { DynamoStore } from '../store/dynamo-store.ts';
import { EmfMetrics } from './emf-metrics.ts';
import { readEnvironment } from './runtime.ts';
import { stepFunctionsSetupStarter } from './setup-starter.ts';
import { sdkClientTracer } from './tracing.ts';

/**
 * An engine from `env`, on the container's SDK clients (one per service per process, warm
 * across invocations). Every engine dependency that comes from AWS is created here.
 */
export function buildEngineFromEnvironment(env: NodeJS.ProcessEnv = process.env): Engine {
  const config = readEnvironment(env);
  const clock = systemClock;
  // Every SDK call a subsegment of the function's trace (a no-op off Lambda).
  const capture = sdkClientTracer(env);
  const sqs = capture(createSqsClient());
  let sfn: SFNClient | undefined;
  const arn = config.SETUP_STATE_MACHINE_ARN;
  const startSetup = arn
    ? stepFunctionsSetupStarter(() => (sfn ??= capture(new SFNClient({ maxAttempts: 3 }))), arn)
    : undefined;
  return makeEngine({
    store: new DynamoStore({
      client: capture(createDynamoClient()),
      tableName: config.TABLE_NAME,
      clock,
    }),
    queue: new SqsWorkQueue({ client: sqs, queueUrl: config.QUEUE_URL }),
    clock,
    registry: deployedRegistry(),
    dataDir: config.DRYDOCK_DATA_DIR ?? '/tmp/drydock',
    // Plug-ins' EC2 / SSM / CloudWatch Logs clients, created on first use.
    clients: awsCloudClients({ capture }),
    // EMF on stdout, flushed at the end of every invocation (flushMetrics on each handler).
    metrics: new EmfMetrics(),
    ...(config.DEAD_LETTER_QUEUE_URL
      ? {
          deadLetters: new SqsDeadLetterQueue({
            client: sqs,
            queueUrl: config.DEAD_LETTER_QUEUE_URL,
            sourceQueueUrl: config.QUEUE_URL,
          }),
        }
      : {}),
    ...(startSetup ? { startSetup } : {}),
  });
}

/** `build`'s value, built on the first call; a build that throws is tried again next call. */
function memoise<T>(build: () => T): () => T {
  let built: { value: T } | undefined;
  return () => {
    built ??= { value: build() };
    return built.value;
  };
}

/**
 * The container's engine, built from process.env on the first invocation and reused by every
 * warm one. A misconfigured function fails that invocation (and the next) with the error
 * naming every bad variable, rather than failing to load.
 */
export const engineFromEnvironment: () => Engine = memoise(() => buildEngineFromEnvironment());

/** ADMIN_PRINCIPALS, for the api handler. */
export function adminPrincipalsFromEnvironment(env: NodeJS.ProcessEnv = process.env): string {
  return env.ADMIN_PRINCIPALS ?? '';
}

/**
 * OWNER_GRANULARITY, for the api handler. Anything but `session` is `role`: the safe default
 * (a typo must not split one role's leases into unreachable per-session owners).
 */
export function ownerGranularityFromEnvironment(
  env: NodeJS.ProcessEnv = process.env,
): OwnerGranularity {
  return env.OWNER_GRANULARITY === 'session' ? 'session' : 'role';
}
