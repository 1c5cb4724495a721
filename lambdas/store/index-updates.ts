/**
 * How an update keeps an item's index keys in step with the status and sweepAt it writes
 * (layout: schema.ts). Pure: each function adds clauses to an UpdateExpression.
 */
import type { CommandStatus } from '../core/model.ts';
import type { UpdateExpression } from './expressions.ts';
import {
  commandStatusPartition,
  freePartition,
  isIndexedCommandStatus,
  retentionEpoch,
  sweepSortKey,
} from './keys.ts';
import { GSI, TTL_ATTRIBUTE, UNSCHEDULED_SWEEP_KEY } from './schema.ts';

/** Where a lease or resource update leaves it, as far as its index keys care. */
export interface VersionedIndexMove {
  status: string;
  statusChanged: boolean;
  /**
   * The GSI1 partition the new status puts it in; undefined: it stays where it is (a resource
   * going pending -> active stays in its `live` block, which only its creation knew).
   */
  typePartition: string | undefined;
  statusPartition: string;
  sweepAt: string | null | undefined;
  /** When it was destroyed (the TTL counts from then); absent: `now`. */
  endedAt: string | undefined;
  /** Milliseconds since the epoch. */
  now: number;
}

/**
 * Index keys follow the status: GSI1PK/GSI2PK move with it and GSI2SK with sweepAt. A destroyed
 * object leaves GSI2 (the sweep never needs it) and GSI3 (listings show live objects) and gets a TTL so DynamoDB deletes it later.
 */
export function moveVersionedIndexKeys(update: UpdateExpression, next: VersionedIndexMove): void {
  if (next.statusChanged && next.typePartition !== undefined) {
    update.set(GSI.byType.partitionKey, next.typePartition);
  }
  if (next.status === 'destroyed') {
    if (next.statusChanged) {
      update.remove(GSI.byStatus.partitionKey).remove(GSI.byStatus.sortKey);
      update.remove(GSI.byOwner.partitionKey).remove(GSI.byOwner.sortKey);
      const endedAt = next.endedAt === undefined ? Number.NaN : Date.parse(next.endedAt);
      update.set(TTL_ATTRIBUTE, retentionEpoch(Number.isNaN(endedAt) ? next.now : endedAt));
    }
    return;
  }
  if (next.statusChanged) update.set(GSI.byStatus.partitionKey, next.statusPartition);
  if (next.sweepAt !== undefined) update.set(GSI.byStatus.sortKey, sweepSortKey(next.sweepAt));
}

/**
 * Keeps a command's status-index keys in step with an update: a new indexed status moves it
 * to that partition, any other new status removes it from the index. Without a new sweepAt the
 * command keeps its sort key (`if_not_exists`: one written before the index existed becomes
 * unscheduled rather than invisible, since an item lacking either key is not in the index).
 */
export function moveCommandIndexKeys(
  update: UpdateExpression,
  commandId: string,
  newStatus: CommandStatus | undefined,
  expectedStatus: CommandStatus,
  sweepAt: string | null | undefined,
): void {
  const status = newStatus ?? expectedStatus;
  if (!isIndexedCommandStatus(status)) {
    if (newStatus !== undefined) {
      update.remove(GSI.byStatus.partitionKey).remove(GSI.byStatus.sortKey);
    }
    return;
  }
  if (sweepAt !== undefined) update.set(GSI.byStatus.sortKey, sweepSortKey(sweepAt));
  if (newStatus === undefined) return;
  update.set(GSI.byStatus.partitionKey, commandStatusPartition(status, commandId));
  if (sweepAt === undefined) update.setIfAbsent(GSI.byStatus.sortKey, UNSCHEDULED_SWEEP_KEY);
}

/**
 * Keeps a resource's free-index keys (schema.ts, GSI4) in step in the same write that changes
 * whether it may take a lease. `free`: true puts it in (the sort key is copied from GSI1SK,
 * which every resource item has, so a write that knows only the id can do it), false takes it
 * out, undefined leaves it as it is. Putting in a resource that turns out not to be free is
 * harmless (the reader filters on the projected item); leaving out one that is free is not (the
 * warm path would miss it until the fallback), so every write that may free a resource puts it in.
 */
export function moveFreeIndexKeys(
  update: UpdateExpression,
  resourceId: string,
  free: boolean | undefined,
): void {
  if (free === undefined) return;
  if (free) {
    update.set(GSI.free.partitionKey, freePartition(resourceId));
    update.copy(GSI.free.sortKey, GSI.byType.sortKey);
  } else {
    update.remove(GSI.free.partitionKey).remove(GSI.free.sortKey);
  }
}
