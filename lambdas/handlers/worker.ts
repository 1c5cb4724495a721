/**
 * The work queue's consumer: each SQS record is an update message ("update lease L", "update
 * resource R", "run command C") or an EC2 event EventBridge put on the queue. Records are
 * processed concurrently; the ones that failed are reported in `batchItemFailures` so SQS
 * redelivers only those (the event source mapping has ReportBatchItemFailures on).
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { z } from 'zod';
import type { Engine } from '../core/engine.ts';
import { errorMessage, ValidationError } from '../core/errors.ts';
import type { UpdateMessage } from '../core/model.ts';
import { describeOutcome, outcomeDetail } from '../core/outcomes.ts';
import { type HostEvent, handleHostEvent, processUpdate } from '../core/use-cases.ts';
import { formatZodIssues } from '../core/validation.ts';
import { parseUpdateMessage } from '../queue/sqs-queue.ts';
import { engineFromEnvironment } from './composition.ts';
import { flushMetrics } from './emf-metrics.ts';
import { type EngineSource, engineOf, type LogIds, logger, loggerFor } from './runtime.ts';

// ---- EC2 events -----------------------------------------------------------------------------

const ec2Base = {
  source: z.literal('aws.ec2'),
  id: z.string(),
  time: z.string(),
  region: z.string(),
};

/** The EventBridge events lib/constructs/event-routing.ts sends to the queue, unmodified. */
const ec2EventSchema = z.discriminatedUnion('detail-type', [
  z.object({
    ...ec2Base,
    'detail-type': z.literal('EC2 Spot Instance Interruption Warning'),
    detail: z.object({ 'instance-id': z.string().min(1), 'instance-action': z.string() }),
  }),
  z.object({
    ...ec2Base,
    'detail-type': z.literal('EC2 Instance State-change Notification'),
    detail: z.object({ 'instance-id': z.string().min(1), state: z.string() }),
  }),
  z.object({
    ...ec2Base,
    'detail-type': z.literal('EC2 Instance Rebalance Recommendation'),
    detail: z.object({ 'instance-id': z.string().min(1) }),
  }),
]);

type Ec2Event = z.output<typeof ec2EventSchema>;

/** The event as the core sees it: no AWS shapes past this point. */
export function hostEventOf(event: Ec2Event): HostEvent {
  const instanceId = event.detail['instance-id'];
  switch (event['detail-type']) {
    case 'EC2 Spot Instance Interruption Warning':
      return { instanceId, kind: 'interruption', at: event.time };
    case 'EC2 Instance State-change Notification':
      return { instanceId, kind: 'state-change', state: event.detail.state, at: event.time };
    case 'EC2 Instance Rebalance Recommendation':
      return { instanceId, kind: 'rebalance', at: event.time };
  }
}

type WorkItem = { kind: 'update'; message: UpdateMessage } | { kind: 'ec2'; event: Ec2Event };

/** An EventBridge event (it has `source` and `detail-type`), else an update message. */
function parseWorkItem(body: string): WorkItem {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return { kind: 'update', message: parseUpdateMessage(body) }; // reports the JSON error
  }
  if (typeof json === 'object' && json !== null && 'source' in json && 'detail-type' in json) {
    const parsed = ec2EventSchema.safeParse(json);
    if (!parsed.success) {
      throw new ValidationError(
        `not an EC2 event this worker handles: ${formatZodIssues(parsed.error, { root: '(event)' })}`,
      );
    }
    return { kind: 'ec2', event: parsed.data };
  }
  return { kind: 'update', message: parseUpdateMessage(body) };
}

function idsOf(message: UpdateMessage): LogIds {
  switch (message.kind) {
    case 'lease':
      return { leaseId: message.id };
    case 'resource':
      return { resourceId: message.id };
    case 'command':
      return { leaseId: message.leaseId, commandId: message.id };
    case 'blueprint':
      return { blueprintId: message.id };
  }
}

// ---- records --------------------------------------------------------------------------------

async function handleRecord(engine: Engine, record: SQSRecord): Promise<void> {
  const receiveCount = Number(record.attributes?.ApproximateReceiveCount ?? 1);
  let item: WorkItem;
  try {
    item = parseWorkItem(record.body);
  } catch (err) {
    // Reported as a failure, not acknowledged. A message this worker cannot read is a bug in a
    // producer, or a message kind from a newer version during a deployment: failing it lets
    // SQS redeliver it (perhaps to an updated worker) and, after maxReceiveCount, moves it to
    // the DLQ, where the alarm fires and an operator can read it and redrive it once fixed.
    // Acknowledging it would drop a lease's or resource's update without a trace; the cost
    // of failing is a few wasted receives.
    logger.error('malformed message; it will reach the dead-letter queue', {
      messageId: record.messageId,
      receiveCount,
      reason: errorMessage(err),
      body: record.body.slice(0, 500),
    });
    throw err;
  }

  if (item.kind === 'ec2') {
    // Mapped to the resource bound to the instance (its binding slot lock); an instance that is
    // not Drydock's (EC2 events carry no tags) is dropped with this log line.
    const { event } = item;
    const hostEvent = hostEventOf(event);
    const outcome = await handleHostEvent(engine, hostEvent);
    loggerFor(outcome.resourceId ? { resourceId: outcome.resourceId } : {}).info(
      'EC2 event processed',
      {
        instanceId: hostEvent.instanceId,
        detailType: event['detail-type'],
        kind: hostEvent.kind,
        ...(hostEvent.state ? { state: hostEvent.state } : {}),
        eventId: event.id,
        action: outcome.action,
        detail: outcome.detail,
      },
    );
    return;
  }

  const { message } = item;
  const log = loggerFor(idsOf(message));
  try {
    const { outcome } = await processUpdate(engine, message);
    // `action` and `detail` for people reading the log; `outcome` for tools that count updates.
    log.info('update processed', {
      kind: message.kind,
      reason: message.reason,
      receiveCount,
      action: describeOutcome(outcome),
      detail: outcomeDetail(outcome),
      outcome,
    });
  } catch (err) {
    log.warn('update failed; SQS will redeliver it', {
      kind: message.kind,
      receiveCount,
      messageId: record.messageId,
      error: err as Error,
    });
    throw err;
  }
}

export interface WorkerHandlerDeps {
  engine: EngineSource;
}

/** The worker Lambda handler on `deps.engine`. */
export function makeWorkerHandler(deps: WorkerHandlerDeps) {
  async function processBatch(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
    const engine = engineOf(deps.engine);
    // One processor per invocation: it keeps the batch's successes and failures, and the local
    // runtime invokes this handler concurrently in one process.
    const processor = new BatchProcessor(EventType.SQS);
    return processPartialResponse(
      event,
      (record: SQSRecord) => handleRecord(engine, record),
      processor,
      // A batch whose every record failed is still a partial response, not a thrown error: the
      // answer is the same (all redelivered) and the log says why once per record.
      { context, throwOnFullBatchFailure: false },
    );
  }

  // middy's default early timeout rejects the invocation just before the context's deadline, so
  // a batch past the function timeout fails (and is redelivered) the same way on AWS and in the
  // local runtime, which cannot stop a handler. Steps are bounded: a command is started or polled,
  // never waited on to its end, and static-host's SSM housekeeping waits at most STEP_BUDGET_MS
  // (20 s, lambdas/blueprints/ssm/run.ts) in a step, which the worker timeout must leave room for.
  return middy<SQSEvent, SQSBatchResponse>(processBatch)
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(flushMetrics(deps.engine));
}

export const handler = makeWorkerHandler({ engine: engineFromEnvironment });
