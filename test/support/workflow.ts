/** Helpers for tests that run the setup state machine with aws-local-stepfunctions. */
import { ExecutionError } from 'aws-local-stepfunctions';
import { expect } from 'vitest';

/** The Fail state's Error and Cause: aws-local-stepfunctions puts them on `cause`. */
export async function failureOf(
  outcome: Promise<unknown>,
): Promise<{ Error: string; Cause: string }> {
  const error = await outcome.then(
    () => expect.unreachable('the execution should have failed'),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ExecutionError);
  const cause = (error as ExecutionError).cause as Error;
  return { Error: cause.name, Cause: cause.message };
}
