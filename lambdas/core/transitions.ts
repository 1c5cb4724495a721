/**
 * Lease and resource lifecycles as explicit transition tables (DESIGN §3). The engine's store
 * checks every status change of every transaction against them (`checkTransitions`) before
 * anything is written, so an illegal move is a bug caught loudly rather than a corrupt row.
 *
 * Lease:    pending -> acquired -> active -> released -> destroyed
 *           pending -> active     (acquired and activated at once: nothing to prepare)
 *           active -> destroyed   (released and torn down at once: nothing to clean, the
 *                                  resource stays; releasedAt and endedAs still record the
 *                                  release — destroy-at-once.ts)
 *           acquired -> pending   (its resource died before the lease activated: not its fault)
 *           acquired|active -> broken -> destroyed
 *           pending -> broken     (no blueprint can ever serve it)
 *           pending|acquired -> released (holder gave up before activation)
 * Resource: pending -> active -> released -> destroyed
 *           pending|active -> broken -> destroyed
 *           pending -> released  (reclaimed before setup finished: only when no leases)
 */
import type { LeaseStatus, ResourceStatus } from './model.ts';
import type { Store, TxWrite } from './ports.ts';

export const LEASE_TRANSITIONS: Readonly<Record<LeaseStatus, readonly LeaseStatus[]>> = {
  pending: ['acquired', 'active', 'broken', 'released'],
  acquired: ['active', 'pending', 'broken', 'released'],
  active: ['released', 'broken', 'destroyed'],
  released: ['destroyed'],
  broken: ['destroyed'],
  destroyed: [],
};

export const RESOURCE_TRANSITIONS: Readonly<Record<ResourceStatus, readonly ResourceStatus[]>> = {
  pending: ['active', 'broken', 'released'],
  active: ['released', 'broken'],
  released: ['destroyed'],
  broken: ['destroyed'],
  destroyed: [],
};

export function canTransitionLease(from: LeaseStatus, to: LeaseStatus): boolean {
  return LEASE_TRANSITIONS[from].includes(to);
}

export function canTransitionResource(from: ResourceStatus, to: ResourceStatus): boolean {
  return RESOURCE_TRANSITIONS[from].includes(to);
}

export function assertLeaseTransition(from: LeaseStatus, to: LeaseStatus): void {
  if (!canTransitionLease(from, to)) {
    throw new Error(`illegal lease transition ${from} -> ${to}`);
  }
}

export function assertResourceTransition(from: ResourceStatus, to: ResourceStatus): void {
  if (!canTransitionResource(from, to)) {
    throw new Error(`illegal resource transition ${from} -> ${to}`);
  }
}

/** Statuses a lease can be acquired-on (a pending resource may take leases: "mystery box"). */
export const ACQUIRABLE_RESOURCE_STATUSES: readonly ResourceStatus[] = ['pending', 'active'];

export function isLeaseFinished(status: LeaseStatus): boolean {
  return status === 'released' || status === 'broken' || status === 'destroyed';
}

export function isResourceFinished(status: ResourceStatus): boolean {
  return status === 'released' || status === 'broken' || status === 'destroyed';
}

/** Throws if a write moves a lease or resource along an edge its lifecycle table lacks. */
export function checkTransitions(writes: readonly TxWrite[]): void {
  for (const w of writes) {
    if (w.op === 'updateLease' && w.set.status && w.set.status !== w.expect.status) {
      assertLeaseTransition(w.expect.status, w.set.status);
    }
    if (w.op === 'updateResource' && w.set.status && w.set.status !== w.expect.status) {
      assertResourceTransition(w.expect.status, w.set.status);
    }
  }
}

/** The store, with every transaction's status changes checked against the tables first. */
export function transitionCheckedStore(store: Store): Store {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'transact') {
        return (writes: TxWrite[]) => {
          checkTransitions(writes);
          return target.transact(writes);
        };
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
