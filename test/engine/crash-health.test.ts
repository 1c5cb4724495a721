/**
 * Crash test, break / requeue / health check: an update (or sweep) that dies right after any one
 * of its writes leaves state that a redelivery, plus at worst the sweep, completes. One scenario,
 * crashed at every write point in turn (test/support/crash-run.ts runs it):
 *  - the first lease's new host fails its activation: the resource breaks and the lease, only
 *    acquired, is requeued and served on a second host;
 *  - a second lease waits for the pool's one slot;
 *  - the first lease's host vanishes, and its periodic health check (due, sent by the sweep)
 *    breaks it: the active lease breaks with the check's reason, the host is torn down, and the
 *    waiting lease is given a third host.
 * Real DynamoDB Local; the synthetic blueprint, health-checked every few minutes.
 */
import { describe, expect, it } from 'vitest';
import {
  type SyntheticConfig,
  syntheticBlueprint,
  syntheticScopes,
} from '../../lambdas/blueprints/synthetic/index.ts';
import type { BlueprintType } from '../../lambdas/core/blueprint.ts';
import type { Lease } from '../../lambdas/core/model.ts';
import { releaseLease, requestLease } from '../../lambdas/core/use-cases.ts';
import { crashAtEveryWrite, expectNothingLeftBehind, startCrashRun } from '../support/crash-run.ts';
import { leaseNow, syntheticPool } from '../support/system.ts';

const holder = { principal: 'ci' };
const CHECK_EVERY_SECONDS = 300;
const VANISHED = 'instance i-0abc was terminated outside drydock';

/** The synthetic blueprint with a periodic health check (test only: synthetic has none). */
const checkedSynthetic: BlueprintType<SyntheticConfig> = {
  ...syntheticBlueprint,
  type: 'synthetic-checked',
  description: 'Synthetic hosts, health-checked by the sweep every few minutes (test only)',
  healthCheckEverySeconds: () => CHECK_EVERY_SECONDS,
};

/** The cloud loses the host behind a resource: its bill says so, as the plug-in reads it. */
async function vanish(store: Parameters<typeof leaseNow>[0], resourceId: string, at: number) {
  await store.appendRecord(syntheticScopes.hosts('pool'), {
    event: 'vanished',
    hostId: `synthetic-${resourceId}`,
    resourceId,
    at: new Date(at).toISOString(),
    reason: VANISHED,
    writtenAt: performance.timeOrigin + performance.now(),
  });
}

async function run(crashAfter: number) {
  const crash = await startCrashRun(crashAfter, {
    plugins: [checkedSynthetic],
    sweepsWhileWaiting: true,
  });
  const { sys } = crash;
  await syntheticPool(sys.engine, {
    type: 'synthetic-checked',
    limits: { maxResources: 1, idleTtlSeconds: 3600 },
    config: { activation: { failTimes: 1, failMessage: 'cloud-init exploded' } },
  });
  const isActive = (lease: Lease) => async () =>
    (await leaseNow(sys.store, lease.id)).status === 'active';

  // Holder-side calls are not updates: they run on the plain engine.
  const first = await requestLease(sys.engine, { type: 'host', owner: holder.principal });
  await crash.drain(isActive(first));
  const firstActive = await leaseNow(sys.store, first.id);

  const second = await requestLease(sys.engine, { type: 'host', owner: holder.principal });
  await crash.drain(async () => (await leaseNow(sys.store, second.id)).waitReason !== undefined);
  const secondWaited = await leaseNow(sys.store, second.id);

  await vanish(sys.store, firstActive.resourceId as string, sys.clock.now());
  sys.clock.advance(CHECK_EVERY_SECONDS * 1000);
  const sweep = await crash.sweep();
  await crash.drain(isActive(second));
  const secondActive = await leaseNow(sys.store, second.id);
  await releaseLease(sys.engine, second.id, holder);
  await sys.queue.drain(crash.crashing, { onError: crash.onError });

  await crash.recover();
  return {
    crash,
    sys,
    first,
    second,
    firstActive,
    secondWaited,
    secondActive,
    sweep,
  };
}

describe('crash after any write: break, requeue and health check', () => {
  it('a redelivery completes the work: nothing lost or doubled', async () => {
    await crashAtEveryWrite(
      run,
      {
        mustCross: [
          'resource.activation-failed',
          'lease.requeued',
          'resource:sweep: periodic health check',
          'resource.broken',
          'lease.broken',
          'resource.destroyed',
        ],
      },
      async (r, where) => {
        const { sys, firstActive, secondActive } = r;
        expect(firstActive.status, where).toBe('active');
        expect(firstActive.requeues, where).toBe(1);
        expect(r.secondWaited.status, where).toBe('pending');
        expect(r.sweep.periodicHealthChecks, where).toBe(1);
        expect(secondActive.status, where).toBe('active');
        expect(secondActive.resourceId, where).not.toBe(firstActive.resourceId);

        // The first lease broke with the health check's reason; the second was released.
        const first = await leaseNow(sys.store, r.first.id);
        expect(first.endReason, where).toContain(`failed its periodic health check: ${VANISHED}`);
        const second = await leaseNow(sys.store, r.second.id);
        expect(second.endReason, where).toBe('released by ci');

        // Three resources, no more: the one that failed to activate, the one that failed its
        // check, the one serving the waiter (kept warm).
        const destroyed = (await sys.store.listResourcesByType('host', 'destroyed')).items;
        expect(destroyed.map((x) => x.endReason).sort(), where).toEqual([
          'activation failed: cloud-init exploded',
          `failed its periodic health check: ${VANISHED}`,
        ]);
        const live = (await sys.store.listResourcesByType('host', 'active')).items;
        expect(
          live.map((x) => [x.id, x.leaseCount]),
          where,
        ).toEqual([[secondActive.resourceId, 0]]);

        expect(r.sweep.locksFreed, where).toBe(0);
        await expectNothingLeftBehind(r.crash, where, {
          warm: [secondActive.resourceId as string],
          leaseIds: [r.first.id, r.second.id],
        });
      },
    );
  }, 300_000);
});
