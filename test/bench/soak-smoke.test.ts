/**
 * The soak in miniature (`npm run soak` is the real one): a few dozen leases with every fault
 * injected at raised rates, checked from history with the same invariants. Keeps the harness
 * honest and catches a regression in recovery (a lost message the sweep does not find, a crash
 * that leaves a lock behind) in `npm test`.
 */
import { describe, expect, inject, it } from 'vitest';
import { runSoak } from '../../bench/soak-run.ts';

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
    console.log(`soak (tiny): ${JSON.stringify(result)}`);
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
