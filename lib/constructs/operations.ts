import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { METRIC, METRIC_NAMESPACE } from '../../lambdas/core/metrics.ts';
import type { DrydockFunction } from './drydock-function.ts';
import type { DrydockTable } from './drydock-table.ts';
import type { LeaseApi } from './lease-api.ts';
import { OperationsDashboard } from './operations-dashboard.ts';
import type { SetupWorkflow } from './setup-workflow.ts';
import { checkDuration, invalidProp } from './validate.ts';
import type { WorkQueue } from './work-queue.ts';

export interface OperationsProps {
  readonly functions: DrydockFunction[];
  readonly workQueue: WorkQueue;
  readonly table: DrydockTable;
  readonly api: LeaseApi;
  readonly setupWorkflow: SetupWorkflow;

  /**
   * An existing topic to notify instead of creating one.
   *
   * @default - a topic created here
   */
  readonly alarmTopic?: sns.ITopic;

  /**
   * Subscribe this address to the alarm topic (the person confirms the subscription once).
   *
   * @default - no subscription: subscribe people or a chat integration to the topic yourself
   */
  readonly alarmEmail?: string;

  /**
   * Alarm when a lease has waited this long for a resource.
   *
   * @default Duration.minutes(30)
   */
  readonly oldestWaitAlarmThreshold?: Duration;

  /**
   * Alarm when more than this share of API requests fail with 5xx over 5 minutes, in percent.
   *
   * @default 5
   */
  readonly api5xxAlarmPercent?: number;
}

/** The DynamoDB operations the store uses: their throttled requests are what matters. */
const TABLE_OPERATIONS = [
  dynamodb.Operation.GET_ITEM,
  dynamodb.Operation.PUT_ITEM,
  dynamodb.Operation.UPDATE_ITEM,
  dynamodb.Operation.DELETE_ITEM,
  dynamodb.Operation.QUERY,
  dynamodb.Operation.BATCH_GET_ITEM,
  dynamodb.Operation.TRANSACT_WRITE_ITEMS,
];

/**
 * What tells a person that Drydock needs them: one SNS topic (created here, or an existing one)
 * as the alarm and OK action of every alarm, the alarms themselves, and the dashboard. Every
 * alarm's description says what it means and what to do first (README "Operating" in full).
 */
export class Operations extends Construct {
  public readonly alarmTopic: sns.ITopic;
  public readonly alarms: cloudwatch.Alarm[] = [];
  public readonly dashboard: OperationsDashboard;

  constructor(scope: Construct, id: string, props: OperationsProps) {
    super(scope, id);
    checkDuration(
      this,
      'oldestWaitAlarmThreshold',
      props.oldestWaitAlarmThreshold,
      60,
      7 * 24 * 3600,
    );
    if (
      props.api5xxAlarmPercent !== undefined &&
      !(props.api5xxAlarmPercent > 0 && props.api5xxAlarmPercent <= 100)
    ) {
      throw invalidProp(
        this,
        'api5xxAlarmPercent',
        'a percentage above 0, at most 100',
        props.api5xxAlarmPercent,
      );
    }
    if (props.alarmEmail !== undefined && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(props.alarmEmail)) {
      throw invalidProp(this, 'alarmEmail', 'an e-mail address', props.alarmEmail);
    }

    this.alarmTopic =
      props.alarmTopic ??
      new sns.Topic(this, 'AlarmTopic', {
        displayName: 'Drydock alarms',
        enforceSSL: true,
      });
    if (props.alarmEmail) {
      this.alarmTopic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
    }

    const { workQueue, table, api, setupWorkflow } = props;
    // The work queue's own two alarms (DLQ not empty, oldest message) notify the same topic.
    this.#notify(workQueue.deadLetterQueueDepthAlarm);
    this.#notify(workQueue.oldestMessageAgeAlarm);

    for (const fn of props.functions) {
      const name = fn.handlerName;
      this.#alarm(`${fn.node.id}Errors`, {
        alarmDescription:
          `The Drydock ${name} function failed invocations. Read its log group for the errors ` +
          '(level ERROR); a failing sweep stops expiry and re-drives, a failing worker stops leases.',
        metric: fn.metricErrors({ period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM }),
        threshold: 1,
      });
      this.#alarm(`${fn.node.id}Throttles`, {
        alarmDescription:
          `The Drydock ${name} function was throttled. Check the account's Lambda concurrency ` +
          '(and the worker maximum concurrency) before raising limits.',
        metric: fn.metricThrottles({
          period: Duration.minutes(5),
          statistic: cloudwatch.Stats.SUM,
        }),
        threshold: 1,
      });
    }

    const percent = props.api5xxAlarmPercent ?? 5;
    this.#alarm('Api5xxRate', {
      alarmDescription:
        `More than ${percent}% of lease API requests failed with 5xx over 5 minutes. Read the api ` +
        "function's log (the 5xx answers carry a request id) and its Errors alarm.",
      metric: new cloudwatch.MathExpression({
        label: 'API 5xx %',
        expression: '100 * FILL(errors, 0) / MAX([FILL(requests, 0), 1])',
        usingMetrics: {
          errors: api.restApi.metricServerError({ statistic: cloudwatch.Stats.SUM }),
          requests: api.restApi.metricCount({ statistic: cloudwatch.Stats.SUM }),
        },
        period: Duration.minutes(5),
      }),
      threshold: percent,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    });

    const machine = setupWorkflow.stateMachine;
    this.#alarm('SetupExecutionsFailed', {
      alarmDescription:
        'Resource setup executions failed or timed out: resources broke while being set up. ' +
        "Read the resource's log (`drydock logs res-...`) and the blueprint's setup commands.",
      metric: new cloudwatch.MathExpression({
        label: 'setup executions failed or timed out',
        expression: 'FILL(failed, 0) + FILL(timedOut, 0)',
        usingMetrics: {
          failed: machine.metricFailed({ statistic: cloudwatch.Stats.SUM }),
          timedOut: machine.metricTimedOut({ statistic: cloudwatch.Stats.SUM }),
        },
        period: Duration.minutes(5),
      }),
      threshold: 1,
    });

    this.#alarm('TableThrottles', {
      alarmDescription:
        'DynamoDB throttled Drydock requests. The table is on-demand: look for a hot partition ' +
        '(one busy blueprint or lease type) and at the worker concurrency.',
      metric: table.table.metricThrottledRequestsForOperations({
        operations: TABLE_OPERATIONS,
        period: Duration.minutes(5),
      }),
      threshold: 1,
    });

    const waitThreshold = props.oldestWaitAlarmThreshold ?? Duration.minutes(30);
    this.#alarm('OldestLeaseWait', {
      alarmDescription:
        `A lease has waited ${waitThreshold.toHumanString()} or more for a resource. Run ` +
        '`drydock status`: a pool at its max, a blueprint backing off, or none can serve it.',
      metric: new cloudwatch.Metric({
        namespace: METRIC_NAMESPACE,
        metricName: METRIC.oldestWait,
        statistic: cloudwatch.Stats.MAXIMUM,
        period: Duration.minutes(5),
      }),
      threshold: waitThreshold.toSeconds(),
    });

    this.#alarm('BreakerOpen', {
      alarmDescription:
        "A blueprint's circuit breaker is open: its allocations or setups keep failing, so it " +
        'allocates nothing for a while. `drydock status` names it; `drydock logs <blueprint>` says why.',
      metric: new cloudwatch.Metric({
        namespace: METRIC_NAMESPACE,
        metricName: METRIC.breakersOpen,
        statistic: cloudwatch.Stats.MAXIMUM,
        period: Duration.minutes(5),
      }),
      threshold: 1,
    });

    this.dashboard = new OperationsDashboard(this, 'Dashboard', {
      functions: props.functions,
      workQueue,
      table,
      api,
      setupWorkflow,
      alarms: [
        workQueue.deadLetterQueueDepthAlarm,
        workQueue.oldestMessageAgeAlarm,
        ...this.alarms,
      ],
    });
  }

  /** An alarm at >= threshold over one period; missing data is no news (quiet is fine). */
  #alarm(
    id: string,
    props: Pick<cloudwatch.AlarmProps, 'alarmDescription' | 'metric' | 'threshold'> &
      Partial<Pick<cloudwatch.AlarmProps, 'comparisonOperator'>>,
  ): cloudwatch.Alarm {
    const alarm = new cloudwatch.Alarm(this, id, {
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      ...props,
    });
    this.alarms.push(alarm);
    this.#notify(alarm);
    return alarm;
  }

  #notify(alarm: cloudwatch.Alarm): void {
    const action = new actions.SnsAction(this.alarmTopic);
    alarm.addAlarmAction(action);
    alarm.addOkAction(action);
  }
}
