/**
 * The metrics port: what the engine measures, in words of the domain. The core never imports
 * Powertools; adapters publish the points (EMF on Lambda: lambdas/handlers/emf-metrics.ts;
 * metric lines in the local runtime with --verbose; a recorder in tests).
 *
 * Dimensions are few and bounded: blueprint id, resource type, and small closed sets (a
 * broken lease's reason class, a worker update's outcome, a command's end). Never a lease,
 * resource or command id: each distinct dimension value is a separately billed metric.
 */

export type MetricUnit = 'Count' | 'Milliseconds' | 'Seconds';

/** Dimension name -> value, e.g. `{ blueprint: 'linux-pool' }`. */
export type MetricDimensions = Readonly<Record<string, string>>;

export interface MetricPoint {
  name: string;
  unit: MetricUnit;
  value: number;
  dimensions: MetricDimensions;
}

export interface Metrics {
  /** Something happened `n` times (default 1). */
  count(name: string, dimensions?: MetricDimensions, n?: number): void;
  /** How long something took, in milliseconds. */
  duration(name: string, dimensions: MetricDimensions, ms: number): void;
  /** A level sampled now (pool sizes, an age in seconds). */
  gauge(name: string, dimensions: MetricDimensions, value: number, unit?: MetricUnit): void;
  /** Publish what was buffered (once per invocation; adapters that write at once do nothing). */
  flush(): void;
}

/** The default: measures nothing. */
export const noMetrics: Metrics = {
  count: () => {},
  duration: () => {},
  gauge: () => {},
  flush: () => {},
};

/** A Metrics that hands every point to `sink` as it is recorded (line printers, recorders). */
export function metricsTo(sink: (point: MetricPoint) => void): Metrics {
  return {
    count: (name, dimensions = {}, n = 1) => sink({ name, unit: 'Count', value: n, dimensions }),
    duration: (name, dimensions, ms) => sink({ name, unit: 'Milliseconds', value: ms, dimensions }),
    gauge: (name, dimensions, value, unit = 'Count') => sink({ name, unit, value, dimensions }),
    flush: () => {},
  };
}

/** One metric line for people: `metric LeaseTimeToActive 1234 Milliseconds blueprint=pool`. */
export function formatMetricPoint(point: MetricPoint): string {
  const dims = Object.entries(point.dimensions)
    .map(([k, v]) => ` ${k}=${v}`)
    .join('');
  return `metric ${point.name} ${point.value} ${point.unit}${dims}`;
}

/** The metric names, one place (the dashboard and the alarms use the same ones). */
export const METRIC = {
  leasesRequested: 'LeasesRequested',
  leaseWaitTime: 'LeaseWaitTime',
  leaseTimeToActive: 'LeaseTimeToActive',
  leasesActivated: 'LeasesActivated',
  leasesBroken: 'LeasesBroken',
  leasesExpired: 'LeasesExpired',
  allocations: 'Allocations',
  allocationFailures: 'AllocationFailures',
  breakerOpenings: 'BreakerOpenings',
  resourcesActivated: 'ResourcesActivated',
  setupDuration: 'SetupDuration',
  setupFailures: 'SetupFailures',
  resourcesBroken: 'ResourcesBroken',
  resourcesReclaimed: 'ResourcesReclaimed',
  commandsStarted: 'CommandsStarted',
  commandsFinished: 'CommandsFinished',
  commandsTimedOut: 'CommandsTimedOut',
  commandsFailed: 'CommandsFailed',
  commandsCancelled: 'CommandsCancelled',
  commandDuration: 'CommandDuration',
  workerUpdates: 'WorkerUpdates',
  poolLive: 'PoolLive',
  poolLeased: 'PoolLeased',
  poolIdle: 'PoolIdle',
  poolSettingUp: 'PoolSettingUp',
  poolMax: 'PoolMax',
  poolWaiting: 'PoolWaiting',
  poolOldestWait: 'PoolOldestWaitSeconds',
  /** Across pools (no dimension), for alarms: blueprints whose breaker is open now. */
  breakersOpen: 'BreakersOpen',
  /** Across pools (no dimension), for alarms: the oldest waiting lease's age. */
  oldestWait: 'OldestLeaseWaitSeconds',
} as const;

/** The CloudWatch namespace every Drydock metric is in. */
export const METRIC_NAMESPACE = 'Drydock';
