/**
 * How a lease reads to people, in one place for every client: the `drydock leases` table and
 * the web console (web/) show the same status and reason words. Browser-safe: no node imports,
 * so esbuild bundles it into the console as it is.
 */

/** The lease fields these texts read (the API's lease JSON has them all). */
export interface LeaseWords {
  status: string;
  endedAs?: string;
  waitReason?: string;
  endReason?: string;
}

/** A destroyed lease is shown as how it ended: what its holder cares about. */
export function leaseStatusText(lease: LeaseWords): string {
  return lease.status === 'destroyed' && lease.endedAs ? lease.endedAs : lease.status;
}

/** Why the lease ended, or else why it is still waiting; '' when neither is recorded. */
export function leaseReasonText(lease: LeaseWords): string {
  return lease.endReason ?? lease.waitReason ?? '';
}
