/**
 * `drydock status`: the pool gauges (GET /v1/pools) at a glance, the same numbers the sweep
 * publishes as metrics each minute.
 */
import type { PoolStats } from '../../lambdas/core/pool-stats.ts';
import type { ApiClient } from './api.ts';
import { clip, formatDuration, type Io, printJson, table } from './output.ts';

export async function statusFlow(client: ApiClient, io: Io): Promise<number> {
  const { pools } = await client.get<{ pools: PoolStats[] }>('/v1/pools');
  if (io.json) {
    printJson(io, { pools });
    return 0;
  }
  if (pools.length === 0) {
    io.err('drydock: no blueprints yet; create one with `drydock blueprint create`\n');
    return 0;
  }
  io.out(poolTable(pools));
  return 0;
}

/** One row per blueprint: how full it is, who waits for it, whether it is healthy. */
export function poolTable(pools: PoolStats[], now = Date.now()): string {
  return table(
    [
      'BLUEPRINT',
      'BUILDS',
      'STATE',
      'LIVE/MAX',
      'LEASED',
      'IDLE',
      'SETUP',
      'WAITING',
      'OLDEST WAIT',
      'HEALTH',
    ],
    pools.map((p) => [
      p.blueprintId,
      p.resourceType,
      p.state,
      `${p.live}/${p.max}`,
      p.leased,
      p.idle,
      p.settingUp,
      p.waiting,
      p.oldestWaitSeconds === null ? '-' : formatDuration(p.oldestWaitSeconds),
      healthOf(p, now),
    ]),
  );
}

function healthOf(p: PoolStats, now: number): string {
  const h = p.health;
  if (h.failureCount === 0) return 'ok';
  const open = h.backoffUntil !== undefined && Date.parse(h.backoffUntil) > now;
  return clip(
    `${open ? `breaker open until ${h.backoffUntil}; ` : ''}${h.failureCount} failures: ${h.lastFailure ?? ''}`,
    120,
  );
}
