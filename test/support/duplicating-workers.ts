/**
 * Concurrent workers over the SQS emulator that also inject duplicate deliveries, for the
 * contention tests: each received message is re-sent with probability `duplicateRate` before
 * it is processed, so the engine sees the at-least-once delivery SQS really gives. The random
 * source is passed in (seeded by the caller) so a failing run can be replayed; it is called
 * exactly once per received message, in receive order.
 */
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Engine } from '../../lambdas/core/engine.ts';
import { processUpdate } from '../../lambdas/core/use-cases.ts';
import { QueuePump } from '../../lib/local/queue-pump.ts';

export interface DuplicatingWorkersOptions {
  client: SQSClient;
  queueUrl: string;
  engine: Engine;
  workers: number;
  /** Probability (0..1) that a received message is sent again before it is processed. */
  duplicateRate: number;
  /** Uniform numbers in [0, 1); seeded by the test so failures replay. */
  random: () => number;
}

export interface DuplicatingWorkers {
  pump: QueuePump;
  /** Every error an update or the pump itself hit; a passing run leaves it empty. */
  failures: unknown[];
  /** How many duplicate deliveries were injected so far. */
  duplicates(): number;
  /** Stop receiving; resolves when every in-flight batch has finished. */
  stop(): Promise<void>;
}

/** Starts the workers at once; call stop() (in a finally) to end them. */
export function startDuplicatingWorkers(options: DuplicatingWorkersOptions): DuplicatingWorkers {
  const { client, queueUrl, engine, workers, duplicateRate, random } = options;
  const failures: unknown[] = [];
  let duplicates = 0;
  const pump = new QueuePump({
    client,
    queueUrl,
    workers,
    batchSize: 1,
    handle: async (batch) => {
      const failed: string[] = [];
      for (const received of batch) {
        if (random() < duplicateRate) {
          duplicates++;
          await client.send(
            new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: received.body }),
          );
        }
        try {
          await processUpdate(engine, received.message!);
        } catch (err) {
          failures.push(err);
          failed.push(received.messageId);
        }
      }
      return { failedMessageIds: failed };
    },
    onError: (err) => failures.push(err),
  }).start();
  return { pump, failures, duplicates: () => duplicates, stop: () => pump.stop() };
}
