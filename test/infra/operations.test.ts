/**
 * Operating it (issue 12): one topic as the action of every alarm, an alarm for each thing that
 * needs a person, the dashboard, tracing everywhere.
 */
import { Duration } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { logicalId, newStack, ref, synth } from './support.ts';

describe('Operations', () => {
  const { stack, template } = synth({ oldestWaitAlarmThreshold: Duration.minutes(20) });
  const topic = stack.operations.alarmTopic;
  const alarms = template.findResources('AWS::CloudWatch::Alarm');
  const alarmJson = Object.values(alarms).map((a) => JSON.stringify(a.Properties));

  /** The one alarm whose properties match, with the topic as its alarm and OK action. */
  function expectAlarm(properties: Record<string, unknown>): void {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      ...properties,
      AlarmActions: [ref(topic)],
      OKActions: [ref(topic)],
    });
  }

  it('creates the alarm topic (TLS only) and outputs its ARN', () => {
    template.resourceCountIs('AWS::SNS::Topic', 1);
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      },
    });
    template.hasOutput('AlarmTopicArn', { Value: ref(topic) });
    template.resourceCountIs('AWS::SNS::Subscription', 0);
  });

  it('gives every alarm the topic as its alarm and OK action', () => {
    expect(Object.keys(alarms)).toHaveLength(15);
    for (const [id, alarm] of Object.entries(alarms)) {
      expect(alarm.Properties.AlarmActions, id).toEqual([ref(topic)]);
      expect(alarm.Properties.OKActions, id).toEqual([ref(topic)]);
      expect(alarm.Properties.AlarmDescription, id).toMatch(/\. .+/); // what it means, what to do
    }
  });

  it('alarms when the DLQ is not empty, and stays right when the queue goes idle', () => {
    expectAlarm({
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [
        {
          Name: 'QueueName',
          Value: { 'Fn::GetAtt': [logicalId(stack.workQueue.deadLetterQueue), 'QueueName'] },
        },
      ],
      Threshold: 1,
      // Missing data (an idle queue) keeps the state: raised stays raised, OK stays OK.
      TreatMissingData: 'ignore',
    });
  });

  it("alarms on the oldest work message's age", () => {
    expectAlarm({
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateAgeOfOldestMessage',
      Threshold: 900,
    });
  });

  describe.each(['api', 'worker', 'sweep', 'setup'])('the %s function', (name) => {
    const fn = {
      api: stack.apiFunction,
      worker: stack.workerFunction,
      sweep: stack.sweepFunction,
      setup: stack.setupFunction,
    }[name as 'api'];

    it.each(['Errors', 'Throttles'])('alarms on its %s', (metric) => {
      expectAlarm({
        Namespace: 'AWS/Lambda',
        MetricName: metric,
        Dimensions: [{ Name: 'FunctionName', Value: ref(fn) }],
        Statistic: 'Sum',
        Period: 300,
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'notBreaching',
      });
    });
  });

  it('alarms on the API 5xx rate (percent of requests)', () => {
    expectAlarm({
      Threshold: 5,
      ComparisonOperator: 'GreaterThanThreshold',
      Metrics: Match.arrayWith([
        Match.objectLike({ Expression: '100 * FILL(errors, 0) / MAX([FILL(requests, 0), 1])' }),
        Match.objectLike({
          Id: 'errors',
          MetricStat: Match.objectLike({ Metric: Match.objectLike({ MetricName: '5XXError' }) }),
        }),
        Match.objectLike({
          Id: 'requests',
          MetricStat: Match.objectLike({ Metric: Match.objectLike({ MetricName: 'Count' }) }),
        }),
      ]),
    });
  });

  it('alarms on setup executions that failed or timed out', () => {
    const stateMachine = ref(stack.setupWorkflow.stateMachine);
    expectAlarm({
      Threshold: 1,
      Metrics: Match.arrayWith([
        Match.objectLike({ Expression: 'FILL(failed, 0) + FILL(timedOut, 0)' }),
        Match.objectLike({
          Id: 'failed',
          MetricStat: Match.objectLike({
            Metric: {
              Namespace: 'AWS/States',
              MetricName: 'ExecutionsFailed',
              Dimensions: [{ Name: 'StateMachineArn', Value: stateMachine }],
            },
          }),
        }),
        Match.objectLike({
          Id: 'timedOut',
          MetricStat: Match.objectLike({
            Metric: Match.objectLike({ MetricName: 'ExecutionsTimedOut' }),
          }),
        }),
      ]),
    });
  });

  it('alarms on DynamoDB throttled requests of every operation the store uses', () => {
    const throttle = alarmJson.filter((a) => a.includes('ThrottledRequests'));
    expect(throttle).toHaveLength(1);
    for (const operation of ['GetItem', 'PutItem', 'UpdateItem', 'Query', 'TransactWriteItems']) {
      expect(throttle[0]).toContain(`"Value":"${operation}"`);
    }
    expect(throttle[0]).toContain(`"Ref":"${logicalId(stack.table.table)}"`);
    expect(throttle[0]).toContain(`"AlarmActions":[{"Ref":"${logicalId(topic)}"}]`);
  });

  it('alarms when a lease waited longer than the threshold', () => {
    expectAlarm({
      Namespace: 'Drydock',
      MetricName: 'OldestLeaseWaitSeconds',
      Statistic: 'Maximum',
      Threshold: 1200,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
  });

  it("alarms when a blueprint's circuit breaker is open", () => {
    expectAlarm({
      Namespace: 'Drydock',
      MetricName: 'BreakersOpen',
      Statistic: 'Maximum',
      Threshold: 1,
    });
  });

  it('has a dashboard with pools, time to active, waits, failures, and what runs under them', () => {
    const dashboards = Object.values(template.findResources('AWS::CloudWatch::Dashboard'));
    expect(dashboards).toHaveLength(1);
    expect(dashboards[0]?.Properties.DashboardName).toBe('Drydock-operations');
    template.hasOutput('DashboardName', {});
    const body = JSON.stringify(dashboards[0]?.Properties.DashboardBody);
    for (const expected of [
      'MetricName=\\\\\\"PoolLeased\\\\\\"',
      'MetricName=\\\\\\"PoolMax\\\\\\"',
      'MetricName=\\\\\\"LeaseTimeToActive\\\\\\"',
      "'p50'",
      "'p95'",
      'MetricName=\\\\\\"PoolWaiting\\\\\\"',
      'OldestLeaseWaitSeconds',
      'MetricName=\\\\\\"LeasesBroken\\\\\\"',
      'MetricName=\\\\\\"WorkerUpdates\\\\\\"',
      '\\"AWS/Lambda\\",\\"Errors\\"',
      '\\"AWS/Lambda\\",\\"Throttles\\"',
      '\\"AWS/Lambda\\",\\"Duration\\"',
      'ApproximateAgeOfOldestMessage',
      'ApproximateNumberOfMessagesVisible',
      'ReadThrottleEvents',
      'ConsumedWriteCapacityUnits',
      'ExecutionsFailed',
      'ExecutionsSucceeded',
      '5XXError',
    ]) {
      expect(body, expected).toContain(expected);
    }
  });

  it('traces every function with X-Ray', () => {
    const functions = Object.values(template.findResources('AWS::Lambda::Function'));
    expect(functions.length).toBeGreaterThanOrEqual(4);
    for (const fn of functions) expect(fn.Properties.TracingConfig).toEqual({ Mode: 'Active' });
  });

  it('subscribes the e-mail address given (context drydock:alarmEmail)', () => {
    const { template: withEmail } = synth({ alarmEmail: 'oncall@example.com' });
    withEmail.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'oncall@example.com',
    });
  });

  it('notifies an existing topic instead (context drydock:alarmTopicArn)', () => {
    const arn = 'arn:aws:sns:eu-west-1:123456789012:ops-pager';
    const { template: existing } = synth({ alarmTopicArn: arn });
    existing.resourceCountIs('AWS::SNS::Topic', 0);
    for (const alarm of Object.values(existing.findResources('AWS::CloudWatch::Alarm'))) {
      expect(alarm.Properties.AlarmActions).toEqual([arn]);
    }
  });

  it('rejects a bad e-mail address or topic ARN, showing the value', () => {
    expect(() => newStack({ alarmEmail: 'nobody' })).toThrow(
      /alarmEmail must be an e-mail address, got "nobody"/,
    );
    expect(() => newStack({ alarmTopicArn: 'ops-pager' })).toThrow(
      /alarmTopicArn must be an SNS topic ARN, got "ops-pager"/,
    );
  });
});
