/**
 * The WorkQueue port on SQS, plus the parsing of "update X" messages at the edge.
 *
 * Delivery is at-least-once and messages carry no state the store does not have: a worker reads
 * the lease or resource fresh, so a duplicate or stale message costs one read, never a wrong
 * write. That is why a send that partly failed is simply retried as a whole.
 */
import {
  DeleteMessageCommand,
  ReceiveMessageCommand,
  type ReceiveMessageCommandOutput,
  SendMessageBatchCommand,
  type SendMessageBatchCommandOutput,
  type SendMessageBatchRequestEntry,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { z } from 'zod';
import { DrydockError, errorMessage, TemporaryError, ValidationError } from '../core/errors.ts';
import type { Lease, UpdateMessage } from '../core/model.ts';
import type { WorkQueue } from '../core/ports.ts';
import { formatZodIssues } from '../core/validation.ts';
import { isConnectionFault } from '../store/connection-faults.ts';

/** SQS limits: entries per SendMessageBatch, longest DelaySeconds. */
export const MAX_BATCH_ENTRIES = 10;
export const MAX_DELAY_SECONDS = 900;

export interface SqsWorkQueueOptions {
  /**
   * Must have an explicit `endpoint` when talking to an emulator whose queue URLs do not resolve
   * (fauxqs uses `*.localhost`); see lambdas/store/clients.ts.
   */
  client: SQSClient;
  queueUrl: string;
}

const THROTTLING = new Set(['ThrottlingException', 'RequestThrottled', 'KmsThrottled']);

function describeMessage(message: UpdateMessage): string {
  return `${message.kind} ${message.id}`;
}

/** SQS DelaySeconds: whole seconds, 0..900 (longer waits are re-sent by the worker). */
export function delaySecondsFor(message: UpdateMessage): number | undefined {
  if (message.delaySeconds === undefined) return undefined;
  return Math.max(0, Math.min(MAX_DELAY_SECONDS, Math.ceil(message.delaySeconds)));
}

export function toBatchEntry(message: UpdateMessage, id: string): SendMessageBatchRequestEntry {
  const { delaySeconds: _delay, ...body } = message;
  const delay = delaySecondsFor(message);
  return {
    Id: id,
    MessageBody: JSON.stringify(body),
    ...(delay === undefined ? {} : { DelaySeconds: delay }),
  };
}

export class SqsWorkQueue implements WorkQueue {
  private readonly client: SQSClient;
  readonly queueUrl: string;

  constructor(options: SqsWorkQueueOptions) {
    this.client = options.client;
    this.queueUrl = options.queueUrl;
  }

  async send(messages: UpdateMessage[]): Promise<void> {
    const batches: UpdateMessage[][] = [];
    for (let i = 0; i < messages.length; i += MAX_BATCH_ENTRIES) {
      batches.push(messages.slice(i, i + MAX_BATCH_ENTRIES));
    }
    const results = await Promise.allSettled(batches.map((batch) => this.sendBatch(batch)));
    const failed = results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
    if (failed.length === 1) throw failed[0];
    if (failed.length > 1) {
      throw new TemporaryError(
        `${failed.length} of ${batches.length} SQS batches failed: ${failed.map(errorMessage).join('; ')}`,
        { cause: failed[0] },
      );
    }
  }

  /** Sends up to ten messages; entries SQS rejects are retried once. */
  private async sendBatch(batch: UpdateMessage[]): Promise<void> {
    // Entry ids are positions: message ids need not be unique within a batch.
    let entries = batch.map((message, i) => toBatchEntry(message, `m${i}`));
    let failures: Array<{ id: string; reason: string }> = [];
    for (let attempt = 1; attempt <= 2 && entries.length > 0; attempt++) {
      let output: SendMessageBatchCommandOutput;
      try {
        output = await this.client.send(
          new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: entries }),
        );
      } catch (err) {
        throw translateSqsError(err, `send ${batch.map(describeMessage).join(', ')}`);
      }
      failures = (output.Failed ?? []).map((f) => ({
        id: f.Id ?? '?',
        reason: `${f.Code ?? 'error'}${f.SenderFault ? ' (sender fault)' : ''}: ${f.Message ?? ''}`,
      }));
      const failedIds = new Set(failures.map((f) => f.id));
      entries = entries.filter((entry) => failedIds.has(entry.Id ?? ''));
    }
    if (failures.length > 0) {
      const named = failures.map((f) => {
        const message = batch[Number(f.id.slice(1))];
        return `${message ? describeMessage(message) : f.id} (${f.reason})`;
      });
      throw new TemporaryError(`SQS rejected update messages after a retry: ${named.join('; ')}`, {
        context: { failed: named },
      });
    }
  }
}

export function translateSqsError(err: unknown, what: string): DrydockError {
  const name = (err as { name?: string })?.name ?? '';
  const status = (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
  if (THROTTLING.has(name) || (status ?? 0) >= 500 || isConnectionFault(err)) {
    return new TemporaryError(`SQS ${what} failed temporarily: ${errorMessage(err)}`, {
      cause: err,
    });
  }
  return new DrydockError('queue_failure', `SQS ${what} failed: ${errorMessage(err)}`, {
    cause: err,
  });
}

// ---- parsing at the edge ---------------------------------------------------------------------

/**
 * A lease carried in its own update message (UpdateMessage.lease: pending from the request,
 * released from the holder's release): the fields the update relies on are checked; the rest
 * passes through as the sender wrote it.
 */
const pendingLeaseSnapshot = z
  .looseObject({
    id: z.string().min(1),
    type: z.string().min(1),
    attributes: z.record(z.string(), z.string()),
    blueprintIds: z.array(z.string()).optional(),
    owner: z.string(),
    status: z.enum(['pending', 'released']),
    version: z.number().int().nonnegative(),
    slotLocks: z.array(z.string()),
    requestedAt: z.string(),
    updatedAt: z.string(),
    waitSeq: z.number().int().nonnegative(),
    requeues: z.number().int().nonnegative(),
  })
  .transform((lease) => lease as Lease);

const updateMessageSchema = z
  .object({
    kind: z.enum(['lease', 'resource', 'command', 'blueprint']),
    id: z.string().min(1),
    leaseId: z.string().min(1).optional(),
    waitSeq: z.number().int().nonnegative().optional(),
    attempt: z.number().int().nonnegative().optional(),
    reason: z.string().optional(),
    delaySeconds: z.number().nonnegative().optional(),
    wake: z.boolean().optional(),
    lease: pendingLeaseSnapshot.optional(),
  })
  .superRefine((message, ctx) => {
    if (
      message.lease !== undefined &&
      (message.kind !== 'lease' || message.lease.id !== message.id)
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['lease'],
        message: "a lease snapshot travels only in that lease's own update message",
      });
    }
    if (message.kind === 'command' && message.leaseId === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['leaseId'],
        message: 'a command message names the lease it runs on',
      });
    }
  });

/**
 * Parses an SQS body into an UpdateMessage. A malformed body throws ValidationError naming every
 * problem; the worker lets such a message go to the DLQ rather than retrying it.
 */
export function parseUpdateMessage(body: string): UpdateMessage {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (err) {
    throw new ValidationError(`update message is not JSON: ${errorMessage(err)}`, {
      cause: err,
      context: { body: body.slice(0, 200) },
    });
  }
  const parsed = updateMessageSchema.safeParse(json);
  if (!parsed.success) {
    throw new ValidationError(
      `invalid update message: ${formatZodIssues(parsed.error, { root: '(message)' })}`,
      {
        cause: parsed.error,
        context: { body: body.slice(0, 200) },
      },
    );
  }
  const { delaySeconds: _delay, ...message } = parsed.data;
  return message;
}

// ---- receiving (local workers and tests; Lambda gets its messages from the event) -----------

export interface ReceivedUpdate {
  messageId: string;
  receiptHandle: string;
  body: string;
  /** ApproximateReceiveCount: 1 on first delivery. */
  receiveCount: number;
  /** The parsed message, or undefined when the body is malformed (then `error` says why). */
  message?: UpdateMessage;
  error?: ValidationError;
}

export interface ReceiveOptions {
  /** 1..10 (an SQS limit). @default 10 */
  max?: number;
  /** Long-poll wait, 0..20. @default 0 */
  waitSeconds?: number;
  /** Override the queue's visibility timeout for these messages. */
  visibilityTimeout?: number;
}

export async function receiveUpdates(
  client: SQSClient,
  queueUrl: string,
  options: ReceiveOptions = {},
): Promise<ReceivedUpdate[]> {
  const { max = 10, waitSeconds = 0, visibilityTimeout } = options;
  let output: ReceiveMessageCommandOutput;
  try {
    output = await client.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: Math.max(1, Math.min(MAX_BATCH_ENTRIES, max)),
        WaitTimeSeconds: waitSeconds,
        ...(visibilityTimeout === undefined ? {} : { VisibilityTimeout: visibilityTimeout }),
        MessageSystemAttributeNames: ['ApproximateReceiveCount'],
      }),
    );
  } catch (err) {
    throw translateSqsError(err, `receive from ${queueUrl}`);
  }
  return (output.Messages ?? []).map((m) => {
    const body = m.Body ?? '';
    const received: ReceivedUpdate = {
      messageId: m.MessageId ?? '',
      receiptHandle: m.ReceiptHandle ?? '',
      body,
      receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? 1),
    };
    try {
      received.message = parseUpdateMessage(body);
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      received.error = err;
    }
    return received;
  });
}

/** Acknowledges a processed message. */
export async function deleteUpdate(
  client: SQSClient,
  queueUrl: string,
  receiptHandle: string,
): Promise<void> {
  try {
    await client.send(
      new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: receiptHandle }),
    );
  } catch (err) {
    throw translateSqsError(err, `delete from ${queueUrl}`);
  }
}
