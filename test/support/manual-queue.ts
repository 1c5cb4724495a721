/**
 * A deterministic work queue for engine tests: messages are delivered one at a time in due
 * order on a virtual clock (delays jump the clock forward instead of sleeping). A message
 * whose update throws is delivered again, as SQS would after its visibility timeout. The store
 * underneath is always the real one (DynamoDB Local); only the delivery order is scripted.
 */
import type { Engine } from '../../lambdas/core/engine.ts';
import type { UpdateMessage } from '../../lambdas/core/model.ts';
import type { Clock, WorkQueue } from '../../lambdas/core/ports.ts';
import { processUpdate } from '../../lambdas/core/use-cases.ts';

/** Real time plus an offset that tests move forward. */
export class TestClock implements Clock {
  offsetMs = 0;
  now(): number {
    return Date.now() + this.offsetMs;
  }
  advance(ms: number): void {
    this.offsetMs += ms;
  }
}

interface Queued {
  msg: UpdateMessage;
  dueAt: number;
  seq: number;
}

export class ManualQueue implements WorkQueue {
  readonly clock: TestClock;
  readonly sent: UpdateMessage[] = [];
  readonly delivered: UpdateMessage[] = [];
  #items: Queued[] = [];
  #seq = 0;
  #dropRules: Array<(m: UpdateMessage) => boolean> = [];

  constructor(clock: TestClock) {
    this.clock = clock;
  }

  async send(messages: UpdateMessage[]): Promise<void> {
    for (const msg of messages) {
      this.sent.push(msg);
      const drop = this.#dropRules.findIndex((rule) => rule(msg));
      if (drop >= 0) {
        this.#dropRules.splice(drop, 1); // each rule drops one message on the floor
        continue;
      }
      this.#items.push({
        msg,
        dueAt: this.clock.now() + (msg.delaySeconds ?? 0) * 1000,
        seq: this.#seq++,
      });
    }
  }

  /** Lose the next message matching `rule` (a lost message, for the sweep to recover). */
  dropNext(rule: (m: UpdateMessage) => boolean): void {
    this.#dropRules.push(rule);
  }

  get size(): number {
    return this.#items.length;
  }

  /** Take the next message, jumping the clock to its due time if it is delayed. */
  take(): UpdateMessage | undefined {
    if (this.#items.length === 0) return undefined;
    this.#items.sort((a, b) => a.dueAt - b.dueAt || a.seq - b.seq);
    const next = this.#items.shift()!;
    const wait = next.dueAt - this.clock.now();
    if (wait > 0) this.clock.advance(wait);
    return next.msg;
  }

  /** Put a message back (redelivery after a crash). */
  redeliver(msg: UpdateMessage): void {
    this.#items.push({ msg, dueAt: this.clock.now(), seq: this.#seq++ });
  }

  /**
   * Deliver messages until the queue is empty or `until` holds. Throws if it takes more than
   * maxSteps deliveries (a livelock is a test failure, not a hang).
   */
  async drain(
    engine: Engine,
    options: {
      maxSteps?: number;
      until?: () => Promise<boolean>;
      onError?: (err: unknown, msg: UpdateMessage) => 'redeliver' | 'throw';
    } = {},
  ): Promise<number> {
    const maxSteps = options.maxSteps ?? 500;
    let steps = 0;
    while (this.size > 0) {
      if (options.until && (await options.until())) return steps;
      if (++steps > maxSteps) {
        throw new Error(
          `queue did not drain within ${maxSteps} deliveries; ${this.size} left: ${JSON.stringify(this.#items.slice(0, 5).map((i) => i.msg))}`,
        );
      }
      const msg = this.take()!;
      this.delivered.push(msg);
      try {
        await processUpdate(engine, msg);
      } catch (err) {
        const decision = options.onError?.(err, msg) ?? 'throw';
        if (decision === 'throw') throw err;
        this.redeliver(msg);
      }
    }
    return steps;
  }
}
