/**
 * The soak's run-level checks and figures (soak-run.ts): a missed deadline and a fault kind
 * injected too rarely are violations like the invariants from history; `SoakWhere` is where a
 * run's time and updates went.
 */
import type { CpuUse } from './cpu.ts';
import type { OperationCost } from './dynamo-profile.ts';
import type { FaultCounts } from './soak-faults.ts';

/** The acceptance's floor: every fault kind injected at least 100 times in 10,000 leases. */
const FAULT_FLOOR = 100;
const FAULT_FLOOR_LEASES = 10_000;

export interface SoakWhere {
  cpu: CpuUse;
  /** Worker updates by message kind and outcome (`lease: waited`). */
  actions: Record<string, number>;
  /**
   * Why updates were wasted or found nothing to do (`none`; ids and numbers blanked), most
   * frequent first.
   */
  wastedBy: Record<string, number>;
  /** Deliveries seen again (receive count > 1), and those a worker failed (crash, fault). */
  redelivered: number;
  failedDeliveries: number;
  /** How long one delivery's update took (ms), against the queue's visibility timeout. */
  updateMs: { p50: number; p95: number; p99: number; max: number; overVisibility: number };
  /** The holders' and the harness's own DynamoDB calls (polling, inventory), per lease. */
  harnessCallsPerLease: number;
  /** The slowest transaction (ms), and leases stamped active within it after their resource's end. */
  commitSlackMs: number;
  stampInversions: number;
  /** The API's and workers' DynamoDB calls by call shape, most time first (top 15). */
  callShapes: OperationCost[];
}

/**
 * The run's deadline passed before every lease was requested and ended: said first, with the
 * pace it had and the pace it needed, so a slow machine fails loudly rather than with a smaller
 * run that looks like a pass.
 */
export function missedDeadline(asked: number, requested: number, open: number, seconds: number) {
  if (requested === asked && open === 0) return [];
  const pace = (requested - open) / seconds;
  return [
    `deadline: after ${Math.round(seconds)} s only ${requested - open} of ${asked} leases ended ` +
      `(${requested} requested, ${open} still open): ${pace.toFixed(1)} leases/s, ` +
      `${(asked / seconds).toFixed(1)} needed. Give it more --minutes or a quieter machine.`,
  ];
}

/**
 * Every fault kind at least FAULT_FLOOR times per FAULT_FLOOR_LEASES leases (the acceptance:
 * ≥ 100 each at 10,000), scaled to the run's size so a short run shows what a full one would.
 */
export function faultsBelowFloor(faults: FaultCounts, leases: number): string[] {
  const floor = Math.ceil((FAULT_FLOOR * leases) / FAULT_FLOOR_LEASES);
  return Object.entries(faults)
    .filter(([, n]) => n < floor)
    .map(
      ([kind, n]) =>
        `fault ${kind} injected ${n} times, fewer than ${floor} (${FAULT_FLOOR} per ${FAULT_FLOOR_LEASES.toLocaleString('en')} leases)`,
    );
}

export function sortedByCount(counts: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).sort((a, b) => b[1] - a[1]));
}
