/**
 * The pool gauges the sweep writes each minute: the pool stats (pool-stats.ts) of every
 * blueprint as metrics, plus two fleet-wide ones without a blueprint dimension that alarms can
 * watch without knowing the blueprints (which are data, not infrastructure).
 */
import type { Engine } from './engine.ts';
import { METRIC } from './metrics.ts';
import { type PoolStats, poolStats } from './pool-stats.ts';

export async function recordPoolGauges(engine: Engine): Promise<PoolStats[]> {
  const now = engine.now();
  const pools = await poolStats(engine, now);
  const { metrics } = engine;
  for (const p of pools) {
    const d = { blueprint: p.blueprintId };
    metrics.gauge(METRIC.poolLive, d, p.live);
    metrics.gauge(METRIC.poolLeased, d, p.leased);
    metrics.gauge(METRIC.poolIdle, d, p.idle);
    metrics.gauge(METRIC.poolSettingUp, d, p.settingUp);
    metrics.gauge(METRIC.poolMax, d, p.max);
    metrics.gauge(METRIC.poolWaiting, d, p.waiting);
    metrics.gauge(METRIC.poolOldestWait, d, p.oldestWaitSeconds ?? 0, 'Seconds');
  }
  const open = pools.filter(
    (p) => p.health.backoffUntil !== undefined && Date.parse(p.health.backoffUntil) > now,
  );
  metrics.gauge(METRIC.breakersOpen, {}, open.length);
  metrics.gauge(
    METRIC.oldestWait,
    {},
    Math.max(0, ...pools.map((p) => p.oldestWaitSeconds ?? 0)),
    'Seconds',
  );
  return pools;
}
