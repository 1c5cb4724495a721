/**
 * Connection faults: a request that never reached the service (the socket did not connect in
 * time, was refused or reset) or whose response never came (the request timed out). The
 * service is fine but was briefly unreachable or busy, so they are retryable like throttling:
 * every place that decides "temporary" (the store, the queue, the setup starter, the SSM
 * plug-ins) asks here, so a burst that exhausts the SDK's own retries makes the message be
 * redelivered instead of failing the request for good.
 *
 * A write whose response was lost may have been applied: that is safe here because every
 * state change is a conditional write, and a retried one finds its condition already met or
 * fails into a re-plan.
 */

/** Names smithy gives timeouts (connection and request) and their service-side equivalents. */
const TIMEOUT_NAMES = new Set([
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'AbortError',
]);

/** Node's socket error codes for a peer that was unreachable or went away mid-request. */
const SOCKET_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

interface FaultShape {
  name?: string;
  code?: string;
  message?: string;
  cause?: unknown;
}

/** Whether `err` (or its cause) is a connection fault worth retrying. */
export function isConnectionFault(err: unknown, depth = 0): boolean {
  if (!err || typeof err !== 'object' || depth > 3) return false;
  const e = err as FaultShape;
  if (e.name && TIMEOUT_NAMES.has(e.name)) return true;
  if (e.code && SOCKET_CODES.has(e.code)) return true;
  if (typeof e.message === 'string' && /socket hang up/i.test(e.message)) return true;
  return isConnectionFault(e.cause, depth + 1);
}
