/**
 * Metrics from what the engine already writes. Every event worth counting (a lease activated,
 * a resource broken, a command finished ...) is a typed log event appended in the same
 * transaction as the state change it describes, so the metric is taken from the transaction
 * once it has committed: a write that lost its condition (a duplicate delivery, a racing
 * worker) counts nothing, and no extra read is made for a metric. The sibling writes of the
 * transaction supply what the log line does not carry (the lease's type, the resource's
 * blueprint, the command's new status).
 */

import { METRIC, type MetricDimensions, type Metrics } from './metrics.ts';
import type { LogEvent } from './model.ts';
import type { Store, TxWrite } from './ports.ts';

/** The store, measuring every transaction that commits. */
export function metricsOnCommit(store: Store, metrics: Metrics): Store {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop !== 'transact') return Reflect.get(target, prop, receiver);
      return async (writes: TxWrite[]) => {
        await target.transact(writes);
        recordTransaction(metrics, writes);
      };
    },
  });
}

/** What one committed transaction means in metrics. */
export function recordTransaction(metrics: Metrics, writes: TxWrite[]): void {
  for (const write of writes) {
    if (write.op === 'appendLog') recordEvent(metrics, write.event, writes);
  }
}

function recordEvent(metrics: Metrics, event: LogEvent, writes: TxWrite[]): void {
  const data = event.data ?? {};
  const str = (key: string): string | undefined =>
    typeof data[key] === 'string' ? (data[key] as string) : undefined;
  const sinceMs = (iso: string | undefined): number | undefined =>
    iso === undefined ? undefined : Math.max(0, Date.parse(event.at) - Date.parse(iso));
  const leaseType = () => str('resourceType') ?? leaseTypeOf(writes, event.objectId);
  const dims = (d: Record<string, string | undefined>): MetricDimensions =>
    Object.fromEntries(Object.entries(d).filter((e): e is [string, string] => e[1] !== undefined));

  switch (event.type) {
    case 'lease.queued':
      metrics.count(METRIC.leasesRequested, dims({ resourceType: str('type') }));
      return;
    case 'lease.acquired': {
      const d = dims({ resourceType: leaseType(), blueprint: str('blueprintId') });
      const waited = sinceMs(str('requestedAt'));
      if (waited !== undefined) metrics.duration(METRIC.leaseWaitTime, d, waited);
      return;
    }
    case 'lease.activated': {
      const d = dims({ resourceType: leaseType(), blueprint: str('blueprintId') });
      metrics.count(METRIC.leasesActivated, d);
      const toActive = sinceMs(str('requestedAt'));
      if (toActive !== undefined) metrics.duration(METRIC.leaseTimeToActive, d, toActive);
      return;
    }
    case 'lease.broken':
    case 'lease.activation-failed':
      metrics.count(
        METRIC.leasesBroken,
        dims({
          resourceType: leaseType(),
          reason: reasonClass(event.type, str('reason') ?? ''),
        }),
      );
      return;
    case 'lease.expired':
      metrics.count(METRIC.leasesExpired, dims({ resourceType: leaseType() }));
      return;
    case 'resource.allocated':
      metrics.count(
        METRIC.allocations,
        dims({ blueprint: resourceBlueprintOf(writes, event.objectId) }),
      );
      return;
    case 'blueprint.allocation-failed':
      metrics.count(METRIC.allocationFailures, { blueprint: event.objectId });
      return;
    case 'blueprint.backing-off':
      metrics.count(METRIC.breakerOpenings, { blueprint: event.objectId });
      return;
    case 'resource.activated': {
      const d = dims({ blueprint: str('blueprintId') });
      metrics.count(METRIC.resourcesActivated, d);
      const setup = sinceMs(str('createdAt'));
      if (setup !== undefined) metrics.duration(METRIC.setupDuration, d, setup);
      return;
    }
    case 'resource.activation-failed':
      metrics.count(METRIC.setupFailures, dims({ blueprint: str('blueprintId') }));
      metrics.count(
        METRIC.resourcesBroken,
        dims({
          blueprint: str('blueprintId'),
          reason: reasonClass(event.type, str('reason') ?? ''),
        }),
      );
      return;
    case 'resource.broken':
      metrics.count(
        METRIC.resourcesBroken,
        dims({
          blueprint: str('blueprintId'),
          reason: reasonClass(event.type, str('reason') ?? ''),
        }),
      );
      return;
    case 'resource.reclaimed':
      metrics.count(METRIC.resourcesReclaimed, dims({ blueprint: str('blueprintId') }));
      return;
    case 'lease.command-queued':
      metrics.count(METRIC.commandsStarted);
      return;
    case 'lease.command':
      recordCommandEnd(metrics, data, commandStatusOf(writes, str('commandId')));
      return;
    default:
      return;
  }
}

function recordCommandEnd(
  metrics: Metrics,
  data: Record<string, unknown>,
  status: string | undefined,
): void {
  if (status === 'failed') metrics.count(METRIC.commandsFailed);
  else if (status === 'cancelled') metrics.count(METRIC.commandsCancelled);
  else if (status === 'finished') {
    metrics.count(data.timedOut === true ? METRIC.commandsTimedOut : METRIC.commandsFinished);
  }
  if (typeof data.durationMs === 'number')
    metrics.duration(METRIC.commandDuration, {}, data.durationMs);
}

/** The reason classes a broken lease or resource is counted under (a closed set). */
export const REASON_CLASSES = [
  'activation-failed',
  'setup-failed',
  'setup-timeout',
  'health-check',
  'resource-ended',
  'released-by-admin',
  'blueprint-deleted',
  'other',
] as const;
export type ReasonClass = (typeof REASON_CLASSES)[number];

/** A free-text reason's class: dimensions must be bounded, reasons are not. */
export function reasonClass(logType: string, reason: string): ReasonClass {
  if (logType === 'lease.activation-failed') return 'activation-failed';
  if (/^setup did not finish within/.test(reason)) return 'setup-timeout';
  if (logType === 'resource.activation-failed') return 'setup-failed';
  if (/health check/.test(reason)) return 'health-check';
  if (/^released by /.test(reason)) return 'released-by-admin';
  if (/^blueprint '.*' was deleted$/.test(reason)) return 'blueprint-deleted';
  if (/ broke: | was (released|destroyed|broken) \(|disappeared/.test(reason)) {
    return 'resource-ended';
  }
  return 'other';
}

function leaseTypeOf(writes: TxWrite[], leaseId: string): string | undefined {
  for (const w of writes) {
    if ((w.op === 'updateLease' || w.op === 'markLeaseWaiting') && w.id === leaseId) return w.type;
    if (w.op === 'createLease' && w.lease.id === leaseId) return w.lease.type;
  }
  return undefined;
}

function resourceBlueprintOf(writes: TxWrite[], resourceId: string): string | undefined {
  for (const w of writes) {
    if (w.op === 'createResource' && w.resource.id === resourceId) return w.resource.blueprintId;
  }
  return undefined;
}

function commandStatusOf(writes: TxWrite[], commandId: string | undefined): string | undefined {
  for (const w of writes) {
    if (w.op === 'updateCommand' && w.id === commandId && typeof w.set.status === 'string') {
      return w.set.status;
    }
  }
  return undefined;
}
