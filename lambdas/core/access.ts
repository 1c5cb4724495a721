/**
 * Who may see and touch what (DESIGN §6): holders act only on their own leases, blueprint and
 * resource administration is a separate permission. Every use case that takes a caller asks
 * here, so the rule lives in one place.
 */
import type { Engine } from './engine.ts';
import { ForbiddenError, NotFoundError } from './errors.ts';
import type { Lease } from './model.ts';
import { checkName } from './names.ts';

export interface Caller {
  /** The stable owner the caller acts as (core/identity.ts): what ownership is compared by. */
  principal: string;
  /** The assumed-role session that signed, for display only (never compared). */
  session?: string;
  admin?: boolean;
}

/** A lease the caller may see: its own, or any for an admin. */
export async function getLease(engine: Engine, id: string, caller?: Caller): Promise<Lease> {
  checkName('lease id', id);
  const lease = await engine.store.getLease(id);
  if (!lease) throw new NotFoundError('lease', id);
  if (caller && !caller.admin && lease.owner !== caller.principal) {
    // Same answer as a missing lease: do not reveal other principals' lease ids.
    throw new NotFoundError('lease', id);
  }
  return lease;
}

export function requireAdmin(caller: Caller, what: string): void {
  if (!caller.admin) {
    throw new ForbiddenError(
      `${what} needs admin rights; ${caller.principal} is not in ADMIN_PRINCIPALS`,
    );
  }
}

/**
 * The caller as log lines and end reasons name it: the owner, and the session that acted when
 * there is one (an audit trail wants to know which build released a lease).
 */
export function describeCaller(caller: Caller): string {
  return caller.session === undefined
    ? caller.principal
    : `${caller.principal} (session ${caller.session})`;
}
