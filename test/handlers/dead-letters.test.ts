/**
 * GET /v1/admin/dlq and POST /v1/admin/dlq/redrive through the api handler, on the SQS emulator:
 * what the worker gave up on is listed (not removed), then moved back and processed.
 */
import { GetQueueAttributesCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { describeBody } from '../../lambdas/queue/sqs-dead-letters.ts';
import { receiveUpdates } from '../../lambdas/queue/sqs-queue.ts';
import { waitFor } from '../support/env.ts';
import { ADMIN, CI, type HandlerEnv, handlerEnv, sqsEvent, sqsRecord } from './support.ts';

vi.hoisted(() => {
  if (!process.env.DRYDOCK_TEST_LOGS) process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
});

let env: HandlerEnv;
/**
 * While set, the worker cannot read leases or the pool: every lease update fails (a DynamoDB
 * outage). The pool too, because a lease's first update plans from the lease its message
 * carries (lease-update.ts) and reads no lease.
 */
let outage = false;

beforeAll(async () => {
  env = await handlerEnv({
    wrapStore: (store) =>
      new Proxy(store, {
        get(target, prop, receiver) {
          if ((prop === 'getLease' || prop === 'listLiveResources') && outage) {
            return async () => {
              throw new Error('injected: DynamoDB is unreachable');
            };
          }
          return Reflect.get(target, prop, receiver);
        },
      }),
  });
});

async function deadLetterCount(): Promise<number> {
  const attributes = await env.queue.client.send(
    new GetQueueAttributesCommand({
      QueueUrl: env.queue.dlqUrl,
      AttributeNames: ['ApproximateNumberOfMessages'],
    }),
  );
  return Number(attributes.Attributes?.ApproximateNumberOfMessages ?? 0);
}

async function poison(body: string): Promise<void> {
  await env.queue.client.send(
    new SendMessageCommand({ QueueUrl: env.queue.dlqUrl, MessageBody: body }),
  );
}

describe('the dead-letter queue (admin)', () => {
  it('an update the worker kept failing on is listed, redriven once the cause is gone, and processed', async () => {
    const created = await env.api({
      method: 'POST',
      path: '/v1/blueprints',
      principal: ADMIN,
      body: { id: 'pool', type: 'synthetic', limits: { maxResources: 1 } },
    });
    expect(created.status).toBe(201);
    outage = true;
    const requested = await env.api({ method: 'POST', path: '/v1/leases', body: { type: 'host' } });
    expect(requested.status).toBe(201);
    const leaseId = requested.body.lease.id as string;

    // The worker fails the update on every delivery; after maxReceiveCount SQS dead-letters it.
    await waitFor(
      async () => {
        const batch = await receiveUpdates(env.queue.client, env.queue.queueUrl, {
          visibilityTimeout: 0,
        });
        if (batch.length > 0) {
          const response = await env.invokeWorker(
            sqsEvent(batch.map((m) => sqsRecord(m, env.queue.queueArn))),
          );
          expect(response.batchItemFailures).toHaveLength(batch.length);
        }
        return (await deadLetterCount()) === 1;
      },
      { timeoutMs: 15_000, message: 'the failing update in the DLQ' },
    );

    const listed = await env.api({ method: 'GET', path: '/v1/admin/dlq', principal: ADMIN });
    expect(listed.status).toBe(200);
    expect(listed.body.approximateCount).toBe(1);
    expect(listed.body.messages).toEqual([
      expect.objectContaining({ about: `update of lease ${leaseId} (requested)` }),
    ]);
    expect(listed.body.messages[0].receiveCount).toBeGreaterThanOrEqual(1);
    outage = false; // the cause is fixed
    // Nothing else moves the lease on (no sweep here): it waits for its update.
    expect(
      (await env.api({ method: 'GET', path: `/v1/leases/${leaseId}` })).body.lease.status,
    ).toBe('pending');
    const redrive = await env.api({
      method: 'POST',
      path: '/v1/admin/dlq/redrive',
      principal: ADMIN,
    });
    expect(redrive.body).toEqual({ redrive: { mode: 'moved', moved: 1 } });
    expect(await deadLetterCount()).toBe(0);
    await env.driveWorker(
      async () =>
        (await env.api({ method: 'GET', path: `/v1/leases/${leaseId}` })).body.lease.status ===
        'active',
      { message: `lease ${leaseId} active after the redrive` },
    );
    await env.api({ method: 'POST', path: `/v1/leases/${leaseId}/release` });
  });

  it('lists what each message was about without removing it, then redrives it to the work queue', async () => {
    const update = JSON.stringify({
      kind: 'resource',
      id: 'res-gone',
      reason: 'sweep: check or reclaim',
    });
    await poison(update);
    await poison('{"kind":"lease"}');
    await poison(
      JSON.stringify({
        source: 'aws.ec2',
        'detail-type': 'EC2 Spot Instance Interruption Warning',
        detail: { 'instance-id': 'i-0abc' },
      }),
    );

    const first = await env.api({ method: 'GET', path: '/v1/admin/dlq', principal: ADMIN });
    expect(first.status).toBe(200);
    expect(first.body.approximateCount).toBe(3);
    expect(first.body.messages.map((m: { about: string }) => m.about).sort()).toEqual([
      "EventBridge event 'EC2 Spot Instance Interruption Warning' for i-0abc",
      'unreadable: invalid update message: id: Invalid input: expected string, received undefined',
      'update of resource res-gone (sweep: check or reclaim)',
    ]);
    // Still there: a second look sees the same three, visible again at once.
    const again = await env.api({ method: 'GET', path: '/v1/admin/dlq?limit=2', principal: ADMIN });
    expect(again.body.messages).toHaveLength(2);
    expect(again.body.approximateCount).toBe(3);

    const redrive = await env.api({
      method: 'POST',
      path: '/v1/admin/dlq/redrive',
      principal: ADMIN,
    });
    expect(redrive.status).toBe(200);
    expect(redrive.body).toEqual({ redrive: { mode: 'moved', moved: 3 } });
    const empty = await env.api({ method: 'GET', path: '/v1/admin/dlq', principal: ADMIN });
    expect(empty.body).toEqual({ messages: [], approximateCount: 0 });

    // Back on the work queue, as they were sent.
    const back = await receiveUpdates(env.queue.client, env.queue.queueUrl, {
      max: 10,
      waitSeconds: 1,
    });
    expect(back.map((m) => m.body)).toContain(update);
  });

  it('is for admins only', async () => {
    expect((await env.api({ method: 'GET', path: '/v1/admin/dlq', principal: CI })).status).toBe(
      403,
    );
    expect(
      (await env.api({ method: 'POST', path: '/v1/admin/dlq/redrive', principal: CI })).status,
    ).toBe(403);
  });

  it('says what a body is about', () => {
    expect(describeBody('not json')).toBe('unreadable: not JSON');
    expect(describeBody(JSON.stringify({ kind: 'command', id: 'cmd-1', leaseId: 'lease-1' }))).toBe(
      'update of command cmd-1 of lease lease-1',
    );
  });
});
