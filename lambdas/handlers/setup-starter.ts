/**
 * Starts a resource's setup workflow on Step Functions: the engine's `startSetup` on AWS (the
 * local runtime runs the same workflow in-process instead, lib/local/setup-driver.ts).
 */
import { type SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { DrydockError, errorMessage, TemporaryError } from '../core/errors.ts';
import { loggerFor } from './runtime.ts';

/**
 * The execution name for a resource's setup. Every lease update on a pending resource may ask
 * to start its setup; one name per resource makes every start after the first a no-op
 * (Step Functions keeps names unique per state machine for 90 days).
 */
export function setupExecutionName(resourceId: string): string {
  return `setup-${resourceId}`.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 80);
}

/**
 * `client` is asked for on each start, so a container that never starts a setup never creates
 * the SDK client. Retries are the client's (3 attempts): StartExecution is idempotent by name
 * here, so a retry after a lost response is harmless.
 */
export function stepFunctionsSetupStarter(
  client: () => SFNClient,
  stateMachineArn: string,
): (resourceId: string) => Promise<void> {
  return async (resourceId) => {
    try {
      await client().send(
        new StartExecutionCommand({
          stateMachineArn,
          name: setupExecutionName(resourceId),
          input: JSON.stringify({ resourceId }),
        }),
      );
      loggerFor({ resourceId }).info('setup workflow started', { stateMachineArn });
    } catch (err) {
      const name = (err as { name?: string }).name ?? '';
      // Started before (by another lease's update, or a redelivery): it is running or done.
      if (name === 'ExecutionAlreadyExists') return;
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (name === 'ThrottlingException' || (status ?? 0) >= 500) {
        throw new TemporaryError(`starting the setup of ${resourceId} failed temporarily`, {
          cause: err,
        });
      }
      throw new DrydockError(
        'workflow_failure',
        `starting the setup of ${resourceId} failed: ${errorMessage(err)}`,
        { cause: err },
      );
    }
  };
}
