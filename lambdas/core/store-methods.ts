/**
 * Every Store method, classified: `read` changes nothing, `write` changes the table. One typed
 * table, so a new Store method does not compile until someone decides which it is: the crash
 * tests crash after every write method (test/support/crash.ts), and a write method missing from
 * their list would go uncrashed silently.
 */
import type { Store } from './ports.ts';

export type StoreAccess = 'read' | 'write';

export const STORE_METHODS = {
  getLease: 'read',
  getResource: 'read',
  getBlueprint: 'read',
  getLeases: 'read',
  getResources: 'read',
  listBlueprints: 'read',
  listLiveResources: 'read',
  listFreeResources: 'read',
  listResourcesByStatus: 'read',
  listLeasesByStatus: 'read',
  listLeasesByType: 'read',
  listResourcesByType: 'read',
  listLeasesOfOwner: 'read',
  listListedResources: 'read',
  countWaitingAhead: 'read',
  getSlotLocks: 'read',
  listSlotLocks: 'read',
  listLogs: 'read',
  getCommand: 'read',
  listCommandsByStatus: 'read',
  getIdempotencyClaim: 'read',
  listRecords: 'read',
  transact: 'write',
  createBlueprint: 'write',
  updateBlueprint: 'write',
  setBlueprintHealth: 'write',
  deleteSlotLockIfOwner: 'write',
  appendRecord: 'write',
} as const satisfies { readonly [K in keyof Store]-?: StoreAccess };
// `satisfies` on the literal: a missing method and a method the Store lacks both fail to compile.

/** The Store methods that write. */
export const STORE_WRITE_METHODS: ReadonlySet<keyof Store> = new Set(
  (Object.keys(STORE_METHODS) as Array<keyof Store>).filter((m) => STORE_METHODS[m] === 'write'),
);
