/**
 * Pulls update messages from an SQS queue (the emulator locally) with N concurrent workers and
 * hands each batch to a handler — what the Lambda event source mapping does on AWS. A message
 * is deleted only after its handler succeeded for it; a failed one becomes visible again after
 * the visibility timeout and is redelivered (and lands in the DLQ after maxReceiveCount).
 */
import type { SQSClient } from '@aws-sdk/client-sqs';
import {
  deleteUpdate,
  type ReceivedUpdate,
  receiveUpdates,
} from '../../lambdas/queue/sqs-queue.ts';

export interface QueuePumpOptions {
  client: SQSClient;
  queueUrl: string;
  /** Concurrent receive/handle loops. @default 4 */
  workers?: number;
  /** Messages per receive (1..10). @default 10 */
  batchSize?: number;
  /** Long-poll wait per receive; bounds how long stop() takes. @default 1 */
  waitSeconds?: number;
  /**
   * Handles one batch; returns the messageIds that failed (they are not deleted and will be
   * redelivered), like a Lambda's `batchItemFailures`.
   */
  handle: (batch: ReceivedUpdate[]) => Promise<{ failedMessageIds: string[] }>;
  /** Called with errors the pump itself hit (receive/delete/handler throw). */
  onError?: (err: unknown) => void;
}

export class QueuePump {
  readonly #options: Required<Omit<QueuePumpOptions, 'onError'>> &
    Pick<QueuePumpOptions, 'onError'>;
  #running = false;
  #loops: Promise<void>[] = [];
  /** Batches handled and messages acknowledged, for progress output and tests. */
  handled = 0;
  acknowledged = 0;

  constructor(options: QueuePumpOptions) {
    this.#options = { workers: 4, batchSize: 10, waitSeconds: 1, ...options };
    if (this.#options.workers < 1)
      throw new Error(`workers must be at least 1, got ${this.#options.workers}`);
  }

  start(): this {
    if (this.#running) return this;
    this.#running = true;
    this.#loops = Array.from({ length: this.#options.workers }, () => this.#loop());
    return this;
  }

  /** Stop receiving; resolves when every in-flight batch has finished. */
  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
    this.#loops = [];
  }

  async #loop(): Promise<void> {
    const { client, queueUrl, batchSize, waitSeconds, handle, onError } = this.#options;
    while (this.#running) {
      try {
        const batch = await receiveUpdates(client, queueUrl, { max: batchSize, waitSeconds });
        if (batch.length === 0) continue;
        const { failedMessageIds } = await handle(batch);
        this.handled++;
        const failed = new Set(failedMessageIds);
        await Promise.all(
          batch
            .filter((m) => !failed.has(m.messageId))
            .map(async (m) => {
              await deleteUpdate(client, queueUrl, m.receiptHandle);
              this.acknowledged++;
            }),
        );
      } catch (err) {
        onError?.(err);
        // A failing receive (emulator restarting) must not spin: back off briefly.
        if (this.#running) await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  }
}
