/**
 * The setup workflow's task (lib/constructs/setup-workflow.ts: states Advance and
 * BreakResource). Contract:
 *
 *   in:  { resourceId, action: 'advance' }                      take one setup step
 *        { resourceId, action: 'fail', error: { Error, Cause } } the workflow gave up: break it
 *   out: { resourceId, state: 'pending' | 'active' | 'broken', waitSeconds }
 *
 * A thrown error is retried by the workflow, then caught into BreakResource.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { z } from 'zod';
import type { Engine } from '../core/engine.ts';
import { ValidationError } from '../core/errors.ts';
import { advanceSetup, failSetup } from '../core/use-cases.ts';
import { formatZodIssues } from '../core/validation.ts';
import { engineFromEnvironment } from './composition.ts';
import { flushMetrics } from './emf-metrics.ts';
import { type EngineSource, engineOf, logger, loggerFor } from './runtime.ts';

const setupEventSchema = z.object({
  resourceId: z.string().min(1),
  action: z.enum(['advance', 'fail']),
  error: z.object({ Error: z.string().optional(), Cause: z.string().optional() }).optional(),
});

export type SetupEvent = z.input<typeof setupEventSchema>;

export interface SetupOutput {
  resourceId: string;
  state: 'pending' | 'active' | 'broken';
  waitSeconds: number;
}

/** Longest failure text kept in a resource's end reason. */
const MAX_REASON_LENGTH = 1000;

/**
 * The reason a failed setup gives, from the workflow's error. A Lambda task's Cause is a JSON
 * document (`{"errorType", "errorMessage", "trace"}`): only its message is kept, never the
 * stack trace, since holders read the reason.
 */
export function setupFailureReason(error: { Error?: string; Cause?: string } | undefined): string {
  let message = error?.Cause ?? '';
  try {
    const cause = JSON.parse(message) as { errorMessage?: unknown };
    if (typeof cause?.errorMessage === 'string') message = cause.errorMessage;
  } catch {
    // a plain-text Cause
  }
  const name = error?.Error && error.Error !== 'Error' ? ` (${error.Error})` : '';
  return `setup failed${name}: ${message.trim().slice(0, MAX_REASON_LENGTH) || 'no cause given'}`;
}

async function setupStep(engine: Engine, event: unknown): Promise<SetupOutput> {
  const parsed = setupEventSchema.safeParse(event);
  if (!parsed.success) {
    throw new ValidationError(
      `invalid setup event: ${formatZodIssues(parsed.error, { root: '(event)' })}`,
    );
  }
  const { resourceId, action, error } = parsed.data;
  const log = loggerFor({ resourceId });
  const outcome =
    action === 'advance'
      ? await advanceSetup(engine, resourceId)
      : await failSetup(engine, resourceId, setupFailureReason(error));
  log.info('setup step', { action, ...outcome, ...(error ? { error: error.Error } : {}) });
  return { resourceId, ...outcome };
}

export interface SetupHandlerDeps {
  engine: EngineSource;
}

/** The setup workflow's task handler on `deps.engine`. */
export function makeSetupHandler(deps: SetupHandlerDeps) {
  return middy<unknown, SetupOutput>((event: unknown) => setupStep(engineOf(deps.engine), event))
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(flushMetrics(deps.engine));
}

export const handler = makeSetupHandler({ engine: engineFromEnvironment });
