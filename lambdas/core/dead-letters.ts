/**
 * The dead-letter queue, for operators: what Drydock gave up on (an update the worker failed
 * on maxReceiveCount times, a message it could not read) and how to put it back once the cause
 * is fixed. Admin only: message bodies name leases and resources of every principal.
 *
 * The port is implemented on SQS (lambdas/queue/sqs-dead-letters.ts): StartMessageMoveTask on
 * AWS, receive + send + delete where the emulator lacks it (the local runtime).
 */
import { type Caller, requireAdmin } from './access.ts';
import type { Engine } from './engine.ts';
import { DrydockError } from './errors.ts';

export interface DeadLetter {
  messageId: string;
  /** When it was first sent to the work queue (SQS SentTimestamp). */
  sentAt?: string;
  /** Deliveries so far, the ones that failed on the work queue included. */
  receiveCount: number;
  /** What it was about, for people: `lease lease-abc (requested)`, `EC2 event ...`. */
  about: string;
  /** The body as queued (clipped to 2 KB). */
  body: string;
}

export interface DeadLetterPeek {
  /** At most the asked-for number; SQS may return fewer than are there. */
  messages: DeadLetter[];
  /** ApproximateNumberOfMessages of the dead-letter queue. */
  approximateCount: number;
}

export type RedriveStarted =
  /** AWS: a move task was started; it moves the messages in the background. */
  | { mode: 'move-task'; taskHandle: string; approximateCount: number }
  /** Emulator: the messages were moved one by one before this answered. */
  | { mode: 'moved'; moved: number };

export interface DeadLetterQueue {
  /** Look at up to `max` messages without taking them out of the queue. */
  peek(max: number): Promise<DeadLetterPeek>;
  /** Move every message back to the work queue it came from. */
  redrive(): Promise<RedriveStarted>;
}

export const MAX_DEAD_LETTERS_LISTED = 100;

export async function listDeadLetters(
  engine: Engine,
  caller: Caller,
  limit = MAX_DEAD_LETTERS_LISTED,
): Promise<DeadLetterPeek> {
  requireAdmin(caller, 'reading the dead-letter queue');
  return deadLettersOf(engine).peek(Math.min(limit, MAX_DEAD_LETTERS_LISTED));
}

export async function redriveDeadLetters(engine: Engine, caller: Caller): Promise<RedriveStarted> {
  requireAdmin(caller, 'redriving the dead-letter queue');
  return deadLettersOf(engine).redrive();
}

function deadLettersOf(engine: Engine): DeadLetterQueue {
  if (!engine.deadLetters) {
    throw new DrydockError(
      'misconfigured',
      'this deployment has no dead-letter queue configured (DEAD_LETTER_QUEUE_URL); redeploy the stack',
    );
  }
  return engine.deadLetters;
}
