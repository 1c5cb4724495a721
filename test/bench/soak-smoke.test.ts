/**
 * The soak in miniature (`npm run soak` is the real one): a few dozen leases with every fault
 * injected at raised rates, checked from history with the same invariants. Keeps the harness
 * honest and catches a regression in recovery (a lost message the sweep does not find, a crash
 * that leaves a lock behind) in `npm test`.
 */
import { describe, expect, inject, it } from 'vitest';
import { faultsBelowFloor, missedDeadline } from '../../bench/lib/soak-checks.ts';
import { noFaults } from '../../bench/lib/soak-faults.ts';
import { checkSoakHistory } from '../../bench/lib/soak-invariants.ts';
import { runSoak } from '../../bench/soak-run.ts';
import type { Attributes, Lease, Resource } from '../../lambdas/core/model.ts';
import { testSystem } from '../support/system.ts';

describe('soak (tiny)', () => {
  it('every lease ends, nothing is left behind, no invariant is broken, every fault kind injected', async () => {
    const env = { dynamoEndpoint: inject('dynamoEndpoint'), sqsEndpoint: inject('sqsEndpoint') };
    const result = await runSoak(env, {
      leases: 80,
      workers: 8,
      maxInFlight: 40,
      seed: 7,
      rates: { duplicate: 0.08, reorder: 0.06, lost: 0.04, crash: 0.08, dynamo: 0.02 },
      deadlineMs: 150_000,
    });
    const { where: _where, ...figures } = result; // `where` is for finding costs, long
    console.log(`soak (tiny): ${JSON.stringify(figures)}`);
    expect(result.violations).toEqual([]);
    expect(result.leases).toBe(80);
    expect(result.ended.released + result.ended.expired + result.ended.broken).toBe(80);
    // Most were really served and released, not merely broken.
    expect(result.ended.released).toBeGreaterThan(40);
    for (const [kind, n] of Object.entries(result.faults)) {
      expect(n, `${kind} injected`).toBeGreaterThan(0);
    }
  }, 300_000);
});

describe('soak invariants', () => {
  it('catch a lease on a host without its attributes, two leases over capacity, a lock and a lease left', async () => {
    const { store, clock } = await testSystem();
    const t = (s: number) => new Date(clock.now() + s * 1000).toISOString();
    const resource: Resource = {
      id: 'res-1',
      blueprintId: 'soak-a',
      type: 'host',
      attributes: { tier: 'a' },
      status: 'destroyed',
      version: 3,
      slotLocks: [],
      capacity: 1,
      leaseCount: 0,
      uses: 2,
      createdAt: t(0),
      activatedAt: t(1),
      destroyedAt: t(60),
      updatedAt: t(60),
      data: {},
    };
    const lease = (id: string, attributes: Attributes, from: number, to: number): Lease => ({
      id,
      type: 'host',
      attributes,
      owner: 'soak',
      status: 'destroyed',
      endedAs: 'released',
      endReason: 'released by soak',
      version: 4,
      resourceId: 'res-1',
      slotLocks: [],
      requestedAt: t(0),
      activatedAt: t(from),
      releasedAt: t(to),
      destroyedAt: t(to),
      updatedAt: t(to),
      waitSeq: 0,
      requeues: 0,
    });
    const open: Lease = { ...lease('lease-open', {}, 40, 41), status: 'pending' };
    delete open.activatedAt;
    await store.transact([
      { op: 'createResource', resource },
      { op: 'createLease', lease: lease('lease-b', { tier: 'b' }, 2, 10) },
      { op: 'createLease', lease: lease('lease-overlap', {}, 5, 12) },
      { op: 'createLease', lease: open },
      {
        op: 'takeSlotLock',
        lock: {
          key: 'blueprint:soak-a:slot:0',
          ownerKind: 'resource',
          ownerId: 'res-1',
          createdAt: t(0),
        },
      },
    ]);
    const history = await checkSoakHistory(store, ['lease-b', 'lease-overlap', 'lease-open'], {
      dlqMessages: 2,
      blueprints: [],
    });
    const text = history.violations.join('\n');
    expect(text).toMatch(/lease lease-b wants tier=b, was active on res-1 with tier=a/);
    expect(text).toMatch(/resource res-1 had 2 leases active at once \(capacity 1\)/);
    expect(text).toMatch(/lease lease-open did not end \(pending\)/);
    expect(text).toMatch(/1 slot locks left/);
    expect(text).toMatch(/2 messages in the DLQ/);
  });

  it('let a lease stamped active after its resource ended pass only within the slowest transaction', async () => {
    const { store, clock } = await testSystem();
    const t = (s: number) => new Date(clock.now() + s * 1000).toISOString();
    const resource: Resource = {
      id: 'res-2',
      blueprintId: 'soak-b',
      type: 'host',
      attributes: {},
      status: 'destroyed',
      endReason: 'host vanished',
      version: 4,
      slotLocks: [],
      capacity: 4,
      leaseCount: 0,
      uses: 1,
      createdAt: t(0),
      activatedAt: t(1),
      releasedAt: t(10),
      destroyedAt: t(11),
      updatedAt: t(11),
      data: {},
    };
    const lease: Lease = {
      id: 'lease-late',
      type: 'host',
      attributes: {},
      owner: 'soak',
      status: 'destroyed',
      endedAs: 'broken',
      endReason: 'its host broke',
      version: 4,
      resourceId: 'res-2',
      slotLocks: [],
      requestedAt: t(0),
      activatedAt: t(10.5), // 500 ms after the resource's end stamp
      releasedAt: t(10.6),
      destroyedAt: t(10.6),
      updatedAt: t(10.6),
      waitSeq: 0,
      requeues: 0,
    };
    await store.transact([
      { op: 'createResource', resource },
      { op: 'createLease', lease },
    ]);
    const check = (commitSlackMs: number) =>
      checkSoakHistory(store, ['lease-late'], { dlqMessages: 0, blueprints: [], commitSlackMs });
    const strict = await check(100);
    expect(strict.violations.join('\n')).toMatch(
      /lease lease-late activated at .* on res-2 .*\(resource destroyed: host vanished; lease broken: its host broke\)/,
    );
    const slack = await check(1000);
    expect(slack.violations).toEqual([]);
    expect(slack.stampInversions).toBe(1);
  });

  it('fail a run that missed its deadline or injected a fault kind less than 100 per 10,000 leases', () => {
    expect(missedDeadline(10_000, 10_000, 0, 500)).toEqual([]);
    expect(missedDeadline(10_000, 7_000, 150, 600).join('\n')).toMatch(
      /deadline: after 600 s only 6850 of 10000 leases ended \(7000 requested, 150 still open\): 11\.4 leases\/s, 16\.7 needed/,
    );
    const faults = { ...noFaults(), duplicate: 400, crash: 99, conflict: 100 };
    const below = faultsBelowFloor(faults, 10_000).join('\n');
    expect(below).toMatch(
      /fault crash injected 99 times, fewer than 100 \(100 per 10,000 leases\)/,
    );
    expect(below).not.toMatch(/fault (duplicate|conflict) /);
    // Scaled to the run: 20 of a kind pass at 2,000 leases, 19 do not.
    expect(faultsBelowFloor({ ...faults, crash: 20 }, 2_000).join('\n')).not.toMatch(/crash/);
    expect(faultsBelowFloor({ ...faults, crash: 19 }, 2_000).join('\n')).toMatch(
      /fault crash injected 19 times, fewer than 20/,
    );
  });
});
