/**
 * Crash test: an update that dies right after any one of its writes leaves state that a
 * redelivery (plus, at worst, the sweep) completes — no lease, slot lock or host lost or
 * doubled. Two scenarios, each crashed at every write point in turn:
 *  - one lease, a one-host pool that reclaims on release: allocate, set up, activate,
 *    release, destroy the lease, reclaim and destroy the host;
 *  - two leases contending for one slow-to-boot host: the second waits, is woken when the
 *    first is released, and gets the same host.
 */
import { describe, expect, it } from 'vitest';
import { hostTimeline, syntheticScopes } from '../../lambdas/blueprints/synthetic/index.ts';
import { InjectedCrash } from '../../lambdas/core/errors.ts';
import type { Lease } from '../../lambdas/core/model.ts';
import { releaseLease, requestLease, runSweep } from '../../lambdas/core/use-cases.ts';
import { CrashPlan, crashingQueue, crashingStore } from '../support/crash.ts';
import { leaseNow, syntheticPool, type TestSystem, testSystem } from '../support/system.ts';

const holder = { principal: 'ci' };

interface Scenario {
  name: string;
  leases: number;
  limits: Record<string, unknown>;
  config?: Record<string, unknown>;
  /** Hosts alive at the end (reclaimed on release, or kept warm in the pool). */
  aliveAtEnd: number;
  /** Writes the clean run must contain, so the scenario provably crosses those paths. */
  mustCross: string[];
}

const scenarios: Scenario[] = [
  {
    name: 'one lease, reclaim on release',
    leases: 1,
    limits: { maxResources: 1, reclaimOnRelease: true },
    aliveAtEnd: 0,
    mustCross: ['createResource', 'freeSlotLock'],
  },
  {
    name: 'two leases contending for one slow host',
    leases: 2,
    limits: { maxResources: 1, idleTtlSeconds: 3600 },
    config: { activation: { delaySeconds: 3 } },
    aliveAtEnd: 1,
    mustCross: ['markLeaseWaiting', 'send[lease:wake'],
  },
];

async function run(scenario: Scenario, crashAfter: number) {
  const sys: TestSystem = await testSystem();
  await syntheticPool(sys.engine, { limits: scenario.limits, config: scenario.config ?? {} });
  const plan = new CrashPlan();
  plan.crashAfter = crashAfter;
  const crashing = sys.engineWith({
    store: crashingStore(sys.store, plan),
    queue: crashingQueue(sys.queue, plan),
  });
  const onError = (err: unknown) => {
    if (!(err instanceof InjectedCrash)) return 'throw' as const;
    plan.revive(); // the message is delivered again to a fresh process
    return 'redeliver' as const;
  };

  // Holder-side calls are not updates: they run on the plain engine. Each holder releases
  // its lease as soon as it is active.
  const leases: Lease[] = [];
  for (let i = 0; i < scenario.leases; i++) {
    leases.push(await requestLease(sys.engine, { type: 'host', owner: holder.principal }));
  }
  const activeSeen: Lease[] = [];
  for (const lease of leases) {
    await sys.queue.drain(crashing, {
      onError,
      until: async () => (await leaseNow(sys.store, lease.id)).status === 'active',
    });
    activeSeen.push(await leaseNow(sys.store, lease.id));
    await releaseLease(sys.engine, lease.id, holder);
  }
  await sys.queue.drain(crashing, { onError });

  // Recovery for anything only the sweep can find (a message that died with its sender).
  sys.clock.advance(120_000);
  const sweep = await runSweep(sys.engine);
  await sys.queue.drain(sys.engine);
  return { sys, plan, leases, activeSeen, sweep };
}

describe.each(scenarios)('crash after any write: $name', (scenario) => {
  it('a redelivery completes the work: nothing lost or doubled', async () => {
    const clean = await run(scenario, 0);
    const points = clean.plan.log;
    expect(points.length).toBeGreaterThan(8);
    for (const path of scenario.mustCross) {
      expect(
        points.some((p) => p.includes(path)),
        `${path} in ${points.join(' ')}`,
      ).toBe(true);
    }

    for (let k = 1; k <= points.length; k++) {
      const { sys, plan, leases, activeSeen, sweep } = await run(scenario, k);
      const where = `crash after write ${k} of ${points.length} (${points[k - 1]})`;
      expect(plan.crashed, where).toBe(true);

      for (const [i, lease] of leases.entries()) {
        expect(activeSeen[i]!.status, where).toBe('active');
        const final = await leaseNow(sys.store, lease.id);
        expect(final.status, where).toBe('destroyed');
        expect(final.activatedAt, where).toBeDefined();
      }

      // One host was launched; it is gone or alive exactly as the scenario says.
      const bill = hostTimeline(await sys.store.listRecords(syntheticScopes.hosts('pool')));
      expect(
        bill.events.filter((e) => e.event === 'created'),
        where,
      ).toHaveLength(1);
      expect(bill.alive, where).toHaveLength(scenario.aliveAtEnd);
      const resource = (await sys.store.getResource(activeSeen[0]!.resourceId!))!;
      expect(resource.status, where).toBe(scenario.aliveAtEnd ? 'active' : 'destroyed');
      expect(resource.leaseCount, where).toBe(0);

      // Only the warm host's pool slot is held; nothing was orphaned for the sweep to free.
      const locks = (await sys.store.listSlotLocks()).items.map((l) => l.ownerId);
      expect(locks, where).toEqual(scenario.aliveAtEnd ? [resource.id] : []);
      expect(sweep.locksFreed, where).toBe(0);
      expect((await sys.store.listLeasesByStatus('pending')).items, where).toEqual([]);
    }
  }, 300_000);
});
