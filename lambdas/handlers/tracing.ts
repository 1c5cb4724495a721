/**
 * X-Ray subsegments for every AWS SDK call a function makes (DynamoDB, SQS, SSM, EC2, Step
 * Functions, CloudWatch Logs), so a slow lease shows which call it waited on. The functions run
 * with active tracing (lib/constructs/drydock-function.ts), which opens the segment these hang
 * under.
 *
 * Powertools' Tracer turns itself off outside Lambda (no AWS_EXECUTION_ENV) and with
 * POWERTOOLS_TRACE_ENABLED=false: then `capture` returns the client untouched, so the local
 * runtime and the tests never need an X-Ray daemon or segment.
 */
import { Tracer } from '@aws-lambda-powertools/tracer';

/** Wraps an SDK v3 client so each of its calls is a subsegment (identity when tracing is off). */
export type CaptureClient = <T>(client: T) => T;

export function sdkClientTracer(env: NodeJS.ProcessEnv = process.env): CaptureClient {
  const tracer = new Tracer({ serviceName: env.POWERTOOLS_SERVICE_NAME || 'drydock' });
  return <T>(client: T): T =>
    tracer.isTracingEnabled() ? tracer.captureAWSv3Client(client as never) : client;
}
