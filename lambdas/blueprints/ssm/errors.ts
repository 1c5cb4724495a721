/**
 * SDK exceptions of SSM and CloudWatch Logs translated into the domain's errors, so the engine
 * sees TemporaryError (retry later) or ResourceGoneError (the host is gone) and never an AWS type.
 *
 * Messages name the operation and the instance but never the request: a SendCommand request
 * carries the command's environment.
 */
import { DrydockError, ResourceGoneError, TemporaryError } from '../../core/errors.ts';
import { isConnectionFault } from '../../store/connection-faults.ts';

const THROTTLING = new Set([
  'ThrottlingException',
  'Throttling',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'TooManyUpdates',
  'RateExceeded',
]);

/** Errors of a service that is fine but busy or briefly unreachable: try again later. */
export function isTemporary(err: unknown): boolean {
  const e = err as { name?: string; $retryable?: { throttling?: boolean }; $fault?: string };
  return (
    THROTTLING.has(e?.name ?? '') ||
    e?.$retryable?.throttling === true ||
    e?.$fault === 'server' ||
    e?.name === 'InternalServerError' ||
    isConnectionFault(err)
  );
}

export function errorName(err: unknown): string {
  return (err as { name?: string })?.name ?? 'Error';
}

/**
 * Translate an error of `operation` on `instanceId`. `InvalidInstanceId` means (per the SSM API
 * reference) the instance does not exist, is not registered, is not running, or its agent is
 * offline: for a command, the host is gone as far as this lease is concerned.
 */
export function translateSsmError(err: unknown, operation: string, instanceId: string): Error {
  if (err instanceof DrydockError) return err;
  const name = errorName(err);
  const context = { operation, instanceId, awsError: name };
  if (isTemporary(err)) {
    return new TemporaryError(`${operation} on instance ${instanceId} was throttled (${name})`, {
      cause: err,
      context,
    });
  }
  if (name === 'InvalidInstanceId') {
    return new ResourceGoneError(
      `instance ${instanceId} is not a registered, online SSM managed instance (${operation}: ${name})`,
      { cause: err, context },
    );
  }
  // Only the name and the service's own message: the request (with env) is never echoed.
  const message = (err as Error)?.message ?? String(err);
  return new DrydockError(
    'cloud_error',
    `${operation} on instance ${instanceId} failed: ${name}: ${message}`,
    {
      cause: err,
      context,
    },
  );
}
