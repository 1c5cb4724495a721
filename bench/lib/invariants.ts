/**
 * The invariants every benchmark run must keep, checked from recorded history — the
 * blueprint's own host bill and the leases' activation/release times — never by sampling.
 * A violation makes `npm run bench` exit non-zero: a fast system that over-allocates is not
 * a result.
 */
import { hostTimeline, syntheticScopes } from '../../lambdas/blueprints/synthetic/index.ts';
import type { Lease } from '../../lambdas/core/model.ts';
import type { Store } from '../../lambdas/core/ports.ts';

export interface HostBill {
  /** Most synthetic hosts alive at one time. */
  peakAlive: number;
  /** Hosts ever created. */
  launched: number;
  /** Hosts still alive when the bill was read. */
  alive: number;
}

/** Reads the synthetic blueprint's host bill; a peak above `cap` is a violation. */
export async function checkHostBill(
  store: Store,
  blueprintId: string,
  cap: number,
  violations: string[],
): Promise<HostBill> {
  const bill = hostTimeline(await store.listRecords(syntheticScopes.hosts(blueprintId)));
  if (bill.maxAlive > cap) {
    violations.push(
      `blueprint '${blueprintId}' had ${bill.maxAlive} hosts alive at once (cap ${cap})`,
    );
  }
  // Racing activations of one resource may both record its creation: the host id is derived
  // from the resource id (like an EC2 ClientToken), so that is one host, counted once.
  const hosts = new Set(bill.events.filter((e) => e.event === 'created').map((e) => e.hostId));
  return { peakAlive: bill.maxAlive, launched: hosts.size, alive: bill.alive.length };
}

/**
 * No two leases were ever active on one resource at the same time (resources with one lease
 * slot): per resource, each activation comes at or after the previous lease's release.
 */
export function checkNoOverlap(leases: readonly Lease[], violations: string[]): void {
  const byResource = new Map<string, Array<[number, number, string]>>();
  for (const lease of leases) {
    if (!lease.resourceId || !lease.activatedAt) continue;
    const spans = byResource.get(lease.resourceId) ?? [];
    const end = lease.releasedAt ? Date.parse(lease.releasedAt) : Number.POSITIVE_INFINITY;
    spans.push([Date.parse(lease.activatedAt), end, lease.id]);
    byResource.set(lease.resourceId, spans);
  }
  for (const [resourceId, spans] of byResource) {
    spans.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < spans.length; i++) {
      const [start, , id] = spans[i]!;
      const [, previousEnd, previousId] = spans[i - 1]!;
      if (start < previousEnd) {
        violations.push(`${id} became active on ${resourceId} before ${previousId} was released`);
      }
    }
  }
}

/** Up to five examples, then how many more. */
function examples(items: readonly string[]): string {
  return `${items.slice(0, 5).join(', ')}${items.length > 5 ? `, and ${items.length - 5} more` : ''}`;
}

/** Every lease became active exactly once and ended because its holder released it. */
export async function checkServedOnce(
  store: Store,
  leases: readonly Lease[],
  holder: string,
  violations: string[],
): Promise<void> {
  const expectedEnd = `released by ${holder}`;
  const activations = await mapLimit(leases, 16, async (lease) => {
    const logs = await store.listLogs(lease.id);
    return logs.filter((e) => e.type === 'lease.activated').length;
  });
  const never = leases.filter((l) => !l.activatedAt);
  if (never.length > 0) {
    const statuses = new Map<string, number>();
    for (const l of never) statuses.set(l.status, (statuses.get(l.status) ?? 0) + 1);
    violations.push(
      `${never.length} leases never became active (${[...statuses].map(([s, k]) => `${k} ${s}`).join(', ')}): ${examples(never.map((l) => l.id))}`,
    );
  }
  const twice = leases.filter((l, i) => l.activatedAt && activations[i] !== 1);
  if (twice.length > 0) {
    violations.push(
      `${twice.length} leases were not activated exactly once: ${examples(twice.map((l) => `${l.id} (${activations[leases.indexOf(l)]}×)`))}`,
    );
  }
  const otherEnd = leases.filter((l) => l.activatedAt && l.endReason !== expectedEnd);
  if (otherEnd.length > 0) {
    violations.push(
      `${otherEnd.length} leases did not end '${expectedEnd}': ${examples(otherEnd.map((l) => `${l.id} (${l.endReason ?? l.status})`))}`,
    );
  }
}

/** `fn` over `items` with at most `limit` in flight; results in input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await fn(items[i]!);
      }
    }),
  );
  return results;
}
