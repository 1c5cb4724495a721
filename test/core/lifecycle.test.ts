import { describe, expect, it } from 'vitest';
import { BlueprintRegistry } from '../../lambdas/core/blueprint.ts';
import { DEFAULT_SETTINGS, makeEngine } from '../../lambdas/core/engine.ts';
import { LEASE_STATUSES, RESOURCE_STATUSES } from '../../lambdas/core/model.ts';
import type { Store, WorkQueue } from '../../lambdas/core/ports.ts';
import {
  canTransitionLease,
  canTransitionResource,
  checkTransitions,
  LEASE_TRANSITIONS,
  RESOURCE_TRANSITIONS,
} from '../../lambdas/core/transitions.ts';

describe('lifecycles', () => {
  it('lease and resource tables cover every status and end in destroyed', () => {
    expect(Object.keys(LEASE_TRANSITIONS).sort()).toEqual([...LEASE_STATUSES].sort());
    expect(Object.keys(RESOURCE_TRANSITIONS).sort()).toEqual([...RESOURCE_STATUSES].sort());
    expect(LEASE_TRANSITIONS.destroyed).toEqual([]);
    expect(RESOURCE_TRANSITIONS.destroyed).toEqual([]);
    // Every status can reach destroyed: nothing is stranded by the table itself.
    for (const [table, all] of [
      [LEASE_TRANSITIONS, LEASE_STATUSES],
      [RESOURCE_TRANSITIONS, RESOURCE_STATUSES],
    ] as const) {
      for (const start of all) {
        const seen = new Set<string>([start]);
        const todo: string[] = [start];
        while (todo.length) {
          for (const next of (table as Record<string, readonly string[]>)[todo.pop()!]!) {
            if (!seen.has(next)) {
              seen.add(next);
              todo.push(next);
            }
          }
        }
        expect(seen.has('destroyed'), `${start} reaches destroyed`).toBe(true);
      }
    }
  });

  it('follows DESIGN §3: a lease whose resource dies before activation goes back to pending', () => {
    expect(canTransitionLease('acquired', 'pending')).toBe(true);
    expect(canTransitionLease('active', 'pending')).toBe(false); // active ones break instead
    expect(canTransitionLease('active', 'broken')).toBe(true);
    expect(canTransitionLease('destroyed', 'pending')).toBe(false);
    expect(canTransitionResource('released', 'active')).toBe(false);
    expect(canTransitionResource('pending', 'broken')).toBe(true);
  });
});

describe('transition checks', () => {
  it('refuses a transaction that moves a lease along an edge the table lacks, writing nothing', () => {
    expect(() =>
      checkTransitions([
        {
          op: 'updateLease',
          id: 'l',
          type: 'host',
          expect: { status: 'destroyed', version: 3 },
          set: { status: 'active' },
        },
      ]),
    ).toThrow('illegal lease transition destroyed -> active');
    expect(() =>
      checkTransitions([
        {
          op: 'updateResource',
          id: 'r',
          type: 'host',
          expect: { status: 'released', version: 1 },
          set: { status: 'active' },
        },
      ]),
    ).toThrow('illegal resource transition released -> active');
    // In-place updates (no status change) and legal moves pass.
    expect(() =>
      checkTransitions([
        {
          op: 'updateResource',
          id: 'r',
          type: 'host',
          expect: { status: 'active', version: 1 },
          set: { suspectSince: null },
        },
        {
          op: 'updateLease',
          id: 'l',
          type: 'host',
          expect: { status: 'acquired', version: 1 },
          set: { status: 'pending' },
        },
      ]),
    ).not.toThrow();
  });
});

describe('backoff', () => {
  const engineWith = (random: () => number) =>
    makeEngine({
      store: {} as Store,
      queue: {} as WorkQueue,
      clock: { now: () => 0 },
      registry: new BlueprintRegistry(),
      dataDir: '/tmp',
      random,
    });

  it('grows exponentially with jitter in [d/2, d] and is capped', () => {
    const low = engineWith(() => 0);
    const high = engineWith(() => 0.999);
    expect([0, 1, 2, 3].map((a) => high.backoffSeconds(a))).toEqual([1, 2, 4, 8]);
    expect(low.backoffSeconds(3)).toBe(4);
    expect(high.backoffSeconds(30)).toBe(DEFAULT_SETTINGS.backoffCapSeconds);
    expect(low.backoffSeconds(30)).toBe(DEFAULT_SETTINGS.backoffCapSeconds / 2);
    expect(low.backoffSeconds(0)).toBeGreaterThanOrEqual(1); // SQS delays are whole seconds
  });

  it('refuses settings where the sweep would re-drive leases that are merely waiting', () => {
    expect(() =>
      makeEngine({
        store: {} as Store,
        queue: {} as WorkQueue,
        clock: { now: () => 0 },
        registry: new BlueprintRegistry(),
        dataDir: '/tmp',
        settings: { backoffCapSeconds: 600, strandAfterSeconds: 300 },
      }),
    ).toThrow(/strandAfterSeconds \(300\) must exceed backoffCapSeconds \(600\)/);
  });
});
