/**
 * What the hot-path tests look at: which store methods an update calls (`countingStore`), and
 * one lease's message taken from the manual queue without disturbing the others (`takeFor`),
 * and a race injected right after one store call (`raceAfter`).
 */
import type { UpdateMessage } from '../../lambdas/core/model.ts';
import type { Store } from '../../lambdas/core/ports.ts';
import type { ManualQueue } from './manual-queue.ts';

/** The next message for `id`; the others keep their order. */
export function takeFor(queue: ManualQueue, id: string): UpdateMessage {
  // Others are held aside until it is found (put back at once, they would come first again).
  const others: UpdateMessage[] = [];
  try {
    for (let m = queue.take(); m; m = queue.take()) {
      if (m.id === id) return m;
      others.push(m);
    }
  } finally {
    for (const m of others) queue.redeliver(m);
  }
  throw new Error(`no message for ${id}`);
}

/** The store methods called through it, in order. */
export function countingStore(store: Store): { store: Store; calls: string[] } {
  const calls: string[] = [];
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls.push(String(prop));
        return value.apply(target, args);
      };
    },
  }) as Store;
  return { store: proxy, calls };
}

/** A store whose `method`, once, runs `meanwhile` right after answering (a race in between). */
export function raceAfter(
  store: Store,
  method: keyof Store,
  meanwhile: () => Promise<unknown>,
): Store {
  let done = false;
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      if (prop !== method) return value.bind(target);
      return async (...args: unknown[]) => {
        const answer = await value.apply(target, args);
        if (!done) {
          done = true;
          await meanwhile();
        }
        return answer;
      };
    },
  }) as Store;
}
