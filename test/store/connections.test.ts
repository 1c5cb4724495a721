/**
 * Bounded connections per process (lambdas/store/connections.ts) and connection faults as the
 * retryable faults they are (connection-faults.ts): the bench's failure on a slow 2-core machine
 * ("the request socket did not establish a connection with the server within the configured
 * timeout") was a burst queued in the agent while the connection timer ran.
 */
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { TemporaryError } from '../../lambdas/core/errors.ts';
import { translateSqsError } from '../../lambdas/queue/sqs-queue.ts';
import { createDynamoClient } from '../../lambdas/store/clients.ts';
import { isConnectionFault } from '../../lambdas/store/connection-faults.ts';
import { connectionBudget, limitConnections } from '../../lambdas/store/connections.ts';
import { translateError } from '../../lambdas/store/sdk-errors.ts';
import { LOCAL_CREDENTIALS } from '../../lib/local/emulators.ts';
import { localEndpoints, TEST_REGION } from '../support/env.ts';

const smithyTimeout = () =>
  Object.assign(
    new Error(
      '@smithy/node-http-handler - the request socket did not establish a connection with the server within the configured timeout of 2000 ms.',
    ),
    { name: 'TimeoutError' },
  );

describe('connection budget', () => {
  it('never grants more permits than its limit, and hands them on oldest first', async () => {
    const budget = connectionBudget(2);
    const order: number[] = [];
    const first = await budget.acquire();
    const second = await budget.acquire();
    const waiting = [3, 4, 5].map(async (n) => {
      const done = await budget.acquire();
      order.push(n);
      return done;
    });
    expect(budget.stats()).toEqual({ inFlight: 2, peak: 2, waiting: 3 });
    first();
    first(); // a second release of the same permit frees nothing more
    const third = await waiting[0];
    expect(budget.stats()).toMatchObject({ inFlight: 2, waiting: 2 });
    second();
    third?.();
    const [fourth, fifth] = await Promise.all([waiting[1], waiting[2]]);
    expect(order).toEqual([3, 4, 5]);
    fourth?.();
    fifth?.();
    expect(budget.stats()).toEqual({ inFlight: 0, peak: 2, waiting: 0 });
    budget.destroy();
  });

  it('a burst far beyond the sockets queues for a permit instead of timing out while queued', async () => {
    const rawClient = (budget?: ReturnType<typeof connectionBudget>) =>
      new DynamoDBClient({
        endpoint: localEndpoints().dynamo,
        region: TEST_REGION,
        credentials: LOCAL_CREDENTIALS,
        maxAttempts: 1, // no retry may hide a timeout
        requestHandler: {
          connectionTimeout: 100,
          requestTimeout: 10_000,
          httpAgent: (budget ?? connectionBudget(1)).httpAgent,
        },
      });
    const burst = (client: DynamoDBClient) =>
      Promise.allSettled(
        Array.from({ length: 400 }, () => client.send(new ListTablesCommand({ Limit: 1 }))),
      );

    // The control: one socket and no permits, so queued requests' connection timers run out.
    const unlimited = rawClient();
    const control = await burst(unlimited);
    unlimited.destroy();
    const timedOut = control.filter((r) => r.status === 'rejected');
    expect(timedOut.length).toBeGreaterThan(0);
    expect(isConnectionFault((timedOut[0] as PromiseRejectedResult).reason)).toBe(true);

    const budget = connectionBudget(1);
    const limited = rawClient(budget);
    limitConnections(limited, budget);
    const results = await burst(limited);
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    expect(budget.stats().peak).toBe(1);
    limited.destroy();
    budget.destroy();
  });

  it("the store's clients share one budget: connections stay within it across clients", async () => {
    const budget = connectionBudget(3);
    const target = {
      endpoint: localEndpoints().dynamo,
      region: TEST_REGION,
      credentials: LOCAL_CREDENTIALS,
    };
    const clients = [1, 2, 3, 4].map(() => createDynamoClient(target, budget));
    await Promise.all(
      clients.flatMap((c) =>
        Array.from({ length: 50 }, () => c.send(new ListTablesCommand({ Limit: 1 }))),
      ),
    );
    expect(budget.stats()).toEqual({ inFlight: 0, peak: 3, waiting: 0 });
    const sockets = Object.values(budget.httpAgent.freeSockets).flat().length;
    expect(sockets).toBeLessThanOrEqual(3);
    for (const c of clients) c.destroy();
    budget.destroy();
  });
});

describe('connection faults are temporary', () => {
  it('a connection that was not established, reset or refused is a TemporaryError in the store and the queue', () => {
    const faults = [
      smithyTimeout(),
      Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }),
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8000'), { code: 'ECONNREFUSED' }),
      new Error('socket hang up'),
      Object.assign(new Error('request timed out'), { name: 'RequestTimeout' }),
    ];
    for (const fault of faults) {
      expect(translateError(fault, 'transaction')).toBeInstanceOf(TemporaryError);
      expect(translateSqsError(fault, 'SendMessageBatch')).toBeInstanceOf(TemporaryError);
    }
    // A wrapped one counts too (the SDK sometimes keeps the socket error as the cause).
    expect(isConnectionFault(new Error('request failed', { cause: smithyTimeout() }))).toBe(true);
  });

  it('a validation error is not a connection fault and stays a permanent store failure', () => {
    const invalid = Object.assign(new Error('One or more parameter values were invalid'), {
      name: 'ValidationException',
      $metadata: { httpStatusCode: 400 },
    });
    expect(isConnectionFault(invalid)).toBe(false);
    const translated = translateError(invalid, 'query');
    expect(translated).not.toBeInstanceOf(TemporaryError);
    expect(translated.code).toBe('store_failure');
  });
});
