/**
 * What the handlers share: the logger, the parsed environment, who is an admin, and how a
 * handler is given its engine (an Engine, or a thunk that builds it on first use). Which engine
 * that is gets decided elsewhere: by composition.ts on AWS, by the local runtime, the bench and
 * the tests for themselves.
 *
 * Environment (set by the CDK stack's `bind*` methods, or by the local runtime):
 *   TABLE_NAME               the DynamoDB table                                    (required)
 *   QUEUE_URL                the work queue                                        (required)
 *   SETUP_STATE_MACHINE_ARN  the setup workflow; unset = setup is driven from the queue
 *   ADMIN_PRINCIPALS         comma-separated principal ARNs, `*` = everyone (api only)
 *   DRYDOCK_DATA_DIR         where local plug-ins keep files          @default /tmp/drydock
 *   DEAD_LETTER_QUEUE_URL    the work queue's DLQ (api only: GET /v1/admin/dlq, redrive)
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { z } from 'zod';
import type { Engine } from '../core/engine.ts';
import { DrydockError } from '../core/errors.ts';
import { isAdminPrincipal } from '../core/identity.ts';
import { formatZodIssues } from '../core/validation.ts';

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
  /** The work queue's dead-letter queue (api function only: `drydock dlq`). */
  DEAD_LETTER_QUEUE_URL: optional,
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
 * Whether a principal may administer blueprints and resources: listed in `list` (the
 * ADMIN_PRINCIPALS format: comma-separated ARNs), `*` admitting everyone. A listed IAM role also
 * admits its sessions. The rule lives with the owner rule, in core/identity.ts.
 */
export function isAdmin(principal: string, list: string): boolean {
  return isAdminPrincipal(principal, list);
}

// ---- the engine a handler is given -----------------------------------------------------------

/**
 * A handler's engine: one already built, or a thunk the handler calls on each invocation. On
 * AWS it is the memoised composition.ts builder, so the engine (and its SDK clients) is built
 * on the first invocation, inside the handler, rather than when the module is imported.
 */
export type EngineSource = Engine | (() => Engine);

export function engineOf(source: EngineSource): Engine {
  return typeof source === 'function' ? source() : source;
}
