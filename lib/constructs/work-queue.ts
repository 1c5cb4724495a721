import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { checkDuration, checkInteger } from './validate.ts';

export interface WorkQueueProps {
  /**
   * Timeout of the Lambda function that consumes the queue. The visibility timeout is six
   * times this (AWS's guidance for SQS event sources: room for the function's own retries
   * and batching), so a batch is not redelivered while a worker still holds it.
   *
   * @default Duration.minutes(1)
   */
  readonly consumerTimeout?: Duration;

  /**
   * Deliveries of one message before it moves to the dead-letter queue. Waiting is not a
   * failure (a waiting update re-enqueues itself), so only messages the worker keeps failing
   * on get here.
   *
   * @default 5
   */
  readonly maxReceiveCount?: number;

  /**
   * Alarm when the oldest message has waited at least this long: workers are down, throttled
   * or failing on a batch.
   *
   * @default Duration.minutes(15)
   */
  readonly oldestMessageAgeAlarmThreshold?: Duration;

  /**
   * Topic notified when an alarm fires and when it clears.
   *
   * @default - the alarms have no actions
   */
  readonly alarmTopic?: sns.ITopic;
}

/**
 * The work queue ("update lease L", "update resource R", and raw EC2 EventBridge events)
 * with its dead-letter queue and the two alarms an operator needs: something was given up
 * on (DLQ depth), and work is not being picked up (age of the oldest message).
 */
export class WorkQueue extends Construct {
  public readonly queue: sqs.Queue;
  public readonly deadLetterQueue: sqs.Queue;
  public readonly deadLetterQueueDepthAlarm: cloudwatch.Alarm;
  public readonly oldestMessageAgeAlarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: WorkQueueProps = {}) {
    super(scope, id);
    checkDuration(this, 'consumerTimeout', props.consumerTimeout, 1, 900);
    checkInteger(this, 'maxReceiveCount', props.maxReceiveCount, 1, 1000);
    checkDuration(
      this,
      'oldestMessageAgeAlarmThreshold',
      props.oldestMessageAgeAlarmThreshold,
      60,
      14 * 24 * 3600,
    );

    const consumerTimeout = props.consumerTimeout ?? Duration.minutes(1);

    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      retentionPeriod: Duration.days(14),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });

    this.queue = new sqs.Queue(this, 'Queue', {
      visibilityTimeout: Duration.seconds(consumerTimeout.toSeconds() * 6),
      // SSE-SQS rather than KMS: EventBridge can deliver to it without a key policy.
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      deadLetterQueue: {
        queue: this.deadLetterQueue,
        maxReceiveCount: props.maxReceiveCount ?? 5,
      },
    });

    this.deadLetterQueueDepthAlarm = new cloudwatch.Alarm(this, 'DeadLetterQueueDepthAlarm', {
      alarmDescription:
        'Drydock gave up on work: messages are in the dead-letter queue. Read them, fix the ' +
        'cause, then redrive them to the work queue.',
      metric: this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(1),
        statistic: cloudwatch.Stats.MAXIMUM,
      }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      // SQS stops publishing a queue's metrics once nothing has touched it for a while, even
      // with messages in it. Missing data keeps the last state: an alarm raised for dead
      // letters stays raised until a datapoint says the queue is empty (a redrive or purge
      // touches it), and an idle empty queue stays OK. "notBreaching" would clear the alarm
      // with the messages still there; "breaching" would raise it for an idle empty queue.
      treatMissingData: cloudwatch.TreatMissingData.IGNORE,
    });

    const ageThreshold = props.oldestMessageAgeAlarmThreshold ?? Duration.minutes(15);
    this.oldestMessageAgeAlarm = new cloudwatch.Alarm(this, 'OldestMessageAgeAlarm', {
      alarmDescription:
        `Drydock work is not being picked up: a message has waited ${ageThreshold.toHumanString()} ` +
        'or more. Check the worker function for errors and throttling.',
      metric: this.queue.metricApproximateAgeOfOldestMessage({
        period: Duration.minutes(1),
        statistic: cloudwatch.Stats.MAXIMUM,
      }),
      threshold: ageThreshold.toSeconds(),
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });

    if (props.alarmTopic) {
      const action = new actions.SnsAction(props.alarmTopic);
      for (const alarm of [this.deadLetterQueueDepthAlarm, this.oldestMessageAgeAlarm]) {
        alarm.addAlarmAction(action);
        alarm.addOkAction(action);
      }
    }
  }
}
