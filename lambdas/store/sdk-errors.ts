/**
 * SDK exceptions -> domain errors, so the core never sees an AWS type: a failed condition or a
 * cancelled transaction becomes WriteConflictError naming the writes that failed by label
 * (with the item DynamoDB returned), throttling, 5xx and connection faults (a connection that
 * was not established or a response that never came) become TemporaryError, anything else
 * `store_failure`.
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import {
  DrydockError,
  errorMessage,
  TemporaryError,
  WriteConflictError,
  type WriteFailure,
} from '../core/errors.ts';
import { isConnectionFault } from './connection-faults.ts';
import { stripKeys } from './keys.ts';

/** How a write is named in errors: its label (writeLabel) and what it expected, in words. */
export interface WriteName {
  label: string;
  detail?: string;
}

/** `label (detail)`: how a write appears in error messages. */
export const describeWrite = (w: WriteName): string =>
  w.detail ? `${w.label} (${w.detail})` : w.label;

const TEMPORARY_ERRORS = new Set([
  'ThrottlingException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'TransactionInProgressException',
  'InternalServerError',
  'ServiceUnavailable',
  'LimitExceededException',
]);

const CANCELLATION_REASONS: Record<string, WriteFailure['reason'] | 'temporary'> = {
  ConditionalCheckFailed: 'condition',
  TransactionConflict: 'conflict',
  ThrottlingError: 'temporary',
  ProvisionedThroughputExceeded: 'temporary',
  RequestLimitExceeded: 'temporary',
};

type RawItem = Record<string, AttributeValue>;

interface SdkError {
  name?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  /** The item whose condition failed (ReturnValuesOnConditionCheckFailure), raw: lib-dynamodb does not unmarshall errors. */
  Item?: RawItem;
  /** Per-write reasons, raw like Item. */
  CancellationReasons?: Array<{ Code?: string; Message?: string; Item?: RawItem }>;
}

/** The domain object DynamoDB returned with a failed condition, if any. */
export function existingItem(raw: RawItem | undefined): Pick<WriteFailure, 'item'> {
  return raw ? { item: stripKeys<Record<string, unknown>>(unmarshall(raw)) } : {};
}

/**
 * Turns an SDK exception into a domain error. `writes` are the writes of a transaction (or the
 * one write) so a conflict names the writes that failed by their labels.
 */
export function translateError(
  err: unknown,
  what: string,
  writes: readonly WriteName[] = [],
): DrydockError {
  const sdk = (err ?? {}) as SdkError;
  const [only] = writes;
  switch (sdk.name) {
    case 'ConditionalCheckFailedException':
    case 'TransactionConflictException': {
      const reason = sdk.name === 'TransactionConflictException' ? 'conflict' : 'condition';
      return new WriteConflictError(
        `${only ? describeWrite(only) : what}: ${reason === 'condition' ? 'condition failed' : 'conflicts with a concurrent transaction'}`,
        [{ label: only?.label ?? what, reason, ...existingItem(sdk.Item) }],
        { cause: err },
      );
    }
    case 'TransactionCanceledException': {
      const reasons = sdk.CancellationReasons ?? [];
      const failures: WriteFailure[] = [];
      const described: string[] = [];
      let temporary = false;
      reasons.forEach((r, index) => {
        if (!r.Code || r.Code === 'None') return;
        const mapped = CANCELLATION_REASONS[r.Code] ?? 'other';
        if (mapped === 'temporary') {
          temporary = true;
          return;
        }
        const write = writes[index];
        failures.push({
          label: write?.label ?? `write ${index}`,
          reason: mapped,
          ...existingItem(r.Item),
        });
        described.push(`${write ? describeWrite(write) : `write ${index}`}: ${mapped}`);
      });
      if (failures.some((f) => f.reason === 'condition' || f.reason === 'conflict')) {
        return new WriteConflictError(`${what} cancelled: ${described.join('; ')}`, failures, {
          cause: err,
        });
      }
      if (temporary) {
        return new TemporaryError(`${what} cancelled by throttling`, { cause: err });
      }
      const codes = reasons.map(
        (r, i) => `${writes[i]?.label ?? i}:${r.Code ?? '?'}${r.Message ? ` (${r.Message})` : ''}`,
      );
      return new DrydockError('store_failure', `${what} cancelled: ${codes.join(', ')}`, {
        cause: err,
        context: { writes: writes.map((w) => w.label) },
      });
    }
  }
  if (
    (sdk.name && TEMPORARY_ERRORS.has(sdk.name)) ||
    (sdk.$metadata?.httpStatusCode ?? 0) >= 500 ||
    isConnectionFault(err)
  ) {
    return new TemporaryError(`DynamoDB ${what} failed temporarily: ${errorMessage(err)}`, {
      cause: err,
    });
  }
  return new DrydockError('store_failure', `DynamoDB ${what} failed: ${errorMessage(err)}`, {
    cause: err,
  });
}
