/**
 * Invoking the real worker handler in-process, as Lambda's SQS event source mapping would: an
 * SQS event of received messages, a Lambda context with a deadline, and the handler's
 * structured log lines read back — the same way one would count what the workers did on AWS
 * (CloudWatch Logs Insights over `update processed` lines), since the handler's only other
 * output is the batch's failures.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import type { ReceivedUpdate } from '../../lambdas/queue/sqs-queue.ts';

const REGION = 'us-east-1';
const ACCOUNT = '000000000000';

/** A Lambda context for one in-process invocation (`timeoutMs` until its deadline). */
export function lambdaContext(name: string, timeoutMs: number): Context {
  const deadline = Date.now() + timeoutMs;
  const functionName = `drydock-bench-${name}`;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${functionName}`,
    memoryLimitInMB: '1024',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'bench',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** The SQS event Lambda would deliver for these received messages. */
export function sqsEvent(batch: readonly ReceivedUpdate[], queueArn: string): SQSEvent {
  const now = String(Date.now());
  return {
    Records: batch.map(
      (m): SQSRecord => ({
        messageId: m.messageId,
        receiptHandle: m.receiptHandle,
        body: m.body,
        attributes: {
          ApproximateReceiveCount: String(m.receiveCount),
          SentTimestamp: now,
          SenderId: ACCOUNT,
          ApproximateFirstReceiveTimestamp: now,
        },
        messageAttributes: {},
        md5OfBody: createHash('md5').update(m.body).digest('hex'),
        eventSource: 'aws:sqs',
        eventSourceARN: queueArn,
        awsRegion: REGION,
      }),
    ),
  };
}

export type LogEntry = Record<string, unknown> & { level?: string; message?: string };

/**
 * Takes the JSON log lines written to stdout/stderr (Powertools' logger writes one JSON object
 * per line) and hands them to `onEntry` instead of printing them; everything else passes
 * through. Returns a function that restores the streams.
 */
export function captureJsonLogs(onEntry: (entry: LogEntry) => void): () => void {
  const streams = [process.stdout, process.stderr];
  const originals = streams.map((s) => s.write);
  streams.forEach((stream, i) => {
    const original = originals[i]!;
    let pending = '';
    stream.write = ((chunk: unknown, ...rest: unknown[]) => {
      const text =
        typeof chunk === 'string'
          ? chunk
          : chunk instanceof Uint8Array
            ? Buffer.from(chunk).toString('utf8')
            : undefined;
      if (text === undefined || (!pending && !text.startsWith('{'))) {
        return (original as (...args: unknown[]) => boolean).call(stream, chunk, ...rest);
      }
      pending += text;
      let newline = pending.indexOf('\n');
      while (newline >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        try {
          onEntry(JSON.parse(line) as LogEntry);
        } catch {
          original.call(stream, `${line}\n`);
        }
        newline = pending.indexOf('\n');
      }
      const callback = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
      callback?.();
      return true;
    }) as typeof stream.write;
  });
  return () => {
    streams.forEach((stream, i) => {
      stream.write = originals[i]!;
    });
  };
}
