/**
 * What the handlers of one Lambda container share: the engine (store, queue, blueprint
 * registry, setup-workflow starter), built once from the environment and reused by every warm
 * invocation, and the logger.
 *
 * Environment (set by the CDK stack's `bind*` methods, or by the local runtime):
 *   TABLE_NAME               the DynamoDB table                                    (required)
 *   QUEUE_URL                the work queue                                        (required)
 *   SETUP_STATE_MACHINE_ARN  the setup workflow; unset = setup is driven from the queue
 *   ADMIN_PRINCIPALS         comma-separated principal ARNs, `*` = everyone (api only)
 *   DRYDOCK_DATA_DIR         where local plug-ins keep files          @default /tmp/drydock
 *
 * The local runtime and the tests replace parts of the engine with setEngineOverrides() and
 * start over with resetEngine().
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { z } from 'zod';
import { defaultRegistry } from '../blueprints/registry.ts';
import { type Engine, type EngineSettings, makeEngine } from '../core/engine.ts';
import { DrydockError, errorMessage, TemporaryError } from '../core/errors.ts';
import { type Clock, systemClock } from '../core/ports.ts';
import { formatZodIssues } from '../core/validation.ts';
import { SqsWorkQueue } from '../queue/sqs-queue.ts';
import { dynamoClient, resetClients, sqsClient } from '../store/clients.ts';
import { DynamoStore } from '../store/dynamo-store.ts';

/**
 * Structured JSON logs. The stack names each function's service (`drydock-api`, ...) through
 * POWERTOOLS_SERVICE_NAME; elsewhere it is `drydock`. Use `loggerFor` to put the ids of what a
 * line is about on it.
 */
export const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME || 'drydock' });

export interface LogIds {
  leaseId?: string;
  resourceId?: string;
  blueprintId?: string;
  commandId?: string;
}

/**
 * A logger whose every line carries these ids. A child per unit of work, not appendKeys on the
 * shared logger: the worker processes a batch's records concurrently, and keys appended for one
 * record would land on another's lines.
 */
export function loggerFor(ids: LogIds): Logger {
  const keys = Object.fromEntries(Object.entries(ids).filter(([, v]) => v !== undefined));
  return logger.createChild({ persistentKeys: keys });
}

// ---- configuration --------------------------------------------------------------------------

const optional = z
  .string()
  .optional()
  .transform((v) => (v === '' ? undefined : v));

const environmentSchema = z.object({
  TABLE_NAME: z.string({ error: 'required (the DynamoDB table name)' }).min(1, 'must not be empty'),
  // Not checked as a URL: emulators' queue URLs are not always valid ones (fauxqs makes
  // `http://sqs.<region>.127.0.0.1:<port>/...`), and the SDK is given the endpoint anyway.
  QUEUE_URL: z.string({ error: 'required (the work queue URL)' }).min(1, 'must not be empty'),
  SETUP_STATE_MACHINE_ARN: optional.pipe(
    z
      .string()
      .regex(/^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:.+$/, 'not a state machine ARN')
      .optional(),
  ),
  DRYDOCK_DATA_DIR: optional,
});

export type RuntimeEnvironment = z.output<typeof environmentSchema>;

/** The environment, parsed once per engine; every problem is named in one error. */
export function readEnvironment(env: NodeJS.ProcessEnv = process.env): RuntimeEnvironment {
  const parsed = environmentSchema.safeParse(env);
  if (!parsed.success) {
    // Every issue here names a variable, so there is no root to name.
    throw new DrydockError(
      'misconfigured',
      `the function is misconfigured: ${formatZodIssues(parsed.error, { root: '' })}`,
    );
  }
  return parsed.data;
}

/**
 * Whether a principal may administer blueprints and resources: listed in ADMIN_PRINCIPALS
 * (read per call, so tests and the local runtime can change it), `*` admitting everyone. A
 * listed IAM role also admits its sessions: API Gateway reports a caller using the role
 * `arn:aws:iam::1:role/path/admin` as `arn:aws:sts::1:assumed-role/admin/<session>`.
 */
export function isAdmin(principal: string, list = process.env.ADMIN_PRINCIPALS ?? ''): boolean {
  const admins = list
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  if (admins.includes('*') || admins.includes(principal)) return true;
  const session = /^arn:(aws[a-z-]*):sts::(\d{12}):assumed-role\/([^/]+)\/[^/]+$/.exec(principal);
  if (!session) return false;
  const [, partition, account, role] = session;
  return admins.some((admin) => {
    const listed = /^arn:(aws[a-z-]*):iam::(\d{12}):role\/(?:.*\/)?([^/]+)$/.exec(admin);
    return (
      listed !== null && listed[1] === partition && listed[2] === account && listed[3] === role
    );
  });
}

// ---- the engine -----------------------------------------------------------------------------

export interface EngineOverrides {
  /** Replaces the Step Functions starter (the local runtime runs the workflow in-process). */
  startSetup: (resourceId: string) => Promise<void>;
  dataDir: string;
  settings: Partial<EngineSettings>;
  clock: Clock;
}

let overrides: Partial<EngineOverrides> = {};
let engine: Engine | undefined;
let sfn: SFNClient | undefined;

/** The container's engine, built from the environment on first use. */
export function getEngine(): Engine {
  engine ??= buildEngine();
  return engine;
}

/**
 * Replace parts of the engine (all previous overrides are dropped); the next getEngine() builds
 * a new engine with them.
 */
export function setEngineOverrides(next: Partial<EngineOverrides>): void {
  overrides = { ...next };
  engine = undefined;
}

/** Forget the engine, the overrides and the SDK clients (a new environment, or shutdown). */
export function resetEngine(): void {
  engine = undefined;
  overrides = {};
  resetClients();
  sfn?.destroy();
  sfn = undefined;
}

function buildEngine(): Engine {
  const env = readEnvironment();
  const clock = overrides.clock ?? systemClock;
  const startSetup =
    overrides.startSetup ??
    (env.SETUP_STATE_MACHINE_ARN ? startSetupExecution(env.SETUP_STATE_MACHINE_ARN) : undefined);
  return makeEngine({
    store: new DynamoStore({ client: dynamoClient(), tableName: env.TABLE_NAME, clock }),
    queue: new SqsWorkQueue({ client: sqsClient(), queueUrl: env.QUEUE_URL }),
    clock,
    registry: defaultRegistry(),
    dataDir: overrides.dataDir ?? env.DRYDOCK_DATA_DIR ?? '/tmp/drydock',
    ...(overrides.settings ? { settings: overrides.settings } : {}),
    ...(startSetup ? { startSetup } : {}),
  });
}

/**
 * Retries: the SDK's standard 3 attempts. StartExecution is idempotent by name here (see
 * setupExecutionName), so a retry after a lost response is harmless.
 */
function sfnClient(): SFNClient {
  sfn ??= new SFNClient({ maxAttempts: 3 });
  return sfn;
}

/**
 * The execution name for a resource's setup. Every lease update on a pending resource may ask
 * to start its setup; one name per resource makes every start after the first a no-op
 * (Step Functions keeps names unique per state machine for 90 days).
 */
export function setupExecutionName(resourceId: string): string {
  return `setup-${resourceId}`.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 80);
}

function startSetupExecution(stateMachineArn: string): (resourceId: string) => Promise<void> {
  return async (resourceId) => {
    try {
      await sfnClient().send(
        new StartExecutionCommand({
          stateMachineArn,
          name: setupExecutionName(resourceId),
          input: JSON.stringify({ resourceId }),
        }),
      );
      loggerFor({ resourceId }).info('setup workflow started', { stateMachineArn });
    } catch (err) {
      const name = (err as { name?: string }).name ?? '';
      // Started before (by another lease's update, or a redelivery): it is running or done.
      if (name === 'ExecutionAlreadyExists') return;
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (name === 'ThrottlingException' || (status ?? 0) >= 500) {
        throw new TemporaryError(`starting the setup of ${resourceId} failed temporarily`, {
          cause: err,
        });
      }
      throw new DrydockError(
        'workflow_failure',
        `starting the setup of ${resourceId} failed: ${errorMessage(err)}`,
        { cause: err },
      );
    }
  };
}
