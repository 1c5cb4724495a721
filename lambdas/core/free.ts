/**
 * When a resource is free: it may take a lease now, as far as its own item says. The store keeps
 * the free-candidate index (schema.ts, GSI4) by this rule, and the allocator's warm path reads
 * that index (free-candidates.ts). The blueprint's maxUses is not here: the item does not know
 * it; the reader filters on it, and attachLease's condition enforces it.
 */
import type { Resource } from './model.ts';

type FreeFacts = Pick<Resource, 'status' | 'leaseCount' | 'suspectSince' | 'data'>;

/** Pending or active, no lease, not suspect, not retiring (host-events.ts). */
export function isFree(r: FreeFacts): boolean {
  return r.leaseCount === 0 && mayBeFreedByDetach(r);
}

/**
 * Whether a detach may leave `r` (as its update read it) free: everything but the lease count,
 * which the detach cannot know exactly (another lease may detach at the same moment). Over-
 * answering only leaves a stale index entry, which readers filter out; under-answering would
 * hide a free resource from the warm path.
 */
export function mayBeFreedByDetach(r: Omit<FreeFacts, 'leaseCount'>): boolean {
  return (
    (r.status === 'pending' || r.status === 'active') &&
    !r.suspectSince &&
    r.data?.retiring === undefined
  );
}
