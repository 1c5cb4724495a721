/**
 * How an update keeps an item's index keys in step with the status and sweepAt it writes
 * (layout: schema.ts). Pure: each function adds clauses to an UpdateExpression.
 */
import type { CommandStatus } from '../core/model.ts';
import type { UpdateExpression } from './expressions.ts';
import {
  commandStatusPartition,
  isIndexedCommandStatus,
  retentionEpoch,
  sweepSortKey,
} from './keys.ts';
import { GSI, TTL_ATTRIBUTE, UNSCHEDULED_SWEEP_KEY } from './schema.ts';

/** Where a lease or resource update leaves it, as far as its index keys care. */
export interface VersionedIndexMove {
  status: string;
  statusChanged: boolean;
  typePartition: string;
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
  if (next.statusChanged) update.set(GSI.byType.partitionKey, next.typePartition);
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
  update.set(GSI.byStatus.partitionKey, commandStatusPartition(status));
  if (sweepAt === undefined) update.setIfAbsent(GSI.byStatus.sortKey, UNSCHEDULED_SWEEP_KEY);
}
