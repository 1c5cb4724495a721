import { Duration } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import type { WorkQueue } from './work-queue.ts';

/** EC2 instance states in which a host is gone or going: the resources on it must react. */
export const HOST_LEAVING_STATES = ['stopping', 'stopped', 'shutting-down', 'terminated'] as const;

export interface EventRoutingProps {
  /** Runs every minute (lambdas/handlers/sweep.ts). */
  readonly sweepFunction: lambda.IFunction;

  /** Receives EC2 events for the worker. */
  readonly workQueue: WorkQueue;
}

/**
 * What EventBridge delivers:
 * - a tick every minute to the sweep function;
 * - EC2 spot interruption warnings, rebalance recommendations and instance state changes (to
 *   a leaving state) to the work queue, as the **raw EventBridge event** (no input
 *   transformer): the message body is `{ "version", "id", "detail-type", "source": "aws.ec2",
 *   "time", "region", "resources", "detail": { "instance-id", "instance-action" | "state" } }`
 *   (a rebalance recommendation's detail has only "instance-id"), and the worker tells these
 *   from update messages by `source`/`detail-type`. EC2 events carry no tags, so events for
 *   instances that are not Drydock's arrive too; the worker drops ids it has no binding for.
 */
export class EventRouting extends Construct {
  public readonly sweepSchedule: events.Rule;
  public readonly spotInterruptionRule: events.Rule;
  public readonly instanceStateChangeRule: events.Rule;
  public readonly rebalanceRecommendationRule: events.Rule;

  constructor(scope: Construct, id: string, props: EventRoutingProps) {
    super(scope, id);

    this.sweepSchedule = new events.Rule(this, 'SweepSchedule', {
      description: 'Drydock sweep: expire, reclaim, re-drive, reconcile.',
      schedule: events.Schedule.rate(Duration.minutes(1)),
      // No retries and no DLQ: the next tick is a minute away and does the same work; a stale
      // tick redriven later would be noise.
      targets: [new targets.LambdaFunction(props.sweepFunction, { retryAttempts: 0 })],
    });

    // Delivery failures land in the work queue's DLQ: the worker understands these events,
    // so an operator can redrive them to the work queue like any other dead message.
    const toWorkQueue = () =>
      new targets.SqsQueue(props.workQueue.queue, {
        deadLetterQueue: props.workQueue.deadLetterQueue,
        maxEventAge: Duration.hours(1),
      });

    this.spotInterruptionRule = new events.Rule(this, 'SpotInterruptionRule', {
      description: 'Spot interruption warnings (two minutes before reclaim) to the Drydock worker.',
      eventPattern: { source: ['aws.ec2'], detailType: ['EC2 Spot Instance Interruption Warning'] },
      targets: [toWorkQueue()],
    });

    // A rebalance recommendation often comes well before the two-minute warning: the worker
    // stops giving the host new leases (suspect) and lets the active ones finish.
    this.rebalanceRecommendationRule = new events.Rule(this, 'RebalanceRecommendationRule', {
      description:
        'EC2 spot rebalance recommendations (elevated interruption risk) to the Drydock worker.',
      eventPattern: {
        source: ['aws.ec2'],
        detailType: ['EC2 Instance Rebalance Recommendation'],
      },
      targets: [toWorkQueue()],
    });

    this.instanceStateChangeRule = new events.Rule(this, 'InstanceStateChangeRule', {
      description: 'EC2 instances stopping or terminating, to the Drydock worker.',
      eventPattern: {
        source: ['aws.ec2'],
        detailType: ['EC2 Instance State-change Notification'],
        detail: { state: [...HOST_LEAVING_STATES] },
      },
      targets: [toWorkQueue()],
    });
  }
}
