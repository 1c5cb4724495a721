/**
 * The metrics a lease lifecycle emits, as CloudWatch receives them: the real handlers on an
 * engine with the EMF adapter (as composition.ts builds it on AWS), their stdout captured and
 * parsed as embedded metric format documents.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { EmfMetrics } from '../../lambdas/handlers/emf-metrics.ts';
import { lambdaContext } from '../../lib/local/lambda-events.ts';
import { ADMIN, type HandlerEnv, handlerEnv } from './support.ts';

vi.hoisted(() => {
  if (!process.env.DRYDOCK_TEST_LOGS) process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
});

interface Emitted {
  namespace: string;
  name: string;
  unit: string;
  value: number;
  dimensions: Record<string, string>;
}

/** Every metric value in the EMF documents written to stdout so far. */
const written: string[] = [];
let env: HandlerEnv;

function emitted(): Emitted[] {
  const points: Emitted[] = [];
  for (const line of written.join('').split('\n')) {
    if (!line.startsWith('{') || !line.includes('"_aws"')) continue;
    const doc = JSON.parse(line) as Record<string, unknown> & {
      _aws: {
        CloudWatchMetrics: Array<{
          Namespace: string;
          Dimensions: string[][];
          Metrics: Array<{ Name: string; Unit: string }>;
        }>;
      };
    };
    for (const directive of doc._aws.CloudWatchMetrics) {
      const names = directive.Dimensions[0] ?? [];
      const dimensions = Object.fromEntries(names.map((n) => [n, String(doc[n])]));
      for (const m of directive.Metrics) {
        const raw = doc[m.Name];
        for (const value of Array.isArray(raw) ? raw : [raw]) {
          points.push({
            namespace: directive.Namespace,
            name: m.Name,
            unit: m.Unit,
            value: value as number,
            dimensions,
          });
        }
      }
    }
  }
  return points;
}

const sameDimensions = (a: Record<string, string>, b: Record<string, string>) =>
  JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());

function only(name: string, dimensions: Record<string, string>): Emitted[] {
  return emitted().filter((p) => p.name === name && sameDimensions(p.dimensions, dimensions));
}

function total(name: string, dimensions: Record<string, string>): number {
  return only(name, dimensions).reduce((sum, p) => sum + p.value, 0);
}

beforeAll(async () => {
  const write = process.stdout.write.bind(process.stdout);
  vi.spyOn(process.stdout, 'write').mockImplementation(((chunk: string | Uint8Array) => {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    if (text.includes('"_aws"')) {
      written.push(text);
      return true;
    }
    return write(chunk);
  }) as typeof process.stdout.write);
  // The breaker opens at the first failure and stays open 1 s, so a test sees it open and close.
  env = await handlerEnv({
    metrics: new EmfMetrics(),
    settings: { breakerThreshold: 1, breakerBaseSeconds: 1 },
  });
});

afterAll(() => {
  vi.restoreAllMocks();
});

async function createBlueprint(body: Record<string, unknown>) {
  const created = await env.api({ method: 'POST', path: '/v1/blueprints', principal: ADMIN, body });
  expect(created.status).toBe(201);
}

async function activeLease(blueprintId: string): Promise<{ id: string; resourceId: string }> {
  const created = await env.api({
    method: 'POST',
    path: '/v1/leases',
    body: { type: 'host', blueprintIds: [blueprintId] },
  });
  expect(created.status).toBe(201);
  const id = created.body.lease.id as string;
  return env.driveWorker(
    async () => {
      const { lease } = (await env.api({ method: 'GET', path: `/v1/leases/${id}` })).body;
      return lease.status === 'active' ? lease : undefined;
    },
    { message: `lease ${id} active`, timeoutMs: 20_000 },
  );
}

async function leaseGone(id: string) {
  await env.driveWorker(
    async () =>
      (await env.api({ method: 'GET', path: `/v1/leases/${id}` })).body.lease.status ===
      'destroyed',
    { message: `lease ${id} destroyed` },
  );
}

describe('EMF metrics from the handlers', () => {
  it('a lease lifecycle: requested, allocated, set up, active (time to active), released', async () => {
    // Reclaim on release: the lease's teardown is a worker's update (a release with nothing to
    // clean and a host that stays would be its own teardown, destroy-at-once.ts).
    await createBlueprint({
      id: 'life',
      type: 'synthetic',
      limits: { maxResources: 1, reclaimOnRelease: true },
    });
    const started = Date.now();
    const lease = await activeLease('life');
    const elapsed = Date.now() - started;
    await env.api({ method: 'POST', path: `/v1/leases/${lease.id}/release` });
    await leaseGone(lease.id);

    const all = emitted();
    expect(all.length).toBeGreaterThan(0);
    expect(new Set(all.map((p) => p.namespace))).toEqual(new Set(['Drydock']));
    expect(only('LeasesRequested', { resourceType: 'host' })).toEqual([
      {
        namespace: 'Drydock',
        name: 'LeasesRequested',
        unit: 'Count',
        value: 1,
        dimensions: { resourceType: 'host' },
      },
    ]);
    expect(total('Allocations', { blueprint: 'life' })).toBe(1);
    expect(total('ResourcesActivated', { blueprint: 'life' })).toBe(1);
    const [setup] = only('SetupDuration', { blueprint: 'life' });
    expect(setup).toMatchObject({ unit: 'Milliseconds' });
    expect(setup?.value).toBeGreaterThanOrEqual(0);
    expect(setup?.value).toBeLessThanOrEqual(elapsed);

    const dims = { blueprint: 'life', resourceType: 'host' };
    expect(only('LeasesActivated', dims).map((p) => [p.unit, p.value])).toEqual([['Count', 1]]);
    const timeToActive = only('LeaseTimeToActive', dims);
    expect(timeToActive).toHaveLength(1);
    expect(timeToActive[0]?.unit).toBe('Milliseconds');
    expect(timeToActive[0]?.value).toBeGreaterThanOrEqual(0);
    expect(timeToActive[0]?.value).toBeLessThanOrEqual(elapsed);
    const waited = only('LeaseWaitTime', dims);
    expect(waited).toHaveLength(1);
    expect(waited[0]?.value).toBeLessThanOrEqual(timeToActive[0]?.value ?? -1);

    // The worker's updates by outcome (bounded: the last step's action).
    expect(total('WorkerUpdates', { kind: 'lease', outcome: 'destroyed' })).toBeGreaterThanOrEqual(
      1,
    );
    // No lease or resource id anywhere in a dimension.
    for (const p of all) {
      for (const v of Object.values(p.dimensions)) expect(v).not.toMatch(/^(lease|res|cmd)-/);
    }
    // Nothing broke, expired or failed on this happy path.
    expect(all.filter((p) => /Broken|Failures|Expired/.test(p.name))).toEqual([]);
  });

  it('an allocation failure: counted per blueprint, and the breaker opening', async () => {
    await createBlueprint({
      id: 'flaky',
      type: 'synthetic',
      limits: { maxResources: 1 },
      config: { allocation: { failTimes: 1 } },
    });
    await activeLease('flaky');
    expect(only('AllocationFailures', { blueprint: 'flaky' })).toEqual([
      {
        namespace: 'Drydock',
        name: 'AllocationFailures',
        unit: 'Count',
        value: 1,
        dimensions: { blueprint: 'flaky' },
      },
    ]);
    expect(total('BreakerOpenings', { blueprint: 'flaky' })).toBe(1);
    expect(total('Allocations', { blueprint: 'flaky' })).toBe(1);
    expect(total('WorkerUpdates', { kind: 'lease', outcome: 'waited' })).toBeGreaterThanOrEqual(1);
  });

  it('a broken resource: the resource and its lease counted with their reason class', async () => {
    await createBlueprint({ id: 'fragile', type: 'synthetic', limits: { maxResources: 1 } });
    const lease = await activeLease('fragile');
    const released = await env.api({
      method: 'POST',
      path: `/v1/resources/${lease.resourceId}/release`,
      principal: ADMIN,
    });
    expect(released.status).toBe(200);
    await leaseGone(lease.id);
    expect(only('ResourcesBroken', { blueprint: 'fragile', reason: 'released-by-admin' })).toEqual([
      {
        namespace: 'Drydock',
        name: 'ResourcesBroken',
        unit: 'Count',
        value: 1,
        dimensions: { blueprint: 'fragile', reason: 'released-by-admin' },
      },
    ]);
    expect(total('LeasesBroken', { reason: 'resource-ended', resourceType: 'host' })).toBe(1);
    expect(total('SetupFailures', { blueprint: 'fragile' })).toBe(0);
  });

  it('the sweep writes the pool gauges per blueprint, and the fleet-wide ones for alarms', async () => {
    written.length = 0;
    await env.handlers.sweep({}, lambdaContext('sweep', 60_000));
    const gauge = (name: string, blueprint: string) => only(name, { blueprint })[0]?.value;
    expect(gauge('PoolMax', 'life')).toBe(1);
    expect(gauge('PoolLive', 'flaky')).toBe(1);
    expect(gauge('PoolLeased', 'flaky')).toBe(1);
    expect(gauge('PoolIdle', 'flaky')).toBe(0);
    expect(gauge('PoolWaiting', 'flaky')).toBe(0);
    expect(only('PoolOldestWaitSeconds', { blueprint: 'flaky' })[0]?.unit).toBe('Seconds');
    expect(only('OldestLeaseWaitSeconds', {})).toEqual([
      {
        namespace: 'Drydock',
        name: 'OldestLeaseWaitSeconds',
        unit: 'Seconds',
        value: 0,
        dimensions: {},
      },
    ]);
    expect(only('BreakersOpen', {})).toHaveLength(1);
  });
});
