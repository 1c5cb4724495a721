/**
 * Keeping a held lease (lambdas/core/lease-hold.ts) while the CLI lives: the lease is requested
 * with a short hold and renewed every third of it, so if this process is killed with SIGKILL
 * (or its machine dies) the lease ends within minutes instead of at the end of its TTL.
 *
 * DRYDOCK_HOLD_SECONDS sets the hold (the e2e tests use a few seconds; 0 turns holding off).
 */
import { DEFAULT_HOLD_SECONDS, RENEW_EVERY_FRACTION } from '../../lambdas/core/lease-hold.ts';
import type { ApiClient } from './api.ts';

/** The hold the CLI asks for; undefined = do not hold (DRYDOCK_HOLD_SECONDS=0). */
export function holdSecondsFrom(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env.DRYDOCK_HOLD_SECONDS;
  if (raw === undefined || raw.trim() === '') return DEFAULT_HOLD_SECONDS;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0 || value > 3600) {
    throw new Error(
      `DRYDOCK_HOLD_SECONDS must be a whole number of seconds from 0 to 3600, got '${raw}'`,
    );
  }
  return value === 0 ? undefined : value;
}

export interface Renewal {
  /** Stop renewing (the lease is released, or handed over). */
  stop(): void;
}

/**
 * Renews `leaseId` every holdSeconds × RENEW_EVERY_FRACTION until stopped. A failed renewal is
 * reported once (`warn`) and tried again at the next tick: two may fail before the hold lapses.
 */
export function keepRenewing(
  client: ApiClient,
  leaseId: string,
  holdSeconds: number,
  warn: (text: string) => void,
): Renewal {
  let warned = false;
  let inFlight = false;
  const renew = async () => {
    if (inFlight) return;
    inFlight = true;
    try {
      await client.post(
        `/v1/leases/${encodeURIComponent(leaseId)}/renew`,
        {},
        { timeoutMs: 10_000 },
      );
      warned = false;
    } catch (err) {
      if (!warned) warn(`could not renew ${leaseId} (will retry): ${(err as Error).message}`);
      warned = true;
    } finally {
      inFlight = false;
    }
  };
  const timer = setInterval(
    () => void renew(),
    Math.max(250, holdSeconds * RENEW_EVERY_FRACTION * 1000),
  );
  // Never what keeps the process alive: the flow that holds the lease does that.
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
