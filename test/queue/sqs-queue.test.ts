/**
 * The SQS adapter on fauxqs: message shape, delays, batching, malformed bodies and the DLQ.
 */
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../lambdas/core/errors.ts';
import type { UpdateMessage } from '../../lambdas/core/model.ts';
import {
  deleteUpdate,
  parseUpdateMessage,
  type ReceivedUpdate,
  receiveUpdates,
  SqsWorkQueue,
} from '../../lambdas/queue/sqs-queue.ts';
import { type FreshQueue, freshQueue, waitFor } from '../support/env.ts';

async function drain(queue: FreshQueue, url: string, expected: number): Promise<ReceivedUpdate[]> {
  const received: ReceivedUpdate[] = [];
  await waitFor(
    async () => {
      const batch = await receiveUpdates(queue.client, url, { max: 10 });
      for (const m of batch) await deleteUpdate(queue.client, url, m.receiptHandle);
      received.push(...batch);
      return received.length >= expected;
    },
    { timeoutMs: 10_000, message: `${expected} messages on ${url}` },
  );
  return received;
}

async function visibleCount(queue: FreshQueue, url: string): Promise<number> {
  const out = await queue.client.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: ['ApproximateNumberOfMessages'],
    }),
  );
  return Number(out.Attributes?.ApproximateNumberOfMessages ?? 0);
}

describe('SqsWorkQueue', () => {
  it('round-trips every field except delaySeconds', async () => {
    const queue = await freshQueue('roundtrip');
    const work = new SqsWorkQueue({ client: queue.client, queueUrl: queue.queueUrl });
    const message: UpdateMessage = {
      kind: 'lease',
      id: 'L1',
      waitSeq: 3,
      attempt: 2,
      reason: 'wake: resource R1 active',
      delaySeconds: 0,
    };
    await work.send([message, { kind: 'resource', id: 'R1' }]);
    const received = await drain(queue, queue.queueUrl, 2);
    const byId = Object.fromEntries(received.map((r) => [r.message?.id, r]));
    expect(byId.L1?.message).toEqual({
      kind: 'lease',
      id: 'L1',
      waitSeq: 3,
      attempt: 2,
      reason: 'wake: resource R1 active',
    });
    expect(JSON.parse(byId.L1?.body ?? '{}')).not.toHaveProperty('delaySeconds');
    expect(byId.R1?.message).toEqual({ kind: 'resource', id: 'R1' });
    expect(byId.R1?.receiveCount).toBe(1);
  });

  it('honours DelaySeconds: the message stays invisible until the delay passes', async () => {
    const queue = await freshQueue('delay');
    const work = new SqsWorkQueue({ client: queue.client, queueUrl: queue.queueUrl });
    const sentAt = Date.now();
    await work.send([{ kind: 'lease', id: 'later', delaySeconds: 1.2 }]); // rounds up to 2 s
    expect(await receiveUpdates(queue.client, queue.queueUrl)).toEqual([]);
    const [received] = await waitFor(
      async () => {
        const batch = await receiveUpdates(queue.client, queue.queueUrl);
        return batch.length > 0 ? batch : undefined;
      },
      { timeoutMs: 8_000, intervalMs: 100, message: 'the delayed message' },
    );
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(1_900);
    expect(received?.message).toEqual({ kind: 'lease', id: 'later' });
  });

  it('sends more than ten messages in batches of ten', async () => {
    const queue = await freshQueue('batch');
    const work = new SqsWorkQueue({ client: queue.client, queueUrl: queue.queueUrl });
    let batches = 0;
    queue.client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'SendMessageBatchCommand') {
          batches += 1;
          expect((args.input as { Entries: unknown[] }).Entries.length).toBeLessThanOrEqual(10);
        }
        return next(args);
      },
      { step: 'initialize', name: 'countBatches' },
    );
    // Duplicate ids in one batch are fine: entry ids are positions.
    const messages = Array.from(
      { length: 23 },
      (_, i): UpdateMessage => ({
        kind: 'lease',
        id: `L${i % 20}`,
      }),
    );
    await work.send(messages);
    expect(batches).toBe(3);
    const received = await drain(queue, queue.queueUrl, 23);
    expect(received.map((r) => r.message?.id).sort()).toEqual(messages.map((m) => m.id).sort());
  });

  it('moves a message to the DLQ after maxReceiveCount receives', async () => {
    const queue = await freshQueue('redrive', { maxReceiveCount: 2 });
    await new SqsWorkQueue({ client: queue.client, queueUrl: queue.queueUrl }).send([
      { kind: 'lease', id: 'poison' },
    ]);
    const counts: number[] = [];
    // Receive without deleting, visible again at once, until SQS gives up on it.
    await waitFor(
      async () => {
        const batch = await receiveUpdates(queue.client, queue.queueUrl, { visibilityTimeout: 0 });
        counts.push(...batch.map((m) => m.receiveCount));
        return (await visibleCount(queue, queue.dlqUrl)) === 1;
      },
      { timeoutMs: 10_000, message: 'the message in the DLQ' },
    );
    expect(counts).toEqual([1, 2]);
    const [dead] = await drain(queue, queue.dlqUrl, 1);
    expect(dead?.message).toEqual({ kind: 'lease', id: 'poison' });
    expect(await receiveUpdates(queue.client, queue.queueUrl)).toEqual([]);
  });
});

describe('parseUpdateMessage', () => {
  it('accepts a valid body and drops delaySeconds', () => {
    expect(parseUpdateMessage('{"kind":"resource","id":"R1","delaySeconds":5,"extra":1}')).toEqual({
      kind: 'resource',
      id: 'R1',
    });
  });

  it("accepts a warm pool top-up: 'update blueprint B'", () => {
    expect(
      parseUpdateMessage('{"kind":"blueprint","id":"pool","reason":"top up warm pool: sweep"}'),
    ).toEqual({ kind: 'blueprint', id: 'pool', reason: 'top up warm pool: sweep' });
  });

  it.each([
    ['not json', 'not JSON'],
    ['[]', 'invalid update message'],
    ['{"kind":"host","id":""}', 'kind'],
    ['{"kind":"lease","id":"L1","waitSeq":-1}', 'waitSeq'],
    ['{"kind":"lease"}', 'id'],
  ])('rejects %s with a ValidationError', (body, mentions) => {
    let error: unknown;
    try {
      parseUpdateMessage(body);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as Error).message).toContain(mentions);
  });

  it('reports every problem in one message', () => {
    expect(() => parseUpdateMessage('{"kind":"x","attempt":"1"}')).toThrow(
      /kind: .*; id: .*; attempt: /,
    );
  });

  it('hands malformed bodies to the receiver as errors instead of throwing', async () => {
    const queue = await freshQueue('malformed');
    const { SendMessageCommand } = await import('@aws-sdk/client-sqs');
    await queue.client.send(
      new SendMessageCommand({ QueueUrl: queue.queueUrl, MessageBody: '{oops' }),
    );
    const [received] = await drain(queue, queue.queueUrl, 1);
    expect(received?.message).toBeUndefined();
    expect(received?.error).toBeInstanceOf(ValidationError);
  });
});
