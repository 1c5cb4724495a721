/**
 * The every-minute sweep (EventBridge schedule): expiry, reclaim, re-drive, orphaned slot
 * locks (lambdas/core/sweep.ts). Not retried on failure: the next tick does the same work.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { recordPoolGauges } from '../core/pool-gauges.ts';
import { DEFAULT_SWEEP_BUDGET_MS, runSweep, type SweepReport } from '../core/sweep.ts';
import { engineFromEnvironment } from './composition.ts';
import { flushMetrics } from './emf-metrics.ts';
import { type EngineSource, engineOf, logger } from './runtime.ts';

export interface SweepHandlerDeps {
  engine: EngineSource;
}

/** The sweep Lambda handler on `deps.engine`. */
export function makeSweepHandler(deps: SweepHandlerDeps) {
  async function sweep(_event: unknown, context?: Context): Promise<SweepReport> {
    const engine = engineOf(deps.engine);
    // The run's budget leaves the function time for the page in hand and the pool gauges.
    const remaining = context?.getRemainingTimeInMillis?.();
    const budgetMs =
      remaining === undefined
        ? DEFAULT_SWEEP_BUDGET_MS
        : Math.max(1_000, Math.min(DEFAULT_SWEEP_BUDGET_MS, remaining - 8_000));
    const report = await runSweep(engine, { budgetMs });
    logger.info('sweep finished', { ...report });
    // The pool gauges, once a minute with the sweep (a few index queries).
    await recordPoolGauges(engine);
    return report;
  }
  return middy<unknown, SweepReport>(sweep)
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(flushMetrics(deps.engine));
}

export const handler = makeSweepHandler({ engine: engineFromEnvironment });
