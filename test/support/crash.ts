/**
 * Crash injection for the crash tests: wraps the real store and queue and throws InjectedCrash
 * right *after* the N-th write has taken effect — the worst moment, when the write is durable
 * but nothing after it ran. Reads pass through untouched. Which methods write is decided in
 * lambdas/core/store-methods.ts (a typed table: a new Store method must be classified there).
 */
import { InjectedCrash } from '../../lambdas/core/errors.ts';
import type { Store, TxWrite, WorkQueue } from '../../lambdas/core/ports.ts';
import { STORE_WRITE_METHODS } from '../../lambdas/core/store-methods.ts';

/** From the one typed table: a new write method is crashed like the others. */
const STORE_WRITES = STORE_WRITE_METHODS;

export class CrashPlan {
  /** Writes that took effect so far (a write that failed its condition changed nothing). */
  writes = 0;
  /** Crash after this write (1-based); 0 = never. */
  crashAfter = 0;
  /** What each write was, for naming the crash point in failures. */
  readonly log: string[] = [];
  crashed = false;
  /**
   * After the crash the "process" is dead: every further write of that delivery throws too,
   * so a catch block around a plug-in call cannot carry on as if the crash were a failure.
   * The redelivery revives it.
   */
  dead = false;

  revive(): void {
    this.dead = false;
  }

  before(): void {
    if (this.dead) throw new InjectedCrash('process already dead');
  }

  after(label: string): void {
    this.writes++;
    this.log.push(label);
    if (this.crashAfter > 0 && this.writes === this.crashAfter && !this.crashed) {
      this.crashed = true;
      this.dead = true;
      throw new InjectedCrash(`write ${this.writes} (${label})`);
    }
  }
}

/**
 * `transact[<ops>]`, then the types of the log lines it appends (`lease.requeued`), so a
 * scenario can name the transition it must cross; `appendRecord[<event>]` for a plug-in's
 * record (a synthetic host `created`, a command `started`).
 */
function describeWrite(method: string, args: unknown[]): string {
  if (method === 'transact') {
    const writes = args[0] as TxWrite[];
    const logTypes = writes.flatMap((w) => (w.op === 'appendLog' ? [w.event.type] : []));
    return `transact[${writes.map((w) => w.op).join(',')}] ${logTypes.join(',')}`.trimEnd();
  }
  if (method === 'appendRecord') {
    const event = (args[1] as { event?: unknown } | undefined)?.event;
    return `appendRecord[${typeof event === 'string' ? event : String(args[0])}]`;
  }
  return method;
}

export function crashingStore(store: Store, plan: CrashPlan): Store {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      if (!STORE_WRITES.has(prop as keyof Store)) return value.bind(target);
      return async (...args: unknown[]) => {
        plan.before();
        const result = await value.apply(target, args);
        plan.after(describeWrite(String(prop), args));
        return result;
      };
    },
  });
}

export function crashingQueue(queue: WorkQueue, plan: CrashPlan): WorkQueue {
  return {
    async send(messages) {
      plan.before();
      await queue.send(messages);
      plan.after(`send[${messages.map((m) => `${m.kind}:${m.reason ?? ''}`).join(',')}]`);
    },
  };
}
