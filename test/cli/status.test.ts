/** `drydock status`: the pool gauges as a table people read at a glance. */
import { describe, expect, it } from 'vitest';
import type { PoolStats } from '../../lambdas/core/pool-stats.ts';
import { poolTable } from '../../lib/cli/status.ts';

const base: PoolStats = {
  blueprintId: 'linux',
  type: 'synthetic',
  resourceType: 'host',
  state: 'enabled',
  health: { failureCount: 0 },
  live: 3,
  settingUp: 1,
  active: 2,
  leased: 2,
  idle: 0,
  max: 3,
  waiting: 4,
  oldestWaitSeconds: 95,
};

describe('drydock status', () => {
  it('shows live/max, leased, idle, setting up, waiting and the oldest wait per blueprint', () => {
    const now = Date.parse('2026-11-30T12:00:00Z');
    const text = poolTable(
      [
        base,
        {
          ...base,
          blueprintId: 'mac',
          state: 'draining',
          health: {
            failureCount: 3,
            backoffUntil: '2026-11-30T12:05:00.000Z',
            lastFailure: 'allocation failed: quota',
          },
          live: 0,
          settingUp: 0,
          active: 0,
          leased: 0,
          waiting: 0,
          oldestWaitSeconds: null,
        },
      ],
      now,
    );
    const [header, linux, mac] = text.trimEnd().split('\n');
    expect(header?.split(/\s{2,}/)).toEqual([
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
    ]);
    expect(linux?.split(/\s{2,}/)).toEqual([
      'linux',
      'host',
      'enabled',
      '3/3',
      '2',
      '0',
      '1',
      '4',
      '1m35s',
      'ok',
    ]);
    expect(mac?.split(/\s{2,}/)).toEqual([
      'mac',
      'host',
      'draining',
      '0/3',
      '0',
      '0',
      '0',
      '0',
      '-',
      'breaker open until 2026-11-30T12:05:00.000Z; 3 failures: allocation failed: quota',
    ]);
  });
});
