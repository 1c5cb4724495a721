/**
 * Metrics from committed transactions (lambdas/core/metric-events.ts): only a write that
 * commits counts, reasons are folded into a closed set, and the metric lines `npm start
 * --verbose` prints.
 */
import { describe, expect, it } from 'vitest';
import { WriteConflictError } from '../../lambdas/core/errors.ts';
import { metricsOnCommit, REASON_CLASSES, reasonClass } from '../../lambdas/core/metric-events.ts';
import { formatMetricPoint, type MetricPoint, metricsTo } from '../../lambdas/core/metrics.ts';
import type { LogEvent } from '../../lambdas/core/model.ts';
import type { Store, TxWrite } from '../../lambdas/core/ports.ts';

const at = '2026-11-30T12:00:10.000Z';
const log = (event: Omit<LogEvent, 'seq' | 'at'>): TxWrite => ({
  op: 'appendLog',
  event: { ...event, seq: `${at}#1`, at },
});

function recorder() {
  const points: MetricPoint[] = [];
  return { points, metrics: metricsTo((p) => points.push(p)) };
}

/** A store whose transact commits, or loses its condition. */
function storeThat(commits: boolean): Store {
  return {
    transact: async () => {
      if (!commits) {
        throw new WriteConflictError('lost', [{ label: 'updateLease:L1', reason: 'condition' }]);
      }
    },
  } as unknown as Store;
}

const activation: TxWrite[] = [
  {
    op: 'updateLease',
    id: 'L1',
    type: 'host',
    expect: { status: 'acquired', version: 1 },
    set: { status: 'active' },
  },
  log({
    objectId: 'L1',
    type: 'lease.activated',
    message: 'active',
    data: { blueprintId: 'pool', requestedAt: '2026-11-30T12:00:00.000Z' },
  }),
];

describe('metrics on commit', () => {
  it('a committed activation counts once, with the time from request to active', async () => {
    const { points, metrics } = recorder();
    await metricsOnCommit(storeThat(true), metrics).transact(activation);
    expect(points).toEqual([
      {
        name: 'LeasesActivated',
        unit: 'Count',
        value: 1,
        dimensions: { resourceType: 'host', blueprint: 'pool' },
      },
      {
        name: 'LeaseTimeToActive',
        unit: 'Milliseconds',
        value: 10_000,
        dimensions: { resourceType: 'host', blueprint: 'pool' },
      },
    ]);
  });

  it('a write that lost its condition (a duplicate delivery) counts nothing', async () => {
    const { points, metrics } = recorder();
    await expect(metricsOnCommit(storeThat(false), metrics).transact(activation)).rejects.toThrow(
      WriteConflictError,
    );
    expect(points).toEqual([]);
  });

  it("a command's end is counted by the status its record moved to", async () => {
    const { points, metrics } = recorder();
    const end = (status: string, data: Record<string, unknown>): TxWrite[] => [
      {
        op: 'updateCommand',
        leaseId: 'L1',
        id: 'C1',
        expect: { status: 'running', attempt: 1 },
        set: { status: status as 'finished' },
      },
      log({
        objectId: 'L1',
        type: 'lease.command',
        message: 'ended',
        data: { commandId: 'C1', ...data },
      }),
    ];
    const store = metricsOnCommit(storeThat(true), metrics);
    await store.transact(end('finished', { exitCode: 0, timedOut: false, durationMs: 1200 }));
    await store.transact(end('finished', { exitCode: null, timedOut: true, durationMs: 5000 }));
    await store.transact(end('failed', {}));
    expect(points.map((p) => `${p.name}=${p.value}`)).toEqual([
      'CommandsFinished=1',
      'CommandDuration=1200',
      'CommandsTimedOut=1',
      'CommandDuration=5000',
      'CommandsFailed=1',
    ]);
  });
});

describe('reason classes', () => {
  it('fold free-text reasons into a closed set', () => {
    const cases: Array<[string, string, string]> = [
      ['lease.activation-failed', 'activation on res-1 failed: boom', 'activation-failed'],
      ['resource.broken', 'setup did not finish within 900s', 'setup-timeout'],
      ['resource.activation-failed', 'activation failed: no capacity', 'setup-failed'],
      ['resource.broken', 'failed its periodic health check: gone', 'health-check'],
      ['resource.broken', 'released by arn:aws:iam::1:user/alice', 'released-by-admin'],
      ['lease.broken', "blueprint 'pool' was deleted", 'blueprint-deleted'],
      ['lease.broken', 'host res-1 broke: released by arn:aws:iam::1:user/alice', 'resource-ended'],
      ['lease.broken', 'resource res-9 disappeared', 'resource-ended'],
      ['lease.broken', 'something new and unforeseen', 'other'],
    ];
    for (const [type, reason, expected] of cases) {
      expect(reasonClass(type, reason), reason).toBe(expected);
      expect(REASON_CLASSES).toContain(expected);
    }
  });
});

describe('metric lines (npm start --verbose)', () => {
  it('name, value, unit and dimensions on one line', () => {
    expect(
      formatMetricPoint({
        name: 'LeaseTimeToActive',
        unit: 'Milliseconds',
        value: 1234,
        dimensions: { resourceType: 'host', blueprint: 'local' },
      }),
    ).toBe('metric LeaseTimeToActive 1234 Milliseconds resourceType=host blueprint=local');
  });
});
