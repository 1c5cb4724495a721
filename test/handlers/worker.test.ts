/**
 * The worker handler with real SQS event shapes: partial batch failures, malformed messages on
 * their way to the DLQ, EC2 events acknowledged, commands run exactly once per delivery chain.
 */
import { GetQueueAttributesCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { syntheticScopes } from '../../lambdas/blueprints/synthetic/index.ts';
import { parseCommandSpec } from '../../lambdas/core/command-spec.ts';
import { startCommand } from '../../lambdas/core/commands.ts';
import type { UpdateMessage } from '../../lambdas/core/model.ts';
import { createBlueprint, releaseLease, requestLease } from '../../lambdas/core/use-cases.ts';
import { hostEventOf } from '../../lambdas/handlers/worker.ts';
import { type ReceivedUpdate, receiveUpdates } from '../../lambdas/queue/sqs-queue.ts';
import { freshQueue, waitFor } from '../support/env.ts';
import { CI, type HandlerEnv, handlerEnv, sqsEvent, sqsRecord } from './support.ts';

vi.hoisted(() => {
  if (!process.env.DRYDOCK_TEST_LOGS) process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
});

const ARN = 'arn:aws:sqs:us-east-1:123456789012:work';
let env: HandlerEnv;

function received(body: string, n: number): ReceivedUpdate {
  return { messageId: `m-${n}`, receiptHandle: `rh-${n}`, body, receiveCount: 1 };
}

const spotWarning = {
  version: '0',
  id: '7e0b1c2f-1111-2222-3333-444455556666',
  'detail-type': 'EC2 Spot Instance Interruption Warning',
  source: 'aws.ec2',
  account: '123456789012',
  time: '2026-01-01T00:00:00Z',
  region: 'us-east-1',
  resources: ['arn:aws:ec2:us-east-1:123456789012:instance/i-0abc'],
  detail: { 'instance-id': 'i-0abc', 'instance-action': 'terminate' },
};

const stateChange = {
  ...spotWarning,
  id: '8e0b1c2f-1111-2222-3333-444455556666',
  'detail-type': 'EC2 Instance State-change Notification',
  detail: { 'instance-id': 'i-0def', state: 'terminated' },
};

beforeAll(async () => {
  env = await handlerEnv();
  await createBlueprint(env.engine, {
    id: 'pool',
    type: 'synthetic',
    resourceType: 'host',
    limits: { maxResources: 5, idleGraceSeconds: 0 },
  });
});

describe('worker', () => {
  it('reports only the malformed message of a batch as failed', async () => {
    const lease = await requestLease(env.engine, { type: 'host', owner: CI });
    const message: UpdateMessage = { kind: 'lease', id: lease.id, reason: 'requested' };
    const batch = [
      received(JSON.stringify(message), 1),
      received('{"kind":"lease"', 2), // not JSON
      received('{"kind":"host","id":"x"}', 3), // no such kind
      received(JSON.stringify({ kind: 'command', id: 'cmd-1' }), 4), // no leaseId
      received(JSON.stringify(spotWarning), 5),
      received(JSON.stringify(stateChange), 6),
      received(JSON.stringify({ ...spotWarning, detail: {} }), 7), // an EC2 event without an instance
    ];
    const response = await env.invokeWorker(sqsEvent(batch.map((m) => sqsRecord(m, ARN))));
    expect(response.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual([
      'm-2',
      'm-3',
      'm-4',
      'm-7',
    ]);
    // The good message did its work.
    expect((await env.engine.store.getLease(lease.id))?.status).toBe('active');
  });

  it('acknowledges a rebalance recommendation and maps every EC2 event to a plain host event', async () => {
    const rebalance = {
      ...spotWarning,
      id: '9e0b1c2f-1111-2222-3333-444455556666',
      'detail-type': 'EC2 Instance Rebalance Recommendation',
      detail: { 'instance-id': 'i-0abc' },
    };
    const response = await env.invokeWorker(
      sqsEvent([sqsRecord(received(JSON.stringify(rebalance), 1), ARN)]),
    );
    // An instance bound to no resource: dropped with a log line, not redelivered.
    expect(response.batchItemFailures).toEqual([]);
    expect(hostEventOf(rebalance as never)).toEqual({
      instanceId: 'i-0abc',
      kind: 'rebalance',
      at: '2026-01-01T00:00:00Z',
    });
    expect(hostEventOf(spotWarning as never)).toMatchObject({ kind: 'interruption' });
    expect(hostEventOf(stateChange as never)).toEqual({
      instanceId: 'i-0def',
      kind: 'state-change',
      state: 'terminated',
      at: '2026-01-01T00:00:00Z',
    });
  });

  it('a batch that failed entirely is still a partial response, not a thrown error', async () => {
    const response = await env.invokeWorker(sqsEvent([sqsRecord(received('nonsense', 1), ARN)]));
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: 'm-1' }] });
  });

  it('a malformed message reaches the DLQ after maxReceiveCount', async () => {
    const queue = await freshQueue('poison', { maxReceiveCount: 2 });
    await queue.client.send(
      new SendMessageCommand({
        QueueUrl: queue.queueUrl,
        MessageBody: '{"kind":"lease"}',
      }),
    );
    const failures: string[] = [];
    await waitFor(
      async () => {
        const batch = await receiveUpdates(queue.client, queue.queueUrl, { visibilityTimeout: 0 });
        if (batch.length > 0) {
          // What the event source mapping does: failed messages are simply not deleted.
          const response = await env.invokeWorker(sqsEvent(batch.map((m) => sqsRecord(m, ARN))));
          failures.push(...response.batchItemFailures.map((f) => f.itemIdentifier));
        }
        const dlq = await queue.client.send(
          new GetQueueAttributesCommand({
            QueueUrl: queue.dlqUrl,
            AttributeNames: ['ApproximateNumberOfMessages'],
          }),
        );
        return dlq.Attributes?.ApproximateNumberOfMessages === '1';
      },
      { timeoutMs: 10_000, message: 'the malformed message in the DLQ' },
    );
    expect(failures).toHaveLength(2);
  });

  it('runs a queued command once: a redelivered message for a finished command does nothing', async () => {
    const lease = await requestLease(env.engine, { type: 'host', owner: CI });
    await env.driveWorker(
      async () => (await env.engine.store.getLease(lease.id))?.status === 'active',
    );
    const command = await startCommand(
      env.engine,
      lease.id,
      { argv: ['echo', 'once'] },
      { principal: CI },
    );
    const message = JSON.stringify({ kind: 'command', id: command.id, leaseId: lease.id });

    const first = await env.invokeWorker(sqsEvent([sqsRecord(received(message, 1), ARN)]));
    expect(first.batchItemFailures).toEqual([]);
    // The first delivery started it; the polls it re-enqueued see it finish.
    const done = await env.driveWorker(async () => {
      const now = await env.engine.store.getCommand(lease.id, command.id);
      return now?.status === 'finished' ? now : undefined;
    });
    expect(done).toMatchObject({ status: 'finished', attempt: 1, result: { stdout: 'once\n' } });
    expect(done).not.toHaveProperty('env');

    const again = await env.invokeWorker(sqsEvent([sqsRecord(received(message, 2), ARN)]));
    expect(again.batchItemFailures).toEqual([]);
    expect(await env.engine.store.getCommand(lease.id, command.id)).toEqual(done);
    const runs = (await env.engine.store.listLogs(lease.id)).filter((e) =>
      e.message.startsWith('command `echo once` exited'),
    );
    expect(runs).toHaveLength(1);
  });

  it('a start that crashed before its handle was recorded starts again with the same id: one run', async () => {
    // Replaces "a command whose runner died is re-run once its timeout has passed": no worker
    // runs a command any more, so nothing can die mid-run; what can die is the step between
    // starting it on the host and recording its handle.
    const lease = await requestLease(env.engine, { type: 'host', owner: CI });
    await env.driveWorker(
      async () => (await env.engine.store.getLease(lease.id))?.status === 'active',
    );
    const engine = env.engine;
    const command = await startCommand(
      engine,
      lease.id,
      { argv: ['echo', 'again'], timeoutSeconds: 5 },
      { principal: CI },
    );
    // The crashed worker's half: the host started it, the record never heard of it.
    const active = await engine.store.getLease(lease.id);
    const resource = await engine.store.getResource(active?.resourceId as string);
    const { plugin, bp } = engine.configured((await engine.blueprint('pool'))!);
    const host = plugin.command!(engine.ctx, bp, resource!, active!);
    const crashedHandle = await host.start(
      command.id,
      parseCommandSpec({ argv: ['echo', 'again'] }, 5),
    );
    const message = JSON.stringify({ kind: 'command', id: command.id, leaseId: lease.id });

    // Redelivered: started again with the same id, which is the same command on the host.
    await env.invokeWorker(sqsEvent([sqsRecord(received(message, 1), ARN)]));
    expect(await engine.store.getCommand(lease.id, command.id)).toMatchObject({
      status: 'running',
      attempt: 1,
      handle: crashedHandle,
    });
    const done = await env.driveWorker(async () => {
      const now = await engine.store.getCommand(lease.id, command.id);
      return now?.status === 'finished' ? now : undefined;
    });
    expect(done).toMatchObject({ status: 'finished', attempt: 1, result: { stdout: 'again\n' } });
    const starts = (
      await engine.store.listRecords(
        syntheticScopes.commands('pool', resource!.data.hostId as string),
      )
    ).filter((r) => r.event === 'started' && r.commandId === command.id);
    expect(starts).toHaveLength(1);
  });

  it('a command that cannot run fails with a reason its holder can read', async () => {
    const engine = env.engine;
    const lease = await requestLease(engine, { type: 'host', owner: CI });
    await env.driveWorker(async () => (await engine.store.getLease(lease.id))?.status === 'active');
    const command = await startCommand(engine, lease.id, { script: 'true' }, { principal: CI });
    // The lease ends before the worker gets to the command.
    await releaseLease(engine, lease.id, { principal: CI });
    const failed = await env.driveWorker(async () => {
      const now = await engine.store.getCommand(lease.id, command.id);
      return now?.status === 'failed' ? now : undefined;
    });
    expect(failed.error).toMatch(/^lease .* is (released|destroyed), not active/);
  });
});
