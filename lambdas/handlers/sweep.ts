/**
 * The every-minute sweep (EventBridge schedule): expiry, reclaim, re-drive, orphaned slot
 * locks (lambdas/core/sweep.ts). Not retried on failure: the next tick does the same work.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { runSweep, type SweepReport } from '../core/sweep.ts';
import { getEngine, logger } from './runtime.ts';

async function sweep(): Promise<SweepReport> {
  const report = await runSweep(getEngine());
  logger.info('sweep finished', { ...report });
  return report;
}

export const handler = middy<unknown, SweepReport>(sweep).use(
  injectLambdaContext(logger, { resetKeys: true }),
);
