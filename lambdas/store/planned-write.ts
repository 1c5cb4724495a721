/**
 * What a planned write is: one conditional DynamoDB operation, named for errors, with the
 * parameters typed as a transaction item so the same plan can be sent alone or inside
 * TransactWriteItems; and the shapes every planner builds them with. Pure.
 */
import type { TransactWriteCommandInput } from '@aws-sdk/lib-dynamodb';
import {
  expressionAttributes,
  type Fragment,
  itemIsNew,
  type UpdateExpression,
} from './expressions.ts';
import type { ItemKey } from './keys.ts';
import type { WriteName } from './sdk-errors.ts';

type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

/**
 * One planned write: its label (writeLabel), what it expects in words (for error messages) and
 * its parameters, typed as a transaction item so the same plan can be sent alone or inside
 * TransactWriteItems.
 */
export type PlannedWrite = WriteName &
  (
    | { kind: 'Put'; params: NonNullable<TransactItem['Put']> }
    | { kind: 'Update'; params: NonNullable<TransactItem['Update']> }
    | { kind: 'Delete'; params: NonNullable<TransactItem['Delete']> }
    | {
        kind: 'ConditionCheck';
        params: NonNullable<TransactItem['ConditionCheck']>;
        /** The condition, evaluated locally when the check is sent alone (a consistent read). */
        holds: (item: Record<string, unknown>) => boolean;
      }
  );

export interface PlanContext {
  tableName: string;
  /** Milliseconds since the epoch: updatedAt defaults, TTLs, idempotency expiry. */
  now: number;
}

export function toTransactItem(planned: PlannedWrite): TransactItem {
  switch (planned.kind) {
    case 'Put':
      return { Put: planned.params };
    case 'Update':
      return { Update: planned.params };
    case 'Delete':
      return { Delete: planned.params };
    case 'ConditionCheck':
      return { ConditionCheck: planned.params };
  }
}

/** A condition, and the item to return when it fails. */
export function conditionParams(condition: Fragment) {
  return {
    ConditionExpression: condition.expression,
    ...expressionAttributes(condition),
    ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
  };
}

export function putNew(
  ctx: PlanContext,
  label: string,
  item: Record<string, unknown>,
  detail?: string,
): PlannedWrite {
  return {
    kind: 'Put',
    label,
    ...(detail ? { detail } : {}),
    params: { TableName: ctx.tableName, Item: item, ...conditionParams(itemIsNew) },
  };
}

export function updateWrite(
  ctx: PlanContext,
  label: string,
  key: ItemKey,
  update: UpdateExpression,
  condition: Fragment,
  detail?: string,
): PlannedWrite {
  const updateFragment = update.toFragment();
  return {
    kind: 'Update',
    label,
    ...(detail ? { detail } : {}),
    params: {
      TableName: ctx.tableName,
      Key: key,
      UpdateExpression: updateFragment.expression,
      ConditionExpression: condition.expression,
      ...expressionAttributes(updateFragment, condition),
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    },
  };
}

export function assertPatchable(patch: object, fixed: ReadonlySet<string>, what: string): void {
  for (const [key, value] of Object.entries(patch)) {
    if (value !== undefined && fixed.has(key)) {
      throw new Error(`${what} may not set '${key}'`);
    }
  }
}

export const isoAt = (ms: number): string => new Date(ms).toISOString();
