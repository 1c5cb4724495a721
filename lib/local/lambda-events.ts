/**
 * The event shapes Lambda hands a function, built in-process: a Lambda context with a deadline
 * and the SQS event of received messages. The local runtime, the benchmarks and the handler
 * tests invoke the real handlers with exactly these, so all three exercise what AWS would send.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import type { ReceivedUpdate } from '../../lambdas/queue/sqs-queue.ts';

export const LOCAL_REGION = 'us-east-1';
export const LOCAL_ACCOUNT = '000000000000';

/** A Lambda context for one invocation of `drydock-<name>`, `timeoutMs` before its deadline. */
export function lambdaContext(name: string, timeoutMs: number, memoryMb = 512): Context {
  const deadline = Date.now() + timeoutMs;
  const functionName = `drydock-${name}`;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${LOCAL_REGION}:${LOCAL_ACCOUNT}:function:${functionName}`,
    memoryLimitInMB: String(memoryMb),
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** The SQS record Lambda's event source mapping delivers for a received message. */
export function sqsRecord(m: ReceivedUpdate, queueArn: string): SQSRecord {
  const now = String(Date.now());
  return {
    messageId: m.messageId,
    receiptHandle: m.receiptHandle,
    body: m.body,
    attributes: {
      ApproximateReceiveCount: String(m.receiveCount),
      SentTimestamp: now,
      SenderId: LOCAL_ACCOUNT,
      ApproximateFirstReceiveTimestamp: now,
    },
    messageAttributes: {},
    md5OfBody: createHash('md5').update(m.body).digest('hex'),
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: LOCAL_REGION,
  };
}

export function sqsEvent(batch: readonly ReceivedUpdate[], queueArn: string): SQSEvent {
  return { Records: batch.map((m) => sqsRecord(m, queueArn)) };
}
