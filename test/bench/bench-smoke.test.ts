/**
 * Keeps the bench code from rotting: runs the contention benchmark function at tiny sizes on
 * the test emulators and checks its invariants and the shape of its result. No timing
 * assertions — timings belong to `npm run bench`, on a quiet machine.
 */
import { describe, expect, inject, it } from 'vitest';
import { classifyAction, contentionRows, runContention } from '../../bench/contention.ts';
import { checkHostBill, checkNoOverlap } from '../../bench/lib/invariants.ts';
import { renderResult } from '../../bench/lib/report.ts';
import { figure, latencySummary, percentile } from '../../bench/lib/stats.ts';
import type { Lease } from '../../lambdas/core/model.ts';
import type { LeaseOutcome } from '../../lambdas/core/outcomes.ts';
import type { Store } from '../../lambdas/core/ports.ts';

describe('bench smoke', () => {
  it('percentiles are nearest-rank and figures carry their runs', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(values, 50)).toBe(50);
    expect(percentile(values, 99)).toBe(99);
    expect(percentile([7], 99)).toBe(7);
    expect(latencySummary([]).samples).toBe(0);
    expect(figure([3, 1, 2])).toEqual({ median: 2, min: 1, max: 3, runs: [3, 1, 2] });
    const waited: LeaseOutcome = { action: 'waited', detail: 'pool full (retry in 2s)' };
    const acquiredThenStale: LeaseOutcome = { action: 'acquired', next: { action: 'stale' } };
    const acquiredThenActivated: LeaseOutcome = {
      action: 'acquired',
      next: { action: 'activated', detail: 'on res-1' },
    };
    expect(classifyAction(waited)).toBe('waited');
    expect(classifyAction(acquiredThenStale)).toBe('stale');
    expect(classifyAction(acquiredThenActivated)).toBe('other');
  });

  it('the invariant checks catch an exceeded cap and two leases on one host at once', async () => {
    const created = (host: number, ms: number) => ({
      event: 'created',
      hostId: `h${host}`,
      resourceId: `res-${host}`,
      at: new Date(ms).toISOString(),
      writtenAt: ms,
    });
    const bill = [created(1, 1000), created(2, 2000), created(3, 3000)];
    const store = { listRecords: async () => bill } as unknown as Store;
    const violations: string[] = [];
    const hosts = await checkHostBill(store, 'pool', 2, violations);
    expect(hosts).toEqual({ peakAlive: 3, launched: 3, alive: 3 });
    expect(violations).toEqual(["blueprint 'pool' had 3 hosts alive at once (cap 2)"]);

    const lease = (id: string, from: number, to: number) =>
      ({
        id,
        resourceId: 'res-1',
        activatedAt: new Date(from).toISOString(),
        releasedAt: new Date(to).toISOString(),
      }) as Lease;
    const overlaps: string[] = [];
    checkNoOverlap([lease('a', 0, 100), lease('b', 100, 200)], overlaps);
    expect(overlaps).toEqual([]);
    checkNoOverlap([lease('a', 0, 100), lease('b', 50, 200)], overlaps);
    expect(overlaps).toEqual(['b became active on res-1 before a was released']);
  });

  it.each(['handler', 'direct'] as const)(
    'the contention benchmark (%s workers) serves every lease within the cap, with a complete result',
    async (workerMode) => {
      const env = { dynamoEndpoint: inject('dynamoEndpoint'), sqsEndpoint: inject('sqsEndpoint') };
      const run = await runContention(env, { leases: 6, cap: 2, workers: 3, workerMode });

      expect(run.violations).toEqual([]);
      expect(run.workerErrors).toBe(0);
      expect(run.dlqMessages).toBe(0);
      expect(run.config).toEqual({
        leases: 6,
        cap: 2,
        workers: 3,
        reclaimOnRelease: true,
        workerMode,
      });
      expect(run.peakHostsAlive).toBeGreaterThanOrEqual(1);
      expect(run.peakHostsAlive).toBeLessThanOrEqual(2);
      // Reclaim on release: a fresh host per lease.
      expect(run.hostsLaunched).toBe(6);
      expect(run.requestToActiveMs.samples).toBe(6);
      expect(run.servedMs).toBeGreaterThan(0);
      expect(run.drainedMs).toBeGreaterThanOrEqual(run.servedMs);
      expect(run.leasesPerSecond).toBeGreaterThan(0);

      // Every role's calls were counted, and the engine's are the API's plus the workers'.
      expect(run.dynamo.api.calls).toBeGreaterThanOrEqual(6 * 2);
      expect(run.dynamo.worker.calls).toBeGreaterThan(0);
      expect(run.dynamo.holder.calls).toBeGreaterThan(0);
      expect(run.dynamo.engine.calls).toBe(run.dynamo.api.calls + run.dynamo.worker.calls);
      expect(run.dynamo.engine.byOperation.TransactWriteItems).toBeGreaterThan(0);
      const profiled = run.operations.reduce((sum, op) => sum + op.calls, 0);
      expect(profiled).toBe(run.dynamo.engine.calls);
      expect(run.operations.some((op) => op.category === 'records')).toBe(true);

      // Every update's action was counted; wasted work is part of it.
      const counted = Object.values(run.updates.actions).reduce((sum, n) => sum + n, 0);
      expect(counted).toBe(run.updates.total);
      expect(run.updates.total).toBeGreaterThanOrEqual(6);
      expect(run.updates.wasted).toBe(run.updates.waited + run.updates.stale);
      expect(run.updates.wasted).toBeLessThanOrEqual(run.updates.total);
      expect(run.sqs.messagesSent).toBeGreaterThanOrEqual(6);
      expect(run.cpu.wallMs).toBeGreaterThan(0);

      // The table renders every figure.
      const rows = contentionRows([run]);
      const markdown = renderResult({
        name: 'contention',
        title: 'smoke',
        config: {},
        rows,
        notes: [],
        runsPerFigure: 1,
        runs: [run],
        violations: [],
        wallMs: 0,
      });
      expect(markdown).toContain('| time until all served (s) |');
      expect(markdown).not.toContain('INVARIANT VIOLATIONS');
    },
    120_000,
  );
});
