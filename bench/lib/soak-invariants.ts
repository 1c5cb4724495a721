/**
 * The soak's blueprints and its checks, all from recorded history after the run: the leases'
 * and resources' own records (activation, release and end times, attributes), the synthetic
 * blueprints' host bills, the slot locks and the DLQ. Nothing is sampled during the run.
 */
import { hostTimeline, syntheticScopes } from '../../lambdas/blueprints/synthetic/index.ts';
import type { Attributes, Lease, Resource, ResourceStatus } from '../../lambdas/core/model.ts';
import type { DynamoStore } from '../../lambdas/store/dynamo-store.ts';

export interface SoakBlueprint {
  id: string;
  cap: number;
  perHost: number;
  reclaimOnRelease: boolean;
  attributes: Attributes;
  minIdle?: number;
  /** The first this many resources of the blueprint fail activation. */
  activationFailures?: number;
  /** This share of all the blueprint's resources fails activation (spread over the run). */
  activationFailShare?: number;
  /** Hosts vanish this long after they were created. */
  vanishAfterSeconds?: number;
}

/**
 * Caps 5–50, leases per resource 1 and 4, reclaim on release on some; soak-d is toggled.
 * Activations fail for soak-a's first three resources (the breaker opens at once) and for a
 * share of the resources of the blueprints that make the most (soak-b's hosts vanish, soak-d
 * reclaims on release), so failures keep coming all run long, about one per 40 leases.
 */
export function soakBlueprints(): SoakBlueprint[] {
  return [
    {
      id: 'soak-a',
      cap: 5,
      perHost: 1,
      reclaimOnRelease: true,
      attributes: { platform: 'linux', tier: 'a' },
      activationFailures: 3,
      activationFailShare: 0.1,
    },
    {
      id: 'soak-b',
      cap: 20,
      perHost: 4,
      reclaimOnRelease: false,
      attributes: { platform: 'linux', tier: 'b' },
      minIdle: 2,
      vanishAfterSeconds: 6,
      activationFailShare: 0.15,
    },
    {
      id: 'soak-c',
      cap: 50,
      perHost: 1,
      reclaimOnRelease: false,
      attributes: { platform: 'linux', tier: 'c' },
    },
    {
      id: 'soak-d',
      cap: 10,
      perHost: 4,
      reclaimOnRelease: true,
      attributes: { platform: 'linux', tier: 'b' },
      activationFailShare: 0.15,
    },
  ];
}

export interface SoakHistory {
  violations: string[];
  ended: { released: number; expired: number; broken: number };
  /** Host bill events of kind vanished. */
  vanished: number;
  /** Resources broken by a scripted activation failure. */
  activationFailures: number;
  /** Resources each blueprint created over the run. */
  resourcesByBlueprint: Record<string, number>;
  /** Leases stamped active after their resource's end, within commitSlackMs (not violations). */
  stampInversions: number;
}

const ms = (iso: string | undefined) => (iso ? Date.parse(iso) : Number.NaN);
const END = (l: Lease) => ms(l.releasedAt ?? l.destroyedAt);

async function allResources(store: DynamoStore): Promise<Resource[]> {
  const statuses: ResourceStatus[] = ['pending', 'active', 'released', 'broken', 'destroyed'];
  const out: Resource[] = [];
  for (const status of statuses) {
    let cursor: string | undefined;
    do {
      const page = await store.listResourcesByType('host', status, {
        limit: 100,
        ...(cursor ? { cursor } : {}),
      });
      out.push(...page.items);
      cursor = page.cursor;
    } while (cursor);
  }
  return out;
}

export async function checkSoakHistory(
  store: DynamoStore,
  leaseIds: string[],
  options: {
    dlqMessages: number;
    blueprints: SoakBlueprint[];
    /**
     * The slowest transaction of the run (ms from the call to its answer): how much later than
     * a resource's end stamp a lease's activation stamp may be while having committed first.
     * @default 0
     */
    commitSlackMs?: number;
  },
): Promise<SoakHistory> {
  const violations: string[] = [];
  const commitSlackMs = options.commitSlackMs ?? 0;
  let stampInversions = 0;
  const v = (m: string) => {
    if (violations.length < 200) violations.push(m);
  };
  const leases = await store.getLeases(leaseIds);
  if (leases.length !== leaseIds.length) v(`${leaseIds.length - leases.length} leases missing`);
  const resources = new Map((await allResources(store)).map((r) => [r.id, r]));
  const ended = { released: 0, expired: 0, broken: 0 };

  const onResource = new Map<string, Lease[]>();
  for (const l of leases) {
    // Every lease ended: released, expired or broken with a reason.
    if (l.status !== 'destroyed') v(`lease ${l.id} did not end (${l.status})`);
    else if (l.endedAs === 'broken') {
      ended.broken++;
      if (!l.endReason) v(`lease ${l.id} broke with no reason`);
    } else if (/expired|TTL/i.test(l.endReason ?? '')) ended.expired++;
    else ended.released++;
    if (!l.activatedAt) continue;
    const r = l.resourceId ? resources.get(l.resourceId) : undefined;
    if (!r) {
      v(`lease ${l.id} was active on resource ${l.resourceId}, which has no record`);
      continue;
    }
    // Every active lease's resource satisfies the lease's attributes.
    for (const [k, want] of Object.entries(l.attributes)) {
      if (r.attributes[k] !== want) {
        v(`lease ${l.id} wants ${k}=${want}, was active on ${r.id} with ${k}=${r.attributes[k]}`);
      }
    }
    // No lease active on a resource that was not active. A stamp is taken before its
    // transaction commits, so a lease activated (checking its resource active, in the same
    // transaction) just before the resource broke can carry the later stamp, by less than the
    // break's transaction took: only an inversion beyond the slowest transaction is a violation.
    const rEnd = ms(r.releasedAt ?? r.destroyedAt);
    const late = ms(l.activatedAt) - rEnd;
    if (!(ms(r.activatedAt) <= ms(l.activatedAt)) || late > commitSlackMs) {
      v(
        `lease ${l.id} activated at ${l.activatedAt} on ${r.id} active ${r.activatedAt}..${r.releasedAt ?? r.destroyedAt} ` +
          `(resource ${r.status}: ${r.endReason ?? 'no reason'}; lease ${l.endedAs ?? l.status}: ${l.endReason ?? 'no reason'})`,
      );
    } else if (late > 0) stampInversions++;
    const list = onResource.get(r.id) ?? [];
    list.push(l);
    onResource.set(r.id, list);
  }
  // No slot held by two owners: never more leases on a resource than its capacity at once.
  for (const [id, list] of onResource) {
    const capacity = resources.get(id)?.capacity ?? 1;
    const events = list.flatMap((l) => [
      { at: ms(l.activatedAt), d: 1 },
      { at: Number.isNaN(END(l)) ? Number.POSITIVE_INFINITY : END(l), d: -1 },
    ]);
    events.sort((a, b) => a.at - b.at || a.d - b.d);
    let now = 0;
    for (const e of events) {
      now += e.d;
      if (now > capacity) {
        v(`resource ${id} had ${now} leases active at once (capacity ${capacity})`);
        break;
      }
    }
  }
  // No blueprint ever above its cap; no host left behind.
  let vanished = 0;
  for (const b of options.blueprints) {
    const bill = hostTimeline(await store.listRecords(syntheticScopes.hosts(b.id)));
    if (bill.maxAlive > b.cap)
      v(`blueprint ${b.id} had ${bill.maxAlive} hosts alive (cap ${b.cap})`);
    if (bill.alive.length > 0) v(`blueprint ${b.id} left ${bill.alive.length} hosts alive`);
    vanished += bill.events.filter((e) => e.event === 'vanished').length;
  }
  // No resource or slot lock left behind.
  for (const r of resources.values()) {
    if (r.status !== 'destroyed') v(`resource ${r.id} left ${r.status}`);
  }
  const locks = await store.listSlotLocks({ limit: 100 });
  if (locks.items.length > 0) {
    v(
      `${locks.items.length}${locks.cursor ? '+' : ''} slot locks left, e.g. ${locks.items[0]?.key}`,
    );
  }
  if (options.dlqMessages > 0) v(`${options.dlqMessages} messages in the DLQ`);
  const activationFailures = [...resources.values()].filter((r) =>
    /synthetic activation failure/.test(r.endReason ?? ''),
  ).length;
  const resourcesByBlueprint: Record<string, number> = {};
  for (const r of resources.values()) {
    resourcesByBlueprint[r.blueprintId] = (resourcesByBlueprint[r.blueprintId] ?? 0) + 1;
  }
  return { violations, ended, vanished, activationFailures, resourcesByBlueprint, stampInversions };
}
