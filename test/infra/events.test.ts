import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { HOST_LEAVING_STATES } from '../../lib/constructs/event-routing.ts';
import { arnOf, logicalId, ref, synth } from './support.ts';

interface QueueStatement {
  Effect: string;
  Principal?: { Service?: string };
  Action: string | string[];
  Resource: unknown;
  Condition: { ArnEquals: Record<string, unknown> };
}

describe('EventRouting', () => {
  const { stack, template } = synth();
  const queue = stack.workQueue.queue;
  const dlq = stack.workQueue.deadLetterQueue;
  const rules = () => Object.values(template.findResources('AWS::Events::Rule'));

  it('ticks the sweep every minute, without retries', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 minute)',
      State: 'ENABLED',
      Targets: [
        Match.objectLike({
          Arn: arnOf(stack.sweepFunction),
          RetryPolicy: { MaximumRetryAttempts: 0 },
        }),
      ],
    });
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      FunctionName: arnOf(stack.sweepFunction),
      Principal: 'events.amazonaws.com',
    });
  });

  it('sends spot interruption warnings to the work queue, raw, with a DLQ', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.ec2'],
        'detail-type': ['EC2 Spot Instance Interruption Warning'],
      },
      Targets: [
        {
          Id: Match.anyValue(),
          Arn: arnOf(queue),
          DeadLetterConfig: { Arn: arnOf(dlq) },
          RetryPolicy: Match.objectLike({ MaximumEventAgeInSeconds: 3600 }),
        },
      ],
    });
  });

  it('sends instances stopping or terminating to the work queue, raw, with a DLQ', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.ec2'],
        'detail-type': ['EC2 Instance State-change Notification'],
        detail: { state: [...HOST_LEAVING_STATES] },
      },
      Targets: [Match.objectLike({ Arn: arnOf(queue), DeadLetterConfig: { Arn: arnOf(dlq) } })],
    });
    expect(HOST_LEAVING_STATES).toEqual(['stopping', 'stopped', 'shutting-down', 'terminated']);
  });

  it('sends spot rebalance recommendations to the work queue, raw, with a DLQ', () => {
    expect(
      template.findResources('AWS::Events::Rule')[
        logicalId(stack.eventRouting.rebalanceRecommendationRule)
      ]?.Properties,
    ).toMatchObject({
      EventPattern: {
        source: ['aws.ec2'],
        'detail-type': ['EC2 Instance Rebalance Recommendation'],
      },
      State: 'ENABLED',
      Targets: [
        {
          Id: expect.anything(),
          Arn: arnOf(queue),
          DeadLetterConfig: { Arn: arnOf(dlq) },
          RetryPolicy: expect.objectContaining({ MaximumEventAgeInSeconds: 3600 }),
        },
      ],
    });
  });

  it('has exactly these four rules, none transforming the event', () => {
    expect(rules()).toHaveLength(4);
    for (const rule of rules()) {
      for (const target of rule.Properties.Targets) {
        expect(target.InputTransformer).toBeUndefined();
        expect(target.Input).toBeUndefined();
      }
    }
  });

  it('lets EventBridge send to the work queue and its DLQ, from the EC2 rules only', () => {
    const ec2Rules = Object.entries(template.findResources('AWS::Events::Rule'))
      .filter(([, rule]) => rule.Properties.EventPattern)
      .map(([id]) => ({ 'Fn::GetAtt': [id, 'Arn'] }));
    expect(ec2Rules).toHaveLength(3);
    for (const q of [queue, dlq]) {
      const policy = Object.values(template.findResources('AWS::SQS::QueuePolicy')).find(
        (p) => JSON.stringify(p.Properties.Queues) === JSON.stringify([ref(q)]),
      );
      const statements: QueueStatement[] = policy!.Properties.PolicyDocument.Statement;
      const fromEvents = statements.filter((s) => s.Principal?.Service === 'events.amazonaws.com');
      expect(fromEvents.map((s) => s.Condition.ArnEquals['aws:SourceArn'])).toEqual(ec2Rules);
      for (const statement of fromEvents) {
        expect(statement.Effect).toBe('Allow');
        expect([statement.Action].flat()).toContain('sqs:SendMessage');
        expect(statement.Resource).toEqual(arnOf(q));
      }
    }
  });
});
