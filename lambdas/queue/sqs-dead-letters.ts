/**
 * The dead-letter queue port (lambdas/core/dead-letters.ts) on SQS.
 *
 * Peeking: SQS has no "read without receiving". A peek receives (long poll of 1 s, so an empty
 * queue answers empty rather than SQS sampling a few servers), which hides each message for
 * PEEK_VISIBILITY_SECONDS and adds one to its ApproximateReceiveCount; once the listing is read
 * the messages are made visible again at once (ChangeMessageVisibility 0). If this process dies
 * in between, they reappear by themselves after PEEK_VISIBILITY_SECONDS. Nothing is deleted, and
 * the dead-letter queue has no redrive policy of its own, so the extra receive is harmless.
 *
 * Redrive: on AWS StartMessageMoveTask moves everything back to the queue it came from, in the
 * background (the API answers with the task's handle). The SQS emulator of the local runtime
 * (fauxqs) has no move tasks, so there the messages are moved one by one: receive, send the same
 * body to the work queue, delete. A crash between send and delete leaves a copy in both queues,
 * which is harmless: an update message is only "look at X again" (at-least-once is the rule).
 */
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
  StartMessageMoveTaskCommand,
} from '@aws-sdk/client-sqs';
import type {
  DeadLetter,
  DeadLetterPeek,
  DeadLetterQueue,
  RedriveStarted,
} from '../core/dead-letters.ts';
import { errorMessage } from '../core/errors.ts';
import { MAX_BATCH_ENTRIES, parseUpdateMessage, translateSqsError } from './sqs-queue.ts';

/** How long a peeked message stays hidden if it is not made visible again (a crash). */
export const PEEK_VISIBILITY_SECONDS = 30;
/** Messages moved one by one per redrive call (the emulator path); call again for more. */
export const MAX_MOVED_PER_REDRIVE = 1000;
const MAX_BODY = 2048;

export interface SqsDeadLetterQueueOptions {
  client: SQSClient;
  /** The dead-letter queue. */
  queueUrl: string;
  /** The work queue its messages came from (where the one-by-one redrive sends them). */
  sourceQueueUrl: string;
  /**
   * `move-task`: StartMessageMoveTask (AWS). `one-by-one`: receive, send, delete (emulators
   * without move tasks). @default 'move-task'
   */
  redrive?: 'move-task' | 'one-by-one';
}

export class SqsDeadLetterQueue implements DeadLetterQueue {
  readonly #client: SQSClient;
  readonly #queueUrl: string;
  readonly #sourceQueueUrl: string;
  readonly #mode: 'move-task' | 'one-by-one';

  constructor(options: SqsDeadLetterQueueOptions) {
    this.#client = options.client;
    this.#queueUrl = options.queueUrl;
    this.#sourceQueueUrl = options.sourceQueueUrl;
    this.#mode = options.redrive ?? 'move-task';
  }

  async peek(max: number): Promise<DeadLetterPeek> {
    const approximateCount = Number(
      (await this.#attributes(['ApproximateNumberOfMessages'])).ApproximateNumberOfMessages ?? 0,
    );
    const seen = new Map<string, DeadLetter>();
    const handles: string[] = [];
    try {
      while (seen.size < max) {
        const batch = await this.#receive(
          Math.min(MAX_BATCH_ENTRIES, max - seen.size),
          PEEK_VISIBILITY_SECONDS,
        );
        const fresh = batch.filter((m) => m.MessageId && !seen.has(m.MessageId));
        for (const m of batch) if (m.ReceiptHandle) handles.push(m.ReceiptHandle);
        if (fresh.length === 0) break;
        for (const m of fresh) seen.set(m.MessageId as string, deadLetterOf(m));
      }
    } finally {
      await this.#makeVisible(handles);
    }
    return { messages: [...seen.values()], approximateCount };
  }

  async redrive(): Promise<RedriveStarted> {
    if (this.#mode === 'one-by-one') return { mode: 'moved', moved: await this.#moveOneByOne() };
    const attributes = await this.#attributes(['QueueArn', 'ApproximateNumberOfMessages']);
    try {
      const started = await this.#client.send(
        new StartMessageMoveTaskCommand({ SourceArn: attributes.QueueArn }),
      );
      return {
        mode: 'move-task',
        taskHandle: started.TaskHandle ?? '',
        approximateCount: Number(attributes.ApproximateNumberOfMessages ?? 0),
      };
    } catch (err) {
      throw translateSqsError(err, 'start a message move task from the dead-letter queue');
    }
  }

  async #moveOneByOne(): Promise<number> {
    let moved = 0;
    while (moved < MAX_MOVED_PER_REDRIVE) {
      const batch = await this.#receive(MAX_BATCH_ENTRIES, PEEK_VISIBILITY_SECONDS);
      if (batch.length === 0) break;
      for (const m of batch) {
        try {
          await this.#client.send(
            new SendMessageCommand({ QueueUrl: this.#sourceQueueUrl, MessageBody: m.Body ?? '' }),
          );
          await this.#client.send(
            new DeleteMessageCommand({ QueueUrl: this.#queueUrl, ReceiptHandle: m.ReceiptHandle }),
          );
        } catch (err) {
          throw translateSqsError(err, `move message ${m.MessageId} back to the work queue`);
        }
        moved++;
      }
    }
    return moved;
  }

  async #receive(max: number, visibilityTimeout: number): Promise<Message[]> {
    try {
      const output = await this.#client.send(
        new ReceiveMessageCommand({
          QueueUrl: this.#queueUrl,
          MaxNumberOfMessages: max,
          WaitTimeSeconds: 1,
          VisibilityTimeout: visibilityTimeout,
          MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'],
        }),
      );
      return output.Messages ?? [];
    } catch (err) {
      throw translateSqsError(err, 'receive from the dead-letter queue');
    }
  }

  async #makeVisible(handles: string[]): Promise<void> {
    for (let i = 0; i < handles.length; i += MAX_BATCH_ENTRIES) {
      const entries = handles.slice(i, i + MAX_BATCH_ENTRIES).map((handle, n) => ({
        Id: `m${n}`,
        ReceiptHandle: handle,
        VisibilityTimeout: 0,
      }));
      try {
        await this.#client.send(
          new ChangeMessageVisibilityBatchCommand({ QueueUrl: this.#queueUrl, Entries: entries }),
        );
      } catch {
        // They become visible by themselves after PEEK_VISIBILITY_SECONDS.
      }
    }
  }

  async #attributes(names: Array<'QueueArn' | 'ApproximateNumberOfMessages'>) {
    try {
      const output = await this.#client.send(
        new GetQueueAttributesCommand({ QueueUrl: this.#queueUrl, AttributeNames: names }),
      );
      return output.Attributes ?? {};
    } catch (err) {
      throw translateSqsError(err, 'read the dead-letter queue attributes');
    }
  }
}

function deadLetterOf(m: Message): DeadLetter {
  const body = m.Body ?? '';
  const sent = Number(m.Attributes?.SentTimestamp);
  return {
    messageId: m.MessageId ?? '',
    ...(Number.isFinite(sent) && sent > 0 ? { sentAt: new Date(sent).toISOString() } : {}),
    receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? 1),
    about: describeBody(body),
    body: body.length > MAX_BODY ? `${body.slice(0, MAX_BODY - 1)}…` : body,
  };
}

/** What a dead-lettered body was about: an update of a lease, resource or command, or an event. */
export function describeBody(body: string): string {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return 'unreadable: not JSON';
  }
  if (typeof json === 'object' && json !== null && 'detail-type' in json) {
    const event = json as { 'detail-type'?: unknown; detail?: { 'instance-id'?: unknown } };
    return `EventBridge event '${String(event['detail-type'])}'${
      typeof event.detail?.['instance-id'] === 'string' ? ` for ${event.detail['instance-id']}` : ''
    }`;
  }
  try {
    const message = parseUpdateMessage(body);
    const of = message.kind === 'command' ? ` of lease ${message.leaseId}` : '';
    return `update of ${message.kind} ${message.id}${of}${message.reason ? ` (${message.reason})` : ''}`;
  } catch (err) {
    return `unreadable: ${errorMessage(err)}`;
  }
}
