import { Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as sns from 'aws-cdk-lib/aws-sns';
import { describe, expect, it } from 'vitest';
import { WorkQueue } from '../../lib/constructs/work-queue.ts';
import { arnOf, logicalId, newApp, ref, synth } from './support.ts';

describe('WorkQueue', () => {
  const { stack, template } = synth();
  const { queue, deadLetterQueue } = stack.workQueue;

  it('is a standard queue redriving to its DLQ after 5 receives', () => {
    template.resourceCountIs('AWS::SQS::Queue', 2);
    template.hasResourceProperties('AWS::SQS::Queue', {
      FifoQueue: Match.absent(),
      RedrivePolicy: { deadLetterTargetArn: arnOf(deadLetterQueue), maxReceiveCount: 5 },
    });
  });

  it('keeps dead letters for 14 days', () => {
    const dlq = template.findResources('AWS::SQS::Queue')[logicalId(deadLetterQueue)];
    expect(dlq?.Properties).toMatchObject({ MessageRetentionPeriod: 14 * 24 * 3600 });
    expect(dlq?.Properties.RedrivePolicy).toBeUndefined();
  });

  it('hides a batch for 6x the worker timeout', () => {
    const worker = Object.values(template.findResources('AWS::Lambda::Function')).find(
      (fn) => fn.Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME === 'drydock-worker',
    );
    const workerTimeout = worker?.Properties.Timeout as number;
    expect(workerTimeout).toBe(60);
    const work = template.findResources('AWS::SQS::Queue')[logicalId(queue)];
    expect(work?.Properties.VisibilityTimeout).toBe(6 * workerTimeout);

    const slower = synth({ workerTimeout: Duration.minutes(2) }).template;
    slower.hasResourceProperties('AWS::SQS::Queue', { VisibilityTimeout: 720 });
    slower.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ POWERTOOLS_SERVICE_NAME: 'drydock-worker' }) },
      Timeout: 120,
    });
  });

  it('encrypts both queues and refuses requests without TLS', () => {
    for (const q of [queue, deadLetterQueue]) {
      expect(
        template.findResources('AWS::SQS::Queue')[logicalId(q)]?.Properties.SqsManagedSseEnabled,
      ).toBe(true);
      template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [ref(q)],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: 'Deny',
              Action: 'sqs:*',
              Condition: { Bool: { 'aws:SecureTransport': 'false' } },
              Resource: arnOf(q),
            }),
          ]),
        },
      });
    }
  });

  it('alarms as soon as anything reaches the DLQ', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [
        { Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(deadLetterQueue), 'QueueName'] } },
      ],
      Statistic: 'Maximum',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      EvaluationPeriods: 1,
      // Not notBreaching: SQS stops publishing for a queue nobody touches, messages or not, and
      // the alarm must not clear with dead letters still there (issue 12). Missing data keeps
      // the state instead.
      TreatMissingData: 'ignore',
    });
  });

  it('alarms when the oldest work message is 15 minutes old', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateAgeOfOldestMessage',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(queue), 'QueueName'] } }],
      Statistic: 'Maximum',
      Threshold: 900,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
    const sqsAlarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')).filter(
      (a) => a.Properties.Namespace === 'AWS/SQS',
    );
    expect(sqsAlarms).toHaveLength(2);
  });

  it('notifies the alarm topic, when given, on alarm and on recovery', () => {
    const scratch = new Stack(newApp(), 'Scratch');
    const topic = new sns.Topic(scratch, 'Alarms');
    new WorkQueue(scratch, 'WorkQueue', { alarmTopic: topic });
    const alarms = Object.values(
      Template.fromStack(scratch).findResources('AWS::CloudWatch::Alarm'),
    );
    expect(alarms).toHaveLength(2);
    for (const alarm of alarms) {
      expect(alarm.Properties.AlarmActions).toEqual([ref(topic)]);
      expect(alarm.Properties.OKActions).toEqual([ref(topic)]);
    }
  });

  it('has no alarm actions without a topic', () => {
    // The stack always gives it one (lib/constructs/operations.ts): the construct on its own.
    const scratch = new Stack(newApp(), 'Scratch');
    new WorkQueue(scratch, 'WorkQueue');
    const alarms = Object.values(
      Template.fromStack(scratch).findResources('AWS::CloudWatch::Alarm'),
    );
    expect(alarms).toHaveLength(2);
    for (const alarm of alarms) expect(alarm.Properties.AlarmActions).toBeUndefined();
  });

  it('rejects a bad maxReceiveCount or consumer timeout, showing the value', () => {
    const scope = new Stack(newApp(), 'Scratch');
    expect(() => new WorkQueue(scope, 'A', { maxReceiveCount: 0 })).toThrow(
      'Scratch/A: maxReceiveCount must be an integer from 1 to 1000, got 0',
    );
    expect(() => new WorkQueue(scope, 'B', { consumerTimeout: Duration.minutes(20) })).toThrow(
      'Scratch/B: consumerTimeout must be between 1 and 900 seconds, got "20 minutes"',
    );
  });
});
