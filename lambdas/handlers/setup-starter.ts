/**
 * Starts a resource's setup workflow on Step Functions: the engine's `startSetup` on AWS (the
 * local runtime runs the same workflow in-process instead, lib/local/setup-driver.ts).
 */
import {
  DescribeExecutionCommand,
  type SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import { DrydockError, errorMessage, TemporaryError } from '../core/errors.ts';
import { isConnectionFault } from '../store/connection-faults.ts';
import { loggerFor } from './runtime.ts';

/** Step Functions' limit on execution names. */
const MAX_EXECUTION_NAME_LENGTH = 80;

/**
 * How many executions one resource's setup may start before the starter gives up. A setup is
 * restarted only when its execution ended while the resource is still pending (the workflow's
 * own timeout, an operator's StopExecution); more than a few restarts means something is wrong
 * with the workflow itself, and the resource's setup deadline breaks it anyway.
 */
export const MAX_SETUP_ATTEMPTS = 5;

/**
 * The execution name for attempt `attempt` (1-based) of a resource's setup. Every lease update
 * on a pending resource may ask to start its setup; one name per attempt makes every start of
 * a running attempt a no-op (Step Functions answers a start with the same name and input as the
 * open execution with success, and keeps names unique per state machine for 90 days).
 */
export function setupExecutionName(resourceId: string, attempt = 1): string {
  const base = `setup-${resourceId}`.replace(/[^A-Za-z0-9_-]/g, '_');
  if (attempt <= 1) return base.slice(0, MAX_EXECUTION_NAME_LENGTH);
  const suffix = `-r${attempt}`;
  return base.slice(0, MAX_EXECUTION_NAME_LENGTH - suffix.length) + suffix;
}

/** The ARN of the execution `name` of `stateMachineArn` (arn:…:stateMachine:M -> arn:…:execution:M:name). */
export function executionArn(stateMachineArn: string, name: string): string {
  return `${stateMachineArn.replace(':stateMachine:', ':execution:')}:${name}`;
}

function errorName(err: unknown): string {
  return (err as { name?: string }).name ?? '';
}

function isTemporary(err: unknown): boolean {
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return errorName(err) === 'ThrottlingException' || (status ?? 0) >= 500 || isConnectionFault(err);
}

/**
 * `client` is asked for on each start, so a container that never starts a setup never creates
 * the SDK client. Retries are the client's (3 attempts): StartExecution is idempotent by name
 * and input here, so a retry after a lost response is harmless.
 *
 * A name that is taken (ExecutionAlreadyExists) is either a running execution of this setup
 * (started with other input, by an older version) or an ended one: a setup whose execution
 * ended while the resource is still pending (it timed out, or was stopped) would otherwise
 * never be advanced again. So the starter describes the execution: running -> nothing to do;
 * ended -> start the next attempt under the next name.
 */
export function stepFunctionsSetupStarter(
  client: () => SFNClient,
  stateMachineArn: string,
): (resourceId: string) => Promise<void> {
  /** Starts attempt `attempt`; `previous` is how the attempt before it ended. */
  async function startAttempt(
    resourceId: string,
    attempt: number,
    previous?: string,
  ): Promise<'started' | 'taken'> {
    const name = setupExecutionName(resourceId, attempt);
    try {
      await client().send(
        new StartExecutionCommand({
          stateMachineArn,
          name,
          input: JSON.stringify({ resourceId }),
        }),
      );
    } catch (err) {
      if (errorName(err) === 'ExecutionAlreadyExists') return 'taken';
      throw err;
    }
    const log = loggerFor({ resourceId });
    if (previous === undefined) {
      log.info('setup workflow started', { stateMachineArn, name });
    } else {
      // Only reached when an execution ended with the resource still pending (workflow
      // timeout shorter than the blueprint's deadline, or a StopExecution).
      log.warn('setup workflow restarted: the previous execution ended with the resource pending', {
        stateMachineArn,
        name,
        attempt,
        previousStatus: previous,
      });
    }
    return 'started';
  }

  /** How the execution of attempt `attempt` stands (RUNNING, SUCCEEDED, TIMED_OUT, ...). */
  async function statusOf(resourceId: string, attempt: number): Promise<string> {
    const arn = executionArn(stateMachineArn, setupExecutionName(resourceId, attempt));
    const { status } = await client().send(new DescribeExecutionCommand({ executionArn: arn }));
    return status ?? 'UNKNOWN';
  }

  return async (resourceId) => {
    try {
      let previous: string | undefined;
      for (let attempt = 1; attempt <= MAX_SETUP_ATTEMPTS; attempt++) {
        if ((await startAttempt(resourceId, attempt, previous)) === 'started') return;
        previous = await statusOf(resourceId, attempt);
        if (previous === 'RUNNING') return;
      }
    } catch (err) {
      if (isTemporary(err)) {
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
    throw new DrydockError(
      'workflow_failure',
      `the setup of ${resourceId} was started ${MAX_SETUP_ATTEMPTS} times and every execution ` +
        `ended with the resource still pending; look at the executions named ` +
        `${setupExecutionName(resourceId)}* of ${stateMachineArn} to see why`,
    );
  };
}
