/**
 * Contention: 50 leases requested at once on a synthetic pool capped at 5 hosts with one lease
 * per host, served by 16 concurrent workers pulling from the SQS emulator, with duplicate
 * deliveries injected at random. Each holder runs a command and releases its lease as soon as
 * it is active. Checked from recorded history — the blueprint's own host bill and the leases'
 * activation/release times — not by sampling.
 */
import { describe, expect, it } from 'vitest';
import { hostTimeline, syntheticScopes } from '../../lambdas/blueprints/synthetic/index.ts';
import type { Lease } from '../../lambdas/core/model.ts';
import { createBlueprint, releaseLease, requestLease } from '../../lambdas/core/use-cases.ts';
import { runCommandToEnd } from '../support/commands.ts';
import { seeded, sqsEngine, startDuplicatingWorkers } from '../support/duplicating-workers.ts';
import { waitFor } from '../support/env.ts';

const LEASES = 50;
const CAP = 5;
const WORKERS = 16;
const DUPLICATE_RATE = 0.15;

describe('contention', () => {
  it(`${LEASES} leases at once on a ${CAP}-host pool with ${WORKERS} workers and duplicate deliveries`, async () => {
    const { engine, store, client, queueUrl } = await sqsEngine('contention', {
      blueprintCacheMs: 1000,
      backoffBaseSeconds: 1,
      backoffCapSeconds: 4,
      strandAfterSeconds: 120,
    });
    await createBlueprint(engine, {
      id: 'pool',
      type: 'synthetic',
      resourceType: 'host',
      limits: { maxResources: CAP, leasesPerResource: 1, reclaimOnRelease: true },
    });
    store.resetStats();

    const random = seeded(2015);
    const {
      failures,
      duplicates,
      stop: stopWorkers,
    } = startDuplicatingWorkers({
      client,
      queueUrl,
      engine,
      workers: WORKERS,
      duplicateRate: DUPLICATE_RATE,
      random,
    });

    try {
      const started = Date.now();
      const leases = await Promise.all(
        Array.from({ length: LEASES }, () => requestLease(engine, { type: 'host', owner: 'ci' })),
      );

      // Holders: as soon as a lease is active, run a command on it, then release it.
      const holders = new Map<string, Promise<void>>();
      const hold = async (lease: Lease) => {
        const result = await runCommandToEnd(
          engine,
          lease.id,
          { argv: ['echo', lease.id] },
          { principal: 'ci' },
        );
        expect(result.stdout).toBe(`${lease.id}\n`);
        await releaseLease(engine, lease.id, { principal: 'ci' });
      };
      await waitFor(
        async () => {
          for (const lease of (await store.listLeasesByStatus('active', { limit: 100 })).items) {
            if (!holders.has(lease.id)) holders.set(lease.id, hold(lease));
          }
          return holders.size === LEASES;
        },
        { timeoutMs: 180_000, intervalMs: 100, message: `all ${LEASES} leases to become active` },
      );
      await Promise.all(holders.values());
      await waitFor(
        async () => {
          const ended = await Promise.all(leases.map((l) => store.getLease(l.id)));
          return ended.every((l) => l?.status === 'destroyed');
        },
        { timeoutMs: 60_000, intervalMs: 200, message: 'every lease to be destroyed' },
      );
      await waitFor(async () => (await store.listSlotLocks()).items.length === 0, {
        timeoutMs: 60_000,
        intervalMs: 200,
        message: 'every host to be reclaimed and its slot lock freed',
      });
      const elapsed = Date.now() - started;

      // Every lease became active and ended because its holder released it.
      const final = (await Promise.all(leases.map((l) => store.getLease(l.id)))) as Lease[];
      for (const lease of final) {
        expect(lease.activatedAt, lease.id).toBeDefined();
        expect(lease.endReason, lease.id).toBe('released by ci');
      }

      // The blueprint's own bill never shows more than CAP hosts alive at once.
      const bill = hostTimeline(await store.listRecords(syntheticScopes.hosts('pool')));
      expect(bill.maxAlive).toBeLessThanOrEqual(CAP);
      expect(bill.maxAlive).toBeGreaterThan(1); // the workers really ran in parallel
      expect(bill.alive).toEqual([]);

      // No two leases were ever active on one host at the same time.
      const byHost = new Map<string, Array<[number, number, string]>>();
      for (const lease of final) {
        const spans = byHost.get(lease.resourceId!) ?? [];
        spans.push([Date.parse(lease.activatedAt!), Date.parse(lease.releasedAt!), lease.id]);
        byHost.set(lease.resourceId!, spans);
      }
      for (const [host, spans] of byHost) {
        spans.sort((a, b) => a[0] - b[0]);
        for (let i = 1; i < spans.length; i++) {
          expect(
            spans[i]![0],
            `${spans[i]![2]} activated on ${host} before ${spans[i - 1]![2]} was released`,
          ).toBeGreaterThanOrEqual(spans[i - 1]![1]);
        }
      }
      expect(failures).toEqual([]);

      // Reclaim on release: every lease got a fresh host of its own, never a used one.
      const hosts = new Set(bill.events.filter((e) => e.event === 'created').map((e) => e.hostId));
      expect(hosts.size).toBe(LEASES);
      expect(new Set(final.map((l) => l.resourceId)).size).toBe(LEASES);

      const perLease = (store.stats.calls / LEASES).toFixed(1);
      console.log(
        `contention: ${LEASES} leases, cap ${CAP}, ${WORKERS} workers, ${duplicates()} duplicate deliveries, ` +
          `${hosts.size} hosts launched, peak ${bill.maxAlive} alive, ` +
          `${(elapsed / 1000).toFixed(1)}s; DynamoDB calls per lease: ${perLease} ` +
          `(${JSON.stringify(store.stats.byOperation)})`,
      );
    } finally {
      await stopWorkers();
    }
  }, 300_000);
});
