/**
 * The stand-ins for what invokes the worker and the sweep on AWS: the SQS event source mapping
 * (long-poll receivers handing each batch to the worker handler as an SQS event, deleting what
 * it did not report as failed) and the EventBridge schedule (a timer invoking the sweep).
 *
 * A batch is handled as one Lambda invocation and nothing here assumes it takes long: work
 * that waits (a lease backing off, a command being polled) is a message sent again with a
 * delay, picked up by whichever receiver gets it.
 */
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Context, ScheduledEvent, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { lambdaContext, scheduledEvent, sqsEvent } from './lambda-events.ts';
import { errorText } from './process.ts';
import { QueuePump } from './queue-pump.ts';

type Handler<E, R> = (event: E, context: Context) => Promise<R>;

export interface QueueWorkersOptions {
  client: SQSClient;
  queueUrl: string;
  queueArn: string;
  /** Concurrent receivers. */
  workers: number;
  /**
   * The function timeout, as Lambda enforces it: a batch still running then counts as failed
   * (redelivered) and its result is ignored. @default 60
   */
  timeoutSeconds?: number;
  worker: Handler<SQSEvent, SQSBatchResponse | undefined>;
  warn: (message: string) => void;
}

export interface Stoppable {
  /** Resolves once the work under way has finished. */
  stop(): Promise<void>;
}

/** Starts the receivers; stop() ends them after their batch in hand. */
export function startQueueWorkers(options: QueueWorkersOptions): Stoppable {
  const { worker, queueArn, warn } = options;
  let stopping = false;
  const pump = new QueuePump({
    client: options.client,
    queueUrl: options.queueUrl,
    workers: options.workers,
    batchSize: 10,
    waitSeconds: 1,
    handle: async (batch) => {
      const timeoutMs = (options.timeoutSeconds ?? 60) * 1000;
      try {
        // The handler rejects at the context's deadline (middy's early timeout), as Lambda stops
        // a function at its timeout: the batch is redelivered and a step that needs longer
        // fails here too.
        const result = await worker(sqsEvent(batch, queueArn), lambdaContext('worker', timeoutMs));
        return {
          failedMessageIds: (result?.batchItemFailures ?? []).map((f) => f.itemIdentifier),
        };
      } catch (err) {
        // What Lambda does when the function throws: the whole batch is redelivered.
        const why =
          (err as Error)?.name === 'TimeoutError'
            ? `it ran past its ${timeoutMs / 1000}s timeout (Lambda would stop it)`
            : errorText(err);
        warn(
          `drydock: worker failed on a batch of ${batch.length}, leaving it for redelivery: ${why}`,
        );
        return { failedMessageIds: batch.map((m) => m.messageId) };
      }
    },
    onError: (err) => {
      if (!stopping) warn(`drydock: queue worker: ${errorText(err)}`);
    },
  }).start();
  return {
    stop: () => {
      stopping = true;
      return pump.stop();
    },
  };
}

export interface SweepScheduleOptions {
  sweep: Handler<ScheduledEvent, unknown>;
  intervalMs: number;
  warn: (message: string) => void;
}

export interface SweepSchedule extends Stoppable {
  /** Runs a sweep now (or waits for the one running); never rejects. */
  runNow(): Promise<void>;
}

/** Invokes the sweep every `intervalMs` (never two at once); the first tick is the caller's. */
export function startSweepSchedule(options: SweepScheduleOptions): SweepSchedule {
  const { sweep, warn } = options;
  let sweeping: Promise<void> | undefined;
  const runNow = (): Promise<void> => {
    sweeping ??= (async () => {
      try {
        await sweep(scheduledEvent('local-sweep'), lambdaContext('sweep', 50_000));
      } catch (err) {
        warn(`drydock: sweep failed (the next one retries): ${errorText(err)}`);
      } finally {
        sweeping = undefined;
      }
    })();
    return sweeping;
  };
  const timer = setInterval(() => void runNow(), options.intervalMs);
  timer.unref();
  return {
    runNow,
    stop: async () => {
      clearInterval(timer);
      await sweeping;
    },
  };
}
