/**
 * vitest globalSetup: starts DynamoDB Local (java) and fauxqs once for the whole run, on free
 * ports, and provide()s their endpoints; every test file makes its own tables and queues.
 *
 * Java must never outlive the test runner: lib/local/dynamodb-local.ts runs it under a watchdog
 * wrapper that kills it on TERM/INT/HUP (our teardown, or Ctrl-C hitting the group) and once
 * this process is gone (the runner was SIGKILLed or crashed).
 */
import { startFauxqs } from 'fauxqs';
import type { TestProject } from 'vitest/node';
import {
  assertJava,
  type DynamoDbLocal,
  startDynamoDbLocal,
} from '../../lib/local/dynamodb-local.ts';

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
  const fauxqsStarting = startFauxqs({ port: 0, logger: false, host: '127.0.0.1' });
  const [dynamo, queue] = await Promise.allSettled([startDynamoDbLocal(), fauxqsStarting]);
  if (dynamo.status === 'rejected' || queue.status === 'rejected') {
    // startDynamoDbLocal stops java itself when it fails.
    await Promise.allSettled([
      queue.status === 'fulfilled' ? queue.value.stop() : undefined,
      dynamo.status === 'fulfilled' ? dynamo.value.stop() : undefined,
    ]);
    throw dynamo.status === 'rejected' ? dynamo.reason : (queue as PromiseRejectedResult).reason;
  }
  const java: DynamoDbLocal = dynamo.value;
  const fauxqs = queue.value;
  // Belt and braces: if this process exits without running teardown, stop the wrapper now
  // (the wrapper's own poll would catch it within a second anyway).
  const onExit = () => java.process.kill('SIGTERM');
  process.once('exit', onExit);

  project.provide('dynamoEndpoint', java.endpoint);
  project.provide('sqsEndpoint', `http://127.0.0.1:${fauxqs.port}`);

  return async () => {
    await Promise.allSettled([fauxqs.stop(), java.stop()]);
    process.off('exit', onExit);
  };
}
