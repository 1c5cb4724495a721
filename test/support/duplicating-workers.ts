/**
 * Concurrent workers over the SQS emulator that also inject duplicate deliveries, for the
 * contention tests: each received message is re-sent with probability `duplicateRate` before
 * it is processed, so the engine sees the at-least-once delivery SQS really gives. The random
 * source is passed in (seeded by the caller) so a failing run can be replayed; it is called
 * exactly once per received message, in receive order.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { localRegistry } from '../../lambdas/blueprints/registry.ts';
import { type Engine, type EngineSettings, makeEngine } from '../../lambdas/core/engine.ts';
import { type Store, systemClock } from '../../lambdas/core/ports.ts';
import { processUpdate } from '../../lambdas/core/use-cases.ts';
import { SqsWorkQueue } from '../../lambdas/queue/sqs-queue.ts';
import type { DynamoStore } from '../../lambdas/store/dynamo-store.ts';
import { QueuePump } from '../../lib/local/queue-pump.ts';
import { freshQueue, makeStore } from './env.ts';

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

/** Deterministic random numbers for the contention tests: the soak's (bench/lib). */
export { seeded } from '../../bench/lib/soak-settings.ts';

/**
 * An engine on a fresh table and a fresh SQS emulator queue (maxReceiveCount 10), with the
 * local registry and the real clock: what the contention tests race their workers on.
 */
export async function sqsEngine(
  name: string,
  settings: Partial<EngineSettings>,
  /** What the engine writes through, around the table's store (a recorder, say). */
  wrapStore: (store: DynamoStore) => Store = (store) => store,
): Promise<{ engine: Engine; store: DynamoStore; client: SQSClient; queueUrl: string }> {
  const store = await makeStore({ prefix: name });
  const { client, queueUrl } = await freshQueue(name, { maxReceiveCount: 10 });
  const engine = makeEngine({
    store: wrapStore(store),
    queue: new SqsWorkQueue({ client, queueUrl }),
    clock: systemClock,
    registry: localRegistry(),
    dataDir: mkdtempSync(join(tmpdir(), `drydock-${name}-`)),
    settings,
  });
  return { engine, store, client, queueUrl };
}
