/**
 * Crash test, break / requeue / health check: an update (or sweep) that dies right after any one
 * of its writes leaves state that a redelivery, plus at worst the sweep, completes. Two
 * scenarios, each crashed at every write point in turn (test/support/crash-run.ts runs them); in
 * both, a first lease is active on the pool's one host while a second waits for the slot, the
 * host breaks, the active lease breaks with the reason, the host is torn down, and the waiting
 * lease is given a new host:
 *  - periodic: the first lease's first host fails its activation (the resource breaks and the
 *    lease, only acquired, is requeued onto a second host); then that host vanishes and its
 *    periodic health check, sent by the sweep, breaks it;
 *  - suspect: the host vanishes after the holder's first command; the second command finds it
 *    gone, which marks it suspect, and the health check that follows breaks it.
 * Real DynamoDB Local; the synthetic blueprint (with a periodic check, for the first).
 */
import { describe, expect, it } from 'vitest';
import {
  hostTimeline,
  type SyntheticConfig,
  syntheticBlueprint,
  syntheticScopes,
} from '../../lambdas/blueprints/synthetic/index.ts';
import type { BlueprintType } from '../../lambdas/core/blueprint.ts';
import {
  type CommandRecord,
  ENDED_COMMAND_STATUSES,
  type Lease,
} from '../../lambdas/core/model.ts';
import { releaseLease, requestLease, startCommand } from '../../lambdas/core/use-cases.ts';
import {
  type CrashRun,
  crashAtEveryWrite,
  expectNothingLeftBehind,
  startCrashRun,
} from '../support/crash-run.ts';
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

/** The first lease active on the pool's one host, the second waiting for the slot. */
async function oneActiveOneWaiting(crash: CrashRun) {
  const { sys } = crash;
  // Holder-side calls are not updates: they run on the plain engine.
  const first = await requestLease(sys.engine, { type: 'host', owner: holder.principal });
  await crash.drain(async () => (await leaseNow(sys.store, first.id)).status === 'active');
  const firstActive = await leaseNow(sys.store, first.id);
  const second = await requestLease(sys.engine, { type: 'host', owner: holder.principal });
  await crash.drain(async () => (await leaseNow(sys.store, second.id)).waitReason !== undefined);
  return { first, second, firstActive, secondWaited: await leaseNow(sys.store, second.id) };
}

/** Once the first host broke: the waiter served, released, and everything delivered. */
async function waiterServed(crash: CrashRun, second: Lease) {
  const { sys } = crash;
  await crash.drain(async () => (await leaseNow(sys.store, second.id)).status === 'active');
  const secondActive = await leaseNow(sys.store, second.id);
  await releaseLease(sys.engine, second.id, holder);
  await sys.queue.drain(crash.crashing, { onError: crash.onError });
  await crash.recover();
  return secondActive;
}

type HandOver = Awaited<ReturnType<typeof oneActiveOneWaiting>> & {
  crash: CrashRun;
  secondActive: Lease;
};

/**
 * The first lease broke with `broke` (its host's end), the waiter was served on a new host and
 * released; the resources that ended did so with `ended`, and only the waiter's host is left.
 */
async function expectHandedOver(
  r: HandOver,
  where: string,
  expected: { broke: string; ended: string[]; hostsCreated: number; commands?: CommandRecord[] },
) {
  const { sys } = r.crash;
  expect(r.firstActive.status, where).toBe('active');
  expect(r.secondWaited.status, where).toBe('pending');
  expect(r.secondActive.status, where).toBe('active');
  expect(r.secondActive.resourceId, where).not.toBe(r.firstActive.resourceId);
  expect((await leaseNow(sys.store, r.first.id)).endReason, where).toContain(expected.broke);
  expect((await leaseNow(sys.store, r.second.id)).endReason, where).toBe('released by ci');

  // No resource more than these: the ones that ended, and the waiter's (kept warm).
  const destroyed = (await sys.store.listResourcesByType('host', 'destroyed')).items;
  expect(destroyed.map((x) => x.endReason).sort(), where).toEqual([...expected.ended].sort());
  const live = (await sys.store.listResourcesByType('host', 'active')).items;
  expect(
    live.map((x) => [x.id, x.leaseCount]),
    where,
  ).toEqual([[r.secondActive.resourceId, 0]]);
  // A redelivered activation describes the same host (its id is the resource's), never another.
  const bill = hostTimeline(await sys.store.listRecords(syntheticScopes.hosts('pool')));
  const created = bill.events.filter((e) => e.event === 'created').map((e) => e.hostId);
  expect(new Set(created).size, where).toBe(expected.hostsCreated);
  expect(bill.maxAlive, where).toBe(1);
  await expectNothingLeftBehind(r.crash, where, {
    warm: [r.secondActive.resourceId as string],
    leaseIds: [r.first.id, r.second.id],
    ...(expected.commands ? { commands: expected.commands } : {}),
  });
}

async function runPeriodic(crashAfter: number) {
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
  const held = await oneActiveOneWaiting(crash);
  await vanish(sys.store, held.firstActive.resourceId as string, sys.clock.now());
  sys.clock.advance(CHECK_EVERY_SECONDS * 1000);
  const sweep = await crash.sweep();
  const secondActive = await waiterServed(crash, held.second);
  return { crash, ...held, secondActive, sweep };
}

describe('crash after any write: break, requeue and periodic health check', () => {
  it('a redelivery completes the work: nothing lost or doubled', async () => {
    await crashAtEveryWrite(
      runPeriodic,
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
        // Requeued once: its first host failed to activate.
        expect(r.firstActive.requeues, where).toBe(1);
        expect(r.sweep.periodicHealthChecks, where).toBe(1);
        expect(r.sweep.locksFreed, where).toBe(0);
        await expectHandedOver(r, where, {
          broke: `failed its periodic health check: ${VANISHED}`,
          ended: [
            'activation failed: cloud-init exploded',
            `failed its periodic health check: ${VANISHED}`,
          ],
          // The host of the first resource was never launched: its activation failed first.
          hostsCreated: 2,
        });
      },
    );
  }, 300_000);
});

async function runSuspect(crashAfter: number) {
  const crash = await startCrashRun(crashAfter, { sweepsWhileWaiting: true });
  const { sys } = crash;
  await syntheticPool(sys.engine, {
    limits: { maxResources: 1, idleTtlSeconds: 3600 },
    config: {
      vanish: { afterCommands: 1 },
      commands: [{ match: '^make build$', stdout: 'built\n', delayMs: 1000 }],
    },
  });
  const held = await oneActiveOneWaiting(crash);
  const { first } = held;
  const endedOf = (c: CommandRecord) => async () =>
    ENDED_COMMAND_STATUSES.includes(
      (await sys.store.getCommand(first.id, c.id))?.status ?? 'queued',
    );
  const build = await startCommand(sys.engine, first.id, { script: 'make build' }, holder);
  await crash.drain(endedOf(build));
  // The host vanished after its first command: the second finds it gone.
  const deploy = await startCommand(sys.engine, first.id, { script: 'make deploy' }, holder);
  const secondActive = await waiterServed(crash, held.second);
  return { crash, ...held, secondActive, build, deploy };
}

describe('crash after any write: a command finds the host gone, suspect, health check, break', () => {
  it('a redelivery completes the work: nothing lost or doubled', async () => {
    await crashAtEveryWrite(
      runSuspect,
      {
        mustCross: [
          'appendRecord[vanished]',
          'resource.suspect',
          'send[resource:health check',
          'resource.broken',
          'lease.broken',
          'resource.destroyed',
        ],
      },
      async (r, where) => {
        const { sys } = r.crash;
        const gone = `host synthetic-${r.firstActive.resourceId} vanished after 1 commands`;
        const build = await sys.store.getCommand(r.first.id, r.build.id);
        expect(build?.result, where).toMatchObject({ exitCode: 0, stdout: 'built\n' });
        const deploy = await sys.store.getCommand(r.first.id, r.deploy.id);
        expect(deploy?.status, where).toBe('failed');
        // Why it could not run names the vanished host (from the start that failed, or, if that
        // step died before recording it, from the broken resource its redelivery found).
        expect(deploy?.error, where).toContain(gone);
        await expectHandedOver(r, where, {
          broke: `failed its health check: ${gone}`,
          ended: [`failed its health check: ${gone}`],
          hostsCreated: 2,
          commands: [r.build, r.deploy],
        });
      },
    );
  }, 300_000);
});
