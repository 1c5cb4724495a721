/**
 * vitest globalSetup: starts DynamoDB Local (java) and fauxqs once for the whole run, on free
 * ports (lib/local/emulators.ts, as the local runtime and the bench start them), and
 * provide()s their endpoints; every test file makes its own tables and queues.
 *
 * Java must never outlive the test runner: lib/local/dynamodb-local.ts runs it under a watchdog
 * wrapper that kills it on TERM/INT/HUP (our teardown, or Ctrl-C hitting the group) and once
 * this process is gone (the runner was SIGKILLed or crashed).
 */
import type { TestProject } from 'vitest/node';
import { assertJava } from '../../lib/local/dynamodb-local.ts';
import { startEmulators } from '../../lib/local/emulators.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** http://127.0.0.1:<port> of DynamoDB Local. */
    dynamoEndpoint: string;
    /** http://127.0.0.1:<port> of fauxqs (give SQS clients this as `endpoint`). */
    sqsEndpoint: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  assertJava();
  const emulators = await startEmulators();
  // Belt and braces: if this process exits without running teardown, stop the wrapper now
  // (the wrapper's own poll would catch it within a second anyway).
  const onExit = () => emulators.dynamo.process.kill('SIGTERM');
  process.once('exit', onExit);

  project.provide('dynamoEndpoint', emulators.dynamoEndpoint);
  project.provide('sqsEndpoint', emulators.sqsEndpoint);

  return async () => {
    await emulators.stop();
    process.off('exit', onExit);
  };
}
