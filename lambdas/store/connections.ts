/**
 * A bounded set of connections per process, shared by the store's DynamoDB clients: one
 * keep-alive agent with a socket limit, and a permit per request in flight, taken *inside* the
 * SDK's retry loop just before the request is sent.
 *
 * Why the permit: smithy starts a request's connection timer when the request is created, not
 * when it gets a socket, so with more requests than sockets the ones queued in the agent time
 * out "without establishing a connection" although nothing is wrong with the server (a burst
 * of 200 leases against DynamoDB Local on a slow 2-core machine did exactly that). Waiting for
 * a permit first means a request reaches the agent only when a socket is free, so the
 * connection timeout measures connecting again, and the number of open connections is bounded.
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';

/** @default per process: the SDK's own default per client, now for all of them together. */
export const DEFAULT_MAX_CONNECTIONS = 50;

export interface ConnectionBudget {
  readonly maxConnections: number;
  readonly httpAgent: HttpAgent;
  readonly httpsAgent: HttpsAgent;
  /** Waits for a free connection; call the returned function when the response is read. */
  acquire(): Promise<() => void>;
  /** Requests holding a connection now, and the most there ever were (for tests and benches). */
  stats(): { inFlight: number; peak: number; waiting: number };
  /** Closes idle sockets (the process is ending). */
  destroy(): void;
}

export function connectionBudget(maxConnections = DEFAULT_MAX_CONNECTIONS): ConnectionBudget {
  if (!Number.isInteger(maxConnections) || maxConnections < 1) {
    throw new Error(`maxConnections must be a positive integer, got ${maxConnections}`);
  }
  const agentOptions = { keepAlive: true, maxSockets: maxConnections };
  const httpAgent = new HttpAgent(agentOptions);
  const httpsAgent = new HttpsAgent(agentOptions);
  const waiters: Array<() => void> = [];
  let inFlight = 0;
  let peak = 0;
  const release = () => {
    const next = waiters.shift();
    if (next)
      next(); // the permit passes on: inFlight stays the same
    else inFlight--;
  };
  const grant = (): (() => void) => {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      release();
    };
  };
  return {
    maxConnections,
    httpAgent,
    httpsAgent,
    acquire() {
      if (inFlight < maxConnections) {
        inFlight++;
        peak = Math.max(peak, inFlight);
        return Promise.resolve(grant());
      }
      return new Promise((resolve) => waiters.push(() => resolve(grant())));
    },
    stats: () => ({ inFlight, peak, waiting: waiters.length }),
    destroy() {
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}

/** The smallest middleware stack surface this needs (any SDK v3 client has it). */
interface ClientWithStack {
  middlewareStack: {
    add(
      // biome-ignore lint/suspicious/noExplicitAny: the SDK's middleware types differ per client.
      middleware: (next: (args: any) => Promise<any>) => (args: any) => Promise<any>,
      options: { step: 'deserialize'; name: string; priority: 'high' },
    ): void;
    identify(): string[];
  };
}

const BUDGET_MIDDLEWARE = 'drydockConnectionBudget';

/**
 * Makes every request of `client` (each retry too) hold a permit of `budget` while it is on the
 * wire. In the deserialize step with high priority: inside the retry loop (finalizeRequest), and
 * outside the deserializer, so the permit is held until the response body has been read and
 * its socket is free again.
 */
export function limitConnections(client: ClientWithStack, budget: ConnectionBudget): void {
  if (client.middlewareStack.identify().some((m) => m.startsWith(`${BUDGET_MIDDLEWARE} `))) {
    return;
  }
  client.middlewareStack.add(
    (next) => async (args) => {
      const done = await budget.acquire();
      try {
        return await next(args);
      } finally {
        done();
      }
    },
    { step: 'deserialize', name: BUDGET_MIDDLEWARE, priority: 'high' },
  );
}
