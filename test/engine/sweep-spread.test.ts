/**
 * The sweep over spread status partitions (issue 14 item 4, store/schema.ts GSI2): stranded
 * leases in every shard, a budget of no time at all so each run takes one page. Each run
 * re-drives the page of the leases due longest across ALL shards (the shards are merged by
 * sweepAt, not read one after another), and once the workers have moved those on, the next run
 * resumes with the next ones, until every lease has been re-driven exactly once.
 */
import { describe, expect, it } from 'vitest';
import type { Lease } from '../../lambdas/core/model.ts';
import { runSweep } from '../../lambdas/core/sweep.ts';
import { statusShard } from '../../lambdas/store/keys.ts';
import { STATUS_SHARDS } from '../../lambdas/store/schema.ts';
import { testSystem } from '../support/system.ts';

const STRANDED = 230;
/** The sweep's page (sweep.ts pagesUntil). */
const PAGE = 100;

describe('the sweep over spread status partitions', () => {
  it('with a small budget each run re-drives the most overdue page over all shards, and the next resumes', async () => {
    const { engine, store, queue, clock } = await testSystem();
    const now = clock.now();
    // sweepAt interleaves the shards: lease n was due (n * 37 % STRANDED) + 1 minutes ago.
    const leases: Lease[] = Array.from({ length: STRANDED }, (_, n) => {
      const due = new Date(now - (((n * 37) % STRANDED) + 1) * 60_000).toISOString();
      return {
        id: `lease-stranded-${n}`,
        type: 'host',
        attributes: {},
        owner: 'ci',
        status: 'pending',
        version: 1,
        slotLocks: [],
        requestedAt: due,
        updatedAt: due,
        sweepAt: due,
        waitSeq: 0,
        requeues: 0,
      };
    });
    const shards = new Set(leases.map((l) => statusShard(l.id)));
    expect(shards.size).toBe(STATUS_SHARDS);
    for (let i = 0; i < leases.length; i += 25) {
      await store.transact(
        leases.slice(i, i + 25).map((lease) => ({ op: 'createLease' as const, lease })),
      );
    }
    const byId = new Map(leases.map((l) => [l.id, l]));
    const mostOverdueFirst = [...leases]
      .sort((a, b) => ((a.sweepAt as string) < (b.sweepAt as string) ? -1 : 1))
      .map((l) => l.id);

    const redriven: string[] = [];
    for (let run = 0; run < 10; run++) {
      const sentBefore = queue.sent.length;
      const report = await runSweep(engine, { budgetMs: 0 });
      const ids = queue.sent
        .slice(sentBefore)
        .filter((m) => m.kind === 'lease')
        .map((m) => m.id);
      expect(ids).toHaveLength(report.redrivenLeases);
      // This run's page is the next most overdue, whatever shard each lease is in.
      expect(ids).toEqual(mostOverdueFirst.slice(redriven.length, redriven.length + PAGE));
      redriven.push(...ids);
      if (redriven.length < STRANDED) {
        expect(report.unfinished).toContain('leases pending');
      } else {
        expect(report.unfinished).not.toContain('leases pending');
        break;
      }
      // The workers handle the re-drives: each moves its lease's sweepAt on.
      const later = new Date(clock.now() + 3_600_000).toISOString();
      for (let i = 0; i < ids.length; i += 25) {
        await store.transact(
          ids.slice(i, i + 25).map((id) => ({
            op: 'updateLease' as const,
            id,
            type: 'host',
            expect: { status: 'pending' as const, version: byId.get(id)?.version ?? 1 },
            set: { sweepAt: later },
          })),
        );
      }
      clock.advance(60_000);
    }
    expect(redriven).toHaveLength(STRANDED);
    expect(new Set(redriven).size).toBe(STRANDED);
  }, 120_000);
});
