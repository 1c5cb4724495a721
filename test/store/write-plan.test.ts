/**
 * The pure rooms of the DynamoDB store, without DynamoDB: the write planner, the expression
 * DSL and the translation of SDK exceptions (throttling and cancellation reasons DynamoDB
 * Local cannot be made to produce on demand).
 */
import { describe, expect, it } from 'vitest';
import { DrydockError, TemporaryError, WriteConflictError } from '../../lambdas/core/errors.ts';
import type { Lease, Resource } from '../../lambdas/core/model.ts';
import { type TxWrite, writeLabel } from '../../lambdas/core/ports.ts';
import { allOf, statusIs } from '../../lambdas/store/expressions.ts';
import type { PlannedWrite } from '../../lambdas/store/planned-write.ts';
import { translateError } from '../../lambdas/store/sdk-errors.ts';
import { planWrite } from '../../lambdas/store/write-plan.ts';

const T0 = '2026-01-01T00:00:00.000Z';
const ctx = { tableName: 'drydock', now: Date.parse(T0) };

type UpdateParams = Extract<PlannedWrite, { kind: 'Update' }>['params'];
function updateParams(write: TxWrite): UpdateParams {
  const planned = planWrite(ctx, write);
  if (planned.kind !== 'Update') throw new Error(`expected an Update, got ${planned.kind}`);
  return planned.params;
}

const lease = { id: 'L1', type: 'host', status: 'pending', version: 1 } as Lease;
const resource = { id: 'R1', type: 'host', status: 'active', version: 1 } as Resource;

describe('write planner', () => {
  it('plans lease and resource transitions in one shape', () => {
    const leaseUpdate = updateParams({
      op: 'updateLease',
      id: lease.id,
      type: 'host',
      expect: { status: 'acquired', version: 3 },
      set: { status: 'active', sweepAt: '2026-01-01T01:00:00.000Z' },
    });
    const resourceUpdate = updateParams({
      op: 'updateResource',
      id: resource.id,
      type: 'host',
      expect: { status: 'pending', version: 3 },
      set: { status: 'active', sweepAt: '2026-01-01T01:00:00.000Z' },
    });
    for (const params of [leaseUpdate, resourceUpdate]) {
      expect(params.ConditionExpression).toBe(
        '#status = :expectStatus AND #version = :expectVersion',
      );
      expect(params.ExpressionAttributeValues).toMatchObject({
        ':expectVersion': 3,
        ':versionDelta': 1,
        ':updatedAt': T0,
        ':GSI2SK': '2026-01-01T01:00:00.000Z',
      });
      expect(params.ReturnValuesOnConditionCheckFailure).toBe('ALL_OLD');
    }
    expect(leaseUpdate.UpdateExpression).toBe(
      'SET #status = :status, #sweepAt = :sweepAt, #version = #version + :versionDelta, ' +
        '#updatedAt = :updatedAt, #GSI1PK = :GSI1PK, #GSI2PK = :GSI2PK, #GSI2SK = :GSI2SK',
    );
    expect(leaseUpdate.Key).toEqual({ PK: 'LEASE#L1', SK: 'LEASE' });
    // GSI2 is spread by a hash of the id (schema.ts): L1 is in shard 2, R1 in shard 0, whose
    // key is the one from before the spread.
    expect(leaseUpdate.ExpressionAttributeValues).toMatchObject({
      ':GSI1PK': 'LEASE#host#active',
      ':GSI2PK': 'LEASE#active#2',
    });
    // pending -> active stays in the `live` phase: its GSI1 block (from the pool slot, which
    // the transition does not know) must stay as it is, so GSI1PK is not written.
    expect(resourceUpdate.UpdateExpression).toBe(
      'SET #status = :status, #sweepAt = :sweepAt, #version = #version + :versionDelta, ' +
        '#updatedAt = :updatedAt, #GSI2PK = :GSI2PK, #GSI2SK = :GSI2SK',
    );
    expect(resourceUpdate.Key).toEqual({ PK: 'RES#R1', SK: 'RES' });
    expect(resourceUpdate.ExpressionAttributeValues).toMatchObject({ ':GSI2PK': 'RES#active' });
    expect(resourceUpdate.ExpressionAttributeValues).not.toHaveProperty(':GSI1PK');
  });

  it('adds the no-leases condition to a resource transition only when asked', () => {
    const reclaim = updateParams({
      op: 'updateResource',
      id: 'R1',
      type: 'host',
      expect: { status: 'active', version: 2 },
      set: { status: 'released' },
      requireNoLeases: true,
    });
    expect(reclaim.ConditionExpression).toBe(
      '#status = :expectStatus AND #version = :expectVersion AND #leaseCount = :zero',
    );
  });

  it('refuses a patch of identity, index keys or fields owned by another writer', () => {
    const patch = (write: TxWrite) => () => planWrite(ctx, write);
    const updateLease = (set: object): TxWrite =>
      ({
        op: 'updateLease',
        id: 'L1',
        type: 'host',
        expect: { status: 'pending', version: 1 },
        set,
      }) as TxWrite;
    const updateResource = (set: object): TxWrite =>
      ({
        op: 'updateResource',
        id: 'R1',
        type: 'host',
        expect: { status: 'active', version: 1 },
        set,
      }) as TxWrite;
    expect(patch(updateLease({ owner: 'mallory' }))).toThrow("updateLease may not set 'owner'");
    expect(patch(updateLease({ GSI2PK: 'x' }))).toThrow("updateLease may not set 'GSI2PK'");
    expect(patch(updateResource({ leaseCount: 0 }))).toThrow(
      "updateResource may not set 'leaseCount'",
    );
    expect(
      patch({
        op: 'updateCommand',
        leaseId: 'L1',
        id: 'C1',
        expect: { status: 'running', attempt: 1 },
        set: { owner: 'mallory' } as object,
      } as TxWrite),
    ).toThrow("updateCommand may not set 'owner'");
    // undefined means "leave alone", so it is allowed.
    expect(patch(updateLease({ owner: undefined, endReason: 'x' }))).not.toThrow();
  });

  it('keeps command index keys in step with the status, and checks the poll count', () => {
    const command = (
      expect: { status: 'queued' | 'running'; attempt: number; polls?: number },
      set: Extract<TxWrite, { op: 'updateCommand' }>['set'],
    ) => updateParams({ op: 'updateCommand', leaseId: 'L1', id: 'C1', expect, set });

    const started = command({ status: 'queued', attempt: 0 }, { status: 'running', attempt: 1 });
    expect(started.UpdateExpression).toContain('#GSI2PK = :GSI2PK');
    expect(started.UpdateExpression).toContain('#GSI2SK = if_not_exists(#GSI2SK, :GSI2SK)');
    expect(started.ExpressionAttributeValues).toMatchObject({
      ':GSI2PK': 'CMD#running#1', // C1 is in status shard 1
      ':GSI2SK': '~',
    });

    const polled = command({ status: 'running', attempt: 1, polls: 0 }, { polls: 1 });
    expect(polled.ConditionExpression).toBe(
      '#status = :expectStatus AND #attempt = :expectAttempt AND ' +
        '(attribute_not_exists(#polls) OR #polls = :expectPolls)',
    );
    expect(polled.UpdateExpression).not.toContain('GSI2');
    const polledAgain = command({ status: 'running', attempt: 1, polls: 4 }, { polls: 5 });
    expect(polledAgain.ConditionExpression).toContain('#polls = :expectPolls');
    expect(polledAgain.ConditionExpression).not.toContain('attribute_not_exists');

    const finished = command({ status: 'running', attempt: 1 }, { status: 'finished' });
    expect(finished.UpdateExpression).toContain('REMOVE #GSI2PK, #GSI2SK');
    expect(finished.UpdateExpression).not.toContain('#GSI2PK = :GSI2PK');
  });

  it('is pure: the same write and context give the same plan, labelled by writeLabel', () => {
    const writes: TxWrite[] = [
      { op: 'createLease', lease },
      { op: 'takeSlotLock', lock: { key: 'k', ownerKind: 'lease', ownerId: 'L1', createdAt: T0 } },
      { op: 'attachLease', resourceId: 'R1', statusIn: ['active'], maxUses: 3 },
      { op: 'checkResource', resourceId: 'R1', statusIn: ['active'] },
      { op: 'freeSlotLock', key: 'k', ownerId: 'L1' },
    ];
    for (const write of writes) {
      const planned = planWrite(ctx, write);
      const again = planWrite(ctx, write);
      expect(again.params).toEqual(planned.params);
      expect([again.kind, again.detail]).toEqual([planned.kind, planned.detail]);
      expect(planned.label).toBe(writeLabel(write));
      expect(planned.params).toMatchObject({ ReturnValuesOnConditionCheckFailure: 'ALL_OLD' });
    }
    expect(writes.map(writeLabel)).toEqual([
      'createLease:L1',
      'takeSlotLock:k',
      'attachLease:R1',
      'checkResource:R1',
      'freeSlotLock:k',
    ]);
  });
});

describe('expressions', () => {
  it('refuses to bind one placeholder to two values', () => {
    expect(() => allOf(statusIs('pending'), statusIs('active'))).toThrow(
      'expression placeholder :expectStatus used for two different values',
    );
    expect(allOf(statusIs('pending'), statusIs('pending')).values).toEqual({
      ':expectStatus': 'pending',
    });
  });
});

describe('SDK error translation', () => {
  const writes = [
    { label: 'updateLease:L1', detail: 'expect pending v1' },
    { label: 'takeSlotLock:k', detail: 'for lease L1' },
  ];

  it('names the writes a cancelled transaction failed on, with the returned item', () => {
    const err = translateError(
      {
        name: 'TransactionCanceledException',
        CancellationReasons: [
          { Code: 'None' },
          {
            Code: 'ConditionalCheckFailed',
            Item: { PK: { S: 'LOCK#k' }, SK: { S: 'LOCK' }, ownerId: { S: 'L0' } },
          },
        ],
      },
      'transaction',
      writes,
    );
    expect(err).toBeInstanceOf(WriteConflictError);
    const conflict = err as WriteConflictError;
    expect(conflict.failures).toEqual([
      { label: 'takeSlotLock:k', reason: 'condition', item: { ownerId: 'L0' } },
    ]);
    expect(conflict.message).toBe(
      'transaction cancelled: takeSlotLock:k (for lease L1): condition',
    );
    expect(conflict.failed('updateLease:L1')).toBe(false);
  });

  it('reports a concurrent transaction on an item as a conflict, not a condition', () => {
    const err = translateError(
      {
        name: 'TransactionCanceledException',
        CancellationReasons: [{ Code: 'TransactionConflict' }, { Code: 'None' }],
      },
      'transaction',
      writes,
    ) as WriteConflictError;
    expect(err.failures).toEqual([{ label: 'updateLease:L1', reason: 'conflict' }]);
    expect(err.failed('updateLease:L1', 'condition')).toBe(false);
    expect(err.failed('updateLease:L1', 'conflict')).toBe(true);
  });

  it('turns throttling and server errors into TemporaryError, the rest into store_failure', () => {
    const throttled = translateError(
      {
        name: 'TransactionCanceledException',
        CancellationReasons: [{ Code: 'ThrottlingError' }, { Code: 'None' }],
      },
      'transaction',
      writes,
    );
    expect(throttled).toBeInstanceOf(TemporaryError);
    expect(translateError({ name: 'ThrottlingException' }, 'getLease L1')).toBeInstanceOf(
      TemporaryError,
    );
    expect(
      translateError({ name: 'Whatever', $metadata: { httpStatusCode: 503 } }, 'query'),
    ).toBeInstanceOf(TemporaryError);
    const broken = translateError(
      Object.assign(new Error('bad expression'), { name: 'ValidationException' }),
      'query',
    );
    expect(broken).toBeInstanceOf(DrydockError);
    expect(broken).not.toBeInstanceOf(TemporaryError);
    expect(broken.code).toBe('store_failure');
    expect(broken.message).toContain('bad expression');
  });
});
