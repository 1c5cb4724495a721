import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { Construct } from 'constructs';
import { METRIC, METRIC_NAMESPACE } from '../../lambdas/core/metrics.ts';
import type { DrydockFunction } from './drydock-function.ts';
import type { DrydockTable } from './drydock-table.ts';
import type { LeaseApi } from './lease-api.ts';
import type { SetupWorkflow } from './setup-workflow.ts';
import type { WorkQueue } from './work-queue.ts';

export interface OperationsDashboardProps {
  readonly functions: DrydockFunction[];
  readonly workQueue: WorkQueue;
  readonly table: DrydockTable;
  readonly api: LeaseApi;
  readonly setupWorkflow: SetupWorkflow;
  /** Shown as a status row on top. */
  readonly alarms: cloudwatch.IAlarm[];
}

const MINUTE = Duration.minutes(1);
const FIVE_MINUTES = Duration.minutes(5);

/**
 * Per-blueprint series come from SEARCH expressions: blueprints are data an admin creates at
 * any time, so the dashboard finds whatever blueprints publish rather than listing them.
 */
function search(
  metricName: string,
  dimensions: string[],
  statistic: string,
  label: string,
  period = MINUTE,
): cloudwatch.MathExpression {
  const schema = [METRIC_NAMESPACE, ...dimensions].join(',');
  return new cloudwatch.MathExpression({
    expression: `SEARCH('{${schema}} MetricName="${metricName}"', '${statistic}', ${period.toSeconds()})`,
    label,
    period,
  });
}

/** A Drydock metric without dimensions (the fleet-wide ones, the command counts). */
function fleet(metricName: string, statistic: string, label: string): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: METRIC_NAMESPACE,
    metricName,
    statistic,
    label,
    period: MINUTE,
  });
}

/**
 * The operator's one page: are leases served and how fast, how full the pools are, what is
 * failing and why, and the health of the functions, queue, table and setup workflow under it.
 */
export class OperationsDashboard extends Construct {
  public readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: OperationsDashboardProps) {
    super(scope, id);
    const { functions, workQueue, table, api, setupWorkflow } = props;
    const machine = setupWorkflow.stateMachine;
    const graph = (title: string, left: cloudwatch.IMetric[], right: cloudwatch.IMetric[] = []) =>
      new cloudwatch.GraphWidget({ title, left, right, width: 12, height: 6 });

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: `${Stack.of(this).stackName}-operations`,
      defaultInterval: Duration.hours(3),
      widgets: [
        [new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: props.alarms, width: 24 })],
        [
          graph('Pool utilisation per blueprint (leased / live / max)', [
            search(METRIC.poolLeased, ['blueprint'], 'Maximum', 'leased'),
            search(METRIC.poolLive, ['blueprint'], 'Maximum', 'live'),
            search(METRIC.poolMax, ['blueprint'], 'Maximum', 'max'),
          ]),
          graph('Lease time to active (p50, p95) and time waiting (p95)', [
            search(
              METRIC.leaseTimeToActive,
              ['blueprint', 'resourceType'],
              'p50',
              'to active p50',
              FIVE_MINUTES,
            ),
            search(
              METRIC.leaseTimeToActive,
              ['blueprint', 'resourceType'],
              'p95',
              'to active p95',
              FIVE_MINUTES,
            ),
            search(
              METRIC.leaseWaitTime,
              ['blueprint', 'resourceType'],
              'p95',
              'waiting p95',
              FIVE_MINUTES,
            ),
          ]),
        ],
        [
          graph(
            'Waiting leases and the oldest wait',
            [search(METRIC.poolWaiting, ['blueprint'], 'Maximum', 'waiting')],
            [fleet(METRIC.oldestWait, 'Maximum', 'oldest wait (s)')],
          ),
          graph(
            'Failures by reason class',
            [
              search(
                METRIC.leasesBroken,
                ['reason', 'resourceType'],
                'Sum',
                'leases broken',
                FIVE_MINUTES,
              ),
              search(
                METRIC.resourcesBroken,
                ['blueprint', 'reason'],
                'Sum',
                'resources broken',
                FIVE_MINUTES,
              ),
              search(
                METRIC.allocationFailures,
                ['blueprint'],
                'Sum',
                'allocation failures',
                FIVE_MINUTES,
              ),
              search(METRIC.setupFailures, ['blueprint'], 'Sum', 'setup failures', FIVE_MINUTES),
            ],
            [fleet(METRIC.breakersOpen, 'Maximum', 'breakers open')],
          ),
        ],
        [
          graph('Worker updates by outcome (waited / stale = wasted work)', [
            search(METRIC.workerUpdates, ['kind', 'outcome'], 'Sum', 'updates', FIVE_MINUTES),
          ]),
          graph(
            'Commands',
            [
              fleet(METRIC.commandsStarted, 'Sum', 'started'),
              fleet(METRIC.commandsFinished, 'Sum', 'finished'),
              fleet(METRIC.commandsTimedOut, 'Sum', 'timed out'),
              fleet(METRIC.commandsFailed, 'Sum', 'failed'),
            ],
            [fleet(METRIC.commandDuration, 'p95', 'duration p95 (ms)')],
          ),
        ],
        [
          graph(
            'Lambda errors and throttles',
            functions.flatMap((fn) => [
              fn.metricErrors({
                label: `${fn.handlerName} errors`,
                period: FIVE_MINUTES,
                statistic: 'Sum',
              }),
              fn.metricThrottles({
                label: `${fn.handlerName} throttles`,
                period: FIVE_MINUTES,
                statistic: 'Sum',
              }),
            ]),
          ),
          graph(
            'Lambda duration (p95)',
            functions.map((fn) =>
              fn.metricDuration({ label: fn.handlerName, period: FIVE_MINUTES, statistic: 'p95' }),
            ),
          ),
        ],
        [
          graph(
            'Work queue depth and age; dead-letter queue',
            [
              workQueue.queue.metricApproximateNumberOfMessagesVisible({
                label: 'queued',
                period: MINUTE,
                statistic: 'Maximum',
              }),
              workQueue.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
                label: 'dead letters',
                period: MINUTE,
                statistic: 'Maximum',
              }),
            ],
            [
              workQueue.queue.metricApproximateAgeOfOldestMessage({
                label: 'oldest (s)',
                period: MINUTE,
                statistic: 'Maximum',
              }),
            ],
          ),
          graph(
            'API requests and errors',
            [
              api.restApi.metricCount({
                label: 'requests',
                period: FIVE_MINUTES,
                statistic: 'Sum',
              }),
            ],
            [
              api.restApi.metricClientError({
                label: '4xx',
                period: FIVE_MINUTES,
                statistic: 'Sum',
              }),
              api.restApi.metricServerError({
                label: '5xx',
                period: FIVE_MINUTES,
                statistic: 'Sum',
              }),
            ],
          ),
        ],
        [
          graph(
            'DynamoDB throttles and consumed capacity',
            [
              table.table.metricConsumedReadCapacityUnits({
                label: 'read units',
                period: FIVE_MINUTES,
                statistic: 'Sum',
              }),
              table.table.metricConsumedWriteCapacityUnits({
                label: 'write units',
                period: FIVE_MINUTES,
                statistic: 'Sum',
              }),
            ],
            [
              table.table.metric('ReadThrottleEvents', {
                label: 'read throttles',
                period: FIVE_MINUTES,
                statistic: 'Sum',
              }),
              table.table.metric('WriteThrottleEvents', {
                label: 'write throttles',
                period: FIVE_MINUTES,
                statistic: 'Sum',
              }),
            ],
          ),
          graph('Setup executions (Step Functions)', [
            machine.metricSucceeded({ label: 'succeeded', period: FIVE_MINUTES, statistic: 'Sum' }),
            machine.metricFailed({ label: 'failed', period: FIVE_MINUTES, statistic: 'Sum' }),
            machine.metricTimedOut({ label: 'timed out', period: FIVE_MINUTES, statistic: 'Sum' }),
            machine.metricAborted({ label: 'aborted', period: FIVE_MINUTES, statistic: 'Sum' }),
          ]),
        ],
      ],
    });
  }
}
