/**
 * The metrics port on Lambda: Powertools Metrics, embedded metric format (EMF) on stdout, which
 * CloudWatch Logs turns into metrics with no API call in the request path.
 *
 * EMF gives every metric of one JSON document the same dimension set, and the engine's points
 * carry different ones (per blueprint, per resource type ...). So points are buffered per
 * dimension set and each set becomes one document when the invocation ends (`flushMetrics`, a
 * middy middleware on every handler). Powertools' default `service` dimension is dropped: one
 * count from the api and the worker function must add up to one metric, not two.
 */
import { Metrics as PowertoolsMetrics } from '@aws-lambda-powertools/metrics';
import type middy from '@middy/core';
import {
  METRIC_NAMESPACE,
  type MetricDimensions,
  type MetricPoint,
  type Metrics,
  metricsTo,
} from '../core/metrics.ts';
import { type EngineSource, engineOf, logger } from './runtime.ts';

export interface EmfMetricsOptions {
  /** @default METRIC_NAMESPACE ('Drydock') */
  namespace?: string;
}

export class EmfMetrics implements Metrics {
  readonly #namespace: string;
  readonly #groups = new Map<string, { dimensions: MetricDimensions; points: MetricPoint[] }>();
  readonly #record = metricsTo((point) => this.#add(point));

  constructor(options: EmfMetricsOptions = {}) {
    this.#namespace = options.namespace ?? METRIC_NAMESPACE;
  }

  count: Metrics['count'] = (...args) => this.#record.count(...args);
  duration: Metrics['duration'] = (...args) => this.#record.duration(...args);
  gauge: Metrics['gauge'] = (...args) => this.#record.gauge(...args);

  /** One EMF document per dimension set, written to stdout; the buffer is emptied. */
  flush(): void {
    const groups = [...this.#groups.values()];
    this.#groups.clear();
    for (const { dimensions, points } of groups) {
      const out = new PowertoolsMetrics({ namespace: this.#namespace, logger });
      out.clearDefaultDimensions();
      if (Object.keys(dimensions).length > 0) out.addDimensions({ ...dimensions });
      for (const p of points) out.addMetric(p.name, p.unit, p.value);
      out.publishStoredMetrics();
    }
  }

  #add(point: MetricPoint): void {
    const key = JSON.stringify(Object.entries(point.dimensions).sort());
    let group = this.#groups.get(key);
    if (!group) {
      group = { dimensions: point.dimensions, points: [] };
      this.#groups.set(key, group);
    }
    group.points.push(point);
  }
}

/**
 * Publishes the engine's buffered metrics when an invocation ends, failed or not (a failed
 * update's counts happened all the same).
 */
export function flushMetrics<E, R>(engine: EngineSource): middy.MiddlewareObj<E, R> {
  const flush = () => {
    try {
      engineOf(engine).metrics.flush();
    } catch (err) {
      // Metrics must never fail the work they describe.
      logger.warn('could not publish metrics', { error: err as Error });
    }
  };
  return { after: flush, onError: flush };
}
