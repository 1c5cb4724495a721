/**
 * Held leases (issue 15, point 6): a lease requested with `holdSeconds` lives only while its
 * holder renews it. The CLI holds every lease it takes this way and renews it while it runs, so
 * a CLI killed with SIGKILL (or whose machine died) loses its lease within about two minutes
 * instead of holding it to the end of its TTL.
 *
 * A renewal writes only `heldUntil` (no version bump: it never makes the worker's conditional
 * writes fail). Acting on a lapsed hold is the lease update's job, as for any expiry: a waiting
 * lease looks at it every time its wait comes round (at most backoffCapSeconds apart), an
 * active one is re-filed in the sweep index at the hold's end (`holdCheckAt`).
 *
 *   request (holdSeconds 90) ─ heldUntil = now+90 ─ renew every 30 s ─ heldUntil = now+90 ...
 *   holder gone ─ heldUntil passes ─ next wait round / sweep ─ released ("not renewed")
 */
import { type Caller, getLease } from './access.ts';
import type { Engine } from './engine.ts';
import { DrydockError, StateConflictError, ValidationError, WriteConflictError } from './errors.ts';
import type { Lease, LeaseStatus } from './model.ts';

/** What the CLI asks for: long enough to ride out a slow API call or two, short enough to free a pool. */
export const DEFAULT_HOLD_SECONDS = 90;
/** The CLI renews this often, so two renewals in a row may fail before the hold lapses. */
export const RENEW_EVERY_FRACTION = 1 / 3;
export const MAX_HOLD_SECONDS = 3600;

const HELD_STATUSES: LeaseStatus[] = ['pending', 'acquired', 'active'];

export function checkHoldSeconds(holdSeconds: number | undefined): void {
  if (holdSeconds === undefined) return;
  if (!Number.isInteger(holdSeconds) || holdSeconds < 1 || holdSeconds > MAX_HOLD_SECONDS) {
    throw new ValidationError(
      `holdSeconds must be a whole number from 1 to ${MAX_HOLD_SECONDS}, got ${holdSeconds}`,
    );
  }
}

/** Whether the lease's holder stopped renewing it in time. */
export function holdLapsed(lease: Lease, now: number): boolean {
  return lease.heldUntil !== undefined && Date.parse(lease.heldUntil) <= now;
}

/** Why a lapsed lease ended, as its holder (and an admin) reads it. */
export function lapsedReason(lease: Lease): string {
  return `not renewed within its hold of ${lease.holdSeconds}s (its holder went away)`;
}

/**
 * When the sweep must look at an active lease again: its TTL's end, or its hold's end if that
 * comes first.
 */
export function nextCheckAt(lease: Pick<Lease, 'expiresAt' | 'heldUntil'>): string | undefined {
  const { expiresAt, heldUntil } = lease;
  if (!heldUntil) return expiresAt;
  if (!expiresAt) return heldUntil;
  return Date.parse(heldUntil) < Date.parse(expiresAt) ? heldUntil : expiresAt;
}

/**
 * Renew a held lease: its hold runs holdSeconds from now (never past the end of its TTL, which
 * still applies). `drop: true` ends the hold instead: the lease lives to its TTL (the CLI does
 * this when it hands a lease over to its user and exits). A lease that is not held is returned
 * as it is.
 */
export async function renewLease(
  engine: Engine,
  id: string,
  caller: Caller,
  options: { drop?: boolean } = {},
): Promise<Lease> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const lease = await getLease(engine, id, caller);
    if (!HELD_STATUSES.includes(lease.status)) {
      throw new StateConflictError(
        `lease ${id} is ${lease.status}${lease.endReason ? ` (${lease.endReason})` : ''}; it can no longer be renewed: request a new lease`,
        { leaseId: id, status: lease.status },
      );
    }
    if (lease.holdSeconds === undefined) return lease;
    const renewed = engine.iso(lease.holdSeconds * 1000);
    const heldUntil =
      lease.expiresAt && Date.parse(lease.expiresAt) < Date.parse(renewed)
        ? lease.expiresAt
        : renewed;
    try {
      await engine.store.transact([
        { op: 'renewLeaseHold', id, statusIn: HELD_STATUSES, heldUntil, drop: options.drop },
      ]);
    } catch (err) {
      if (err instanceof WriteConflictError) continue; // it ended meanwhile: look again
      throw err;
    }
    if (options.drop) {
      const { holdSeconds: _h, heldUntil: _u, ...unheld } = lease;
      return unheld;
    }
    return { ...lease, heldUntil };
  }
  throw new DrydockError('busy', `lease ${id} is changing too fast to renew; try again`);
}
