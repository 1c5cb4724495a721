/**
 * The soak's fault injectors, all counted by kind:
 *  - the DynamoDB client of the workers throws ThrottlingException and TransactionConflict
 *    (a TransactionCanceledException naming TransactionConflict) before a request is sent, at
 *    a rate: what DynamoDB answers under a hot partition or a racing transaction;
 *  - a worker "crashes" right after a random write of a delivery (test/support/crash.ts's
 *    CrashPlan, one per delivery through AsyncLocalStorage, since deliveries run concurrently
 *    on one store): the message is redelivered;
 *  - deliveries are duplicated, reordered (re-sent with a delay, the original dropped) or lost
 *    (acknowledged unprocessed: only the sweep can recover the work).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { InjectedCrash } from '../../lambdas/core/errors.ts';
import type { Store } from '../../lambdas/core/ports.ts';
import { STORE_WRITE_METHODS } from '../../lambdas/core/store-methods.ts';

export const FAULT_KINDS = [
  'duplicate',
  'reorder',
  'lost',
  'crash',
  'throttle',
  'conflict',
  'vanish',
  'activation-failed',
  'blueprint-toggled',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export type FaultCounts = Record<FaultKind, number>;

export function noFaults(): FaultCounts {
  return Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as FaultCounts;
}

/** Throttling and transaction conflicts from the client, at `rate` each, before sending. */
export function injectDynamoFaults(
  client: DynamoDBClient,
  rate: number,
  random: () => number,
  counts: FaultCounts,
): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const roll = random();
      if (roll < rate) {
        counts.throttle++;
        throw Object.assign(new Error('Rate of requests exceeds the allowed throughput (soak)'), {
          name: 'ThrottlingException',
          $fault: 'client',
          $metadata: { httpStatusCode: 400 },
        });
      }
      if (roll < 2 * rate && context.commandName === 'TransactWriteItemsCommand') {
        counts.conflict++;
        const items = (args.input as { TransactItems?: unknown[] }).TransactItems ?? [];
        throw Object.assign(new Error('Transaction cancelled (soak): TransactionConflict'), {
          name: 'TransactionCanceledException',
          $fault: 'client',
          $metadata: { httpStatusCode: 400 },
          CancellationReasons: items.map((_, i) =>
            i === 0 ? { Code: 'TransactionConflict' } : { Code: 'None' },
          ),
        });
      }
      return next(args);
    },
    { step: 'initialize', name: 'soakDynamoFaults', priority: 'high' },
  );
}

/** Per delivery: crash right after this write (1-based), or never. */
interface DeliveryCrash {
  after: number;
  writes: number;
  dead: boolean;
}

/**
 * The store of the workers: a delivery run inside `crashes.run(after, fn)` dies right after its
 * `after`-th write (the write is durable, nothing after it runs), and every later write of that
 * delivery throws too, so no catch block carries on as if it were a failure.
 */
export function crashingDeliveries(store: Store, counts: FaultCounts) {
  const current = new AsyncLocalStorage<DeliveryCrash>();
  const wrapped: Store = new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      if (!STORE_WRITE_METHODS.has(prop as keyof Store)) return value.bind(target);
      return async (...args: unknown[]) => {
        const crash = current.getStore();
        if (crash?.dead) throw new InjectedCrash('process already dead');
        const result = await value.apply(target, args);
        if (crash && ++crash.writes === crash.after) {
          crash.dead = true;
          counts.crash++;
          throw new InjectedCrash(`soak: crash after write ${crash.after} (${String(prop)})`);
        }
        return result;
      };
    },
  });
  return {
    store: wrapped,
    run<T>(after: number, fn: () => Promise<T>): Promise<T> {
      return current.run({ after, writes: 0, dead: false }, fn);
    },
  };
}
