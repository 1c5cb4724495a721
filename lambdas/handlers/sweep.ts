/**
 * The every-minute sweep (EventBridge schedule): expiry, reclaim, re-drive, orphaned slot
 * locks (lambdas/core/sweep.ts). Not retried on failure: the next tick does the same work.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { runSweep, type SweepReport } from '../core/sweep.ts';
import { engineFromEnvironment } from './composition.ts';
import { type EngineSource, engineOf, logger } from './runtime.ts';

export interface SweepHandlerDeps {
  engine: EngineSource;
}

/** The sweep Lambda handler on `deps.engine`. */
export function makeSweepHandler(deps: SweepHandlerDeps) {
  async function sweep(): Promise<SweepReport> {
    const report = await runSweep(engineOf(deps.engine));
    logger.info('sweep finished', { ...report });
    return report;
  }
  return middy<unknown, SweepReport>(sweep).use(injectLambdaContext(logger, { resetKeys: true }));
}

export const handler = makeSweepHandler({ engine: engineFromEnvironment });
