/**
 * The soak's pace and mix (bench/soak-run.ts): fault rates, the lease mix, the engine settings
 * at soak speed, and the harness's own timers. Each value says why it is what it is: most were
 * found by measuring where the soak's time went (BENCHMARKS.md, "Soak").
 */
import type { Attributes } from '../../lambdas/core/model.ts';

/**
 * Crash and the DynamoDB faults were the kinds closest to the floor (~25–40 per 1,000 leases
 * at 2 % and 0.4 %), and they fall as the engine needs fewer updates and calls per lease: raised
 * to 3 % and 0.6 % so a cheaper engine still injects each ≥ 100 times in 10,000 leases.
 */
export const DEFAULT_RATES = {
  duplicate: 0.03,
  reorder: 0.02,
  lost: 0.01,
  crash: 0.03,
  dynamo: 0.006,
};

/** Deterministic pseudo-random numbers (mulberry32), so a failing run can be replayed. */
export function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * What a lease asks for: mostly a tier, some anything, a few an attribute nobody has. Each
 * tier's share follows its blueprints' slots (a: 5, b: 80 + 40, c: 50), so no tier is a
 * bottleneck the others queue behind: with at most maxInFlight leases open, one starved tier
 * (tier a was 15 % of leases for 5 slots) fills the window with its waiters and sets the pace of
 * the whole run.
 */
export function leaseAttributes(random: () => number): Attributes {
  const r = random();
  if (r < 0.03) return { tier: 'a' };
  if (r < 0.45) return { tier: 'b' };
  if (r < 0.8) return { tier: 'c', platform: 'linux' };
  if (r < 0.99) return {};
  return { gpu: 'yes' }; // no blueprint sets it: breaks at once, naming it
}

/**
 * Production's rules at soak speed: waits back off to 4 s, and a blueprint's circuit breaker
 * (opened by the scripted activation failures) backs off for 1–4 s instead of 15 s–10 min, so a
 * one-tier outage does not hold every open slot of the run for minutes. A stranded state is
 * re-driven after 12 s: the sweep re-drives whatever is past its sweepAt on every run, and with
 * 8 s a queue a few seconds behind (both cores busy) made most "stranded" leases merely late
 * ones, re-driven again on every sweep until their message came up (half the soak's updates
 * found their lease already served or ended).
 */
export const settings = {
  blueprintCacheMs: 500,
  backoffBaseSeconds: 1,
  backoffCapSeconds: 4,
  strandAfterSeconds: 12,
  defaultLeaseTtlSeconds: 60,
  breakerBaseSeconds: 1,
  breakerCapSeconds: 4,
};

/**
 * The every-minute sweep (EventBridge) at soak speed. Every 2 s, not 1: each run re-sends the
 * reclaim of every idle resource and the expiry of every lease past its TTL that the previous
 * run's messages have not yet reached, so a shorter period mostly multiplies those messages.
 */
export const SWEEP_EVERY_MS = 2_000;

/** How often the holders look at their open leases (one BatchGetItem per 100). */
export const HOLDER_POLL_MS = 250;
export const HELD_POLL_EVERY = 4;

/** soak-d's state changes over a whole run (every leases/200 arrivals): ≥ 100 at any size. */
export const TOGGLES_PER_RUN = 200;

/**
 * How long a delivery stays invisible while a worker has it. Above the slowest updates on a
 * busy 2-core machine (p99 ~4 s at load average 15): with 2 s, one update in ten was still
 * running when its message came back, and the copy found it "under way" or done. A delivery
 * that failed (a crash, an injected fault) is made visible again after
 * FAILED_REDELIVERY_SECONDS instead, as a short timeout would.
 */
export const VISIBILITY_TIMEOUT_SECONDS = 8;
export const FAILED_REDELIVERY_SECONDS = 1;
