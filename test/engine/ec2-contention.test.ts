/**
 * ec2-host under contention: 50 leases requested at once on a blueprint capped at 5 hosts, one
 * lease per host, reclaimed on release, served by 16 concurrent workers pulling from the SQS
 * emulator with duplicate deliveries injected, EC2/SSM played by the shared fake on real time.
 * Checked from the fake's own record: never more than 5 live instances tagged by the deployment,
 * one instance per resource (retried launches got theirs back by ClientToken), all terminated.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeEc2HostBlueprint } from '../../lambdas/blueprints/ec2-host/index.ts';
import { BlueprintRegistry } from '../../lambdas/core/blueprint.ts';
import { makeEngine } from '../../lambdas/core/engine.ts';
import { systemClock } from '../../lambdas/core/ports.ts';
import { createBlueprint, releaseLease, requestLease } from '../../lambdas/core/use-cases.ts';
import { SqsWorkQueue } from '../../lambdas/queue/sqs-queue.ts';
import { FakeAws } from '../support/aws-fake/index.ts';
import { startDuplicatingWorkers } from '../support/duplicating-workers.ts';
import { freshQueue, makeStore, waitFor } from '../support/env.ts';

const DEPLOYMENT = 'drydock-contention-test';
const ENV = {
  DRYDOCK_DEPLOYMENT: DEPLOYMENT,
  DRYDOCK_INSTANCE_PROFILE_ARN: 'arn:aws:iam::123456789012:instance-profile/drydock-hosts',
  DRYDOCK_COMMAND_LOG_GROUP: '/drydock/test/commands',
  DRYDOCK_EC2_HOST_RECHECK_SECONDS: '1',
};
const ci = { principal: 'ci' };
const launchCalls = (fake: FakeAws) => fake.sent.filter((s) => s.operation === 'RunInstances');

describe('ec2-host under contention', () => {
  const LEASES = 50;
  const CAP = 5;
  const WORKERS = 16;

  it(`${LEASES} leases at once, cap ${CAP} hosts, ${WORKERS} workers with duplicate deliveries: never more than ${CAP} live instances, all served and terminated`, async () => {
    const store = await makeStore({ prefix: 'ec2-contention' });
    const { client, queueUrl } = await freshQueue('ec2-contention', { maxReceiveCount: 10 });
    const fake = new FakeAws({
      clock: systemClock,
      invocationVisibleAfterMs: 50,
      deliveryDelayMs: 10,
      fleet: {
        visibleAfterMs: 50,
        runningAfterMs: 200,
        ssmOnlineAfterMs: 200,
        terminateAfterMs: 200,
      },
    });
    const engine = makeEngine({
      store,
      queue: new SqsWorkQueue({ client, queueUrl }),
      clock: systemClock,
      registry: new BlueprintRegistry().register(makeEc2HostBlueprint({ env: ENV })),
      dataDir: mkdtempSync(join(tmpdir(), 'drydock-ec2-contention-')),
      clients: fake.clients(),
      settings: {
        blueprintCacheMs: 1000,
        backoffBaseSeconds: 1,
        backoffCapSeconds: 4,
        strandAfterSeconds: 120,
      },
    });
    await createBlueprint(engine, {
      id: 'spot-builders',
      type: 'ec2-host',
      resourceType: 'host',
      limits: { maxResources: CAP, leasesPerResource: 1, reclaimOnRelease: true },
      config: { instanceTypes: ['m5.large'], subnetIds: ['subnet-0aaa', 'subnet-0bbb'] },
    });
    let seed = 2026;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const {
      failures,
      duplicates,
      stop: stopWorkers,
    } = startDuplicatingWorkers({
      client,
      queueUrl,
      engine,
      workers: WORKERS,
      duplicateRate: 0.15,
      random,
    });
    try {
      const leases = await Promise.all(
        Array.from({ length: LEASES }, () => requestLease(engine, { type: 'host', owner: 'ci' })),
      );
      const released = new Set<string>();
      await waitFor(
        async () => {
          for (const lease of (await store.listLeasesByStatus('active', { limit: 100 })).items) {
            if (released.has(lease.id)) continue;
            released.add(lease.id);
            await releaseLease(engine, lease.id, ci);
          }
          return released.size === LEASES;
        },
        { timeoutMs: 240_000, intervalMs: 100, message: `all ${LEASES} leases to become active` },
      );
      await waitFor(async () => (await store.listSlotLocks()).items.length === 0, {
        timeoutMs: 60_000,
        intervalMs: 200,
        message: 'every host reclaimed, its binding and pool slot freed',
      });
      const final = await Promise.all(leases.map((l) => store.getLease(l.id)));
      for (const lease of final) expect(lease?.endReason, lease?.id).toBe('released by ci');
      expect(fake.peakLiveInstances(DEPLOYMENT)).toBeLessThanOrEqual(CAP);
      expect(fake.peakLiveInstances(DEPLOYMENT)).toBeGreaterThan(1);
      const launched = fake.launched();
      expect(launched.filter((i) => !['shutting-down', 'terminated'].includes(i.state))).toEqual(
        [],
      );
      // One instance per resource: retried launches got the same one back (ClientToken).
      const perResource = new Map<string, number>();
      for (const i of launched) {
        const r = i.tags['drydock:resource'] as string;
        perResource.set(r, (perResource.get(r) ?? 0) + 1);
      }
      expect([...perResource.values()].every((n) => n === 1)).toBe(true);
      expect(perResource.size).toBe(LEASES);
      expect(failures).toEqual([]);
      console.log(
        `ec2 contention: ${LEASES} leases, cap ${CAP}, ${WORKERS} workers, ${duplicates()} duplicates, ` +
          `${launched.length} instances, peak ${fake.peakLiveInstances(DEPLOYMENT)} live, ` +
          `${launchCalls(fake).length} RunInstances calls`,
      );
    } finally {
      await stopWorkers();
    }
  }, 300_000);
});
