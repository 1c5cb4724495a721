/**
 * Crash test, queued commands: a command step (start, poll, record the end, stop) or any other
 * update that dies right after any one of its writes leaves state that a redelivery, plus at
 * worst the sweep, completes. One scenario, crashed at every write point in turn
 * (test/support/crash-run.ts runs it): the holder of an active lease queues three commands on
 * its host — a build that prints as it runs, a test run that fails, a long job — the first two
 * run to completion, and the holder releases the lease while the long job still runs, so it is
 * stopped and says why. The host is reclaimed on release.
 * Checked after each: every command ran once on its host and ended with all its output, in
 * order and not repeated, or with the reason it was stopped, in exactly one log line.
 * Then the bug that sweep found, crashed at exactly that write: a worker that stops a command
 * itself (its lease ended; its timeout passed) and dies before recording why.
 * Real DynamoDB Local; the synthetic blueprint's scripted commands, and a test-only host whose
 * kills are recorded.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { syntheticScopes } from '../../lambdas/blueprints/synthetic/index.ts';
import type { BlueprintType } from '../../lambdas/core/blueprint.ts';
import { InjectedCrash } from '../../lambdas/core/errors.ts';
import type { CommandRecord, UpdateMessage } from '../../lambdas/core/model.ts';
import {
  createBlueprint,
  processUpdate,
  releaseLease,
  requestLease,
  startCommand,
} from '../../lambdas/core/use-cases.ts';
import {
  type CrashRun,
  crashAtEveryWrite,
  expectNothingLeftBehind,
  startCrashRun,
} from '../support/crash-run.ts';
import { leaseNow, syntheticPool, type TestSystem } from '../support/system.ts';

const holder = { principal: 'ci' };

const SCRIPT = {
  commands: [
    {
      match: '^make build$',
      chunks: [
        { afterMs: 1000, stdout: 'step 1\n' },
        { afterMs: 2000, stdout: 'step 2\n' },
      ],
      stdout: 'built\n',
      delayMs: 3000,
    },
    { match: '^make test$', exitCode: 2, stderr: '1 test failed\n', delayMs: 1000 },
    { match: '^make soak$', stdout: 'soaked\n', delayMs: 600_000 },
  ],
};

async function run(crashAfter: number) {
  const crash = await startCrashRun(crashAfter, { sweepsWhileWaiting: true });
  const { sys } = crash;
  await syntheticPool(sys.engine, {
    limits: { maxResources: 1, reclaimOnRelease: true },
    config: SCRIPT,
  });

  // Holder-side calls are not updates: they run on the plain engine.
  const lease = await requestLease(sys.engine, { type: 'host', owner: holder.principal });
  await crash.drain(async () => (await leaseNow(sys.store, lease.id)).status === 'active');
  const active = await leaseNow(sys.store, lease.id);
  const [build, test, soak] = [
    await startCommand(sys.engine, lease.id, { script: 'make build' }, holder),
    await startCommand(sys.engine, lease.id, { script: 'make test' }, holder),
    await startCommand(sys.engine, lease.id, { script: 'make soak' }, holder),
  ] as [CommandRecord, CommandRecord, CommandRecord];
  const ended = (c: CommandRecord) => async () =>
    (await sys.store.getCommand(c.leaseId, c.id))?.status === 'finished';
  // The long job keeps polling, so the queue never runs dry (and the sweep runs every minute)
  // until the two short commands have ended.
  await crash.drain(async () => (await ended(build)()) && (await ended(test)()));
  const soakBeforeRelease = await sys.store.getCommand(lease.id, soak.id);
  await releaseLease(sys.engine, lease.id, holder);
  await sys.queue.drain(crash.crashing, { onError: crash.onError });

  await crash.recover();
  return { crash, sys, lease, active, build, test, soak, soakBeforeRelease };
}

describe('crash after any write: queued commands', () => {
  it('a redelivery completes the work: every command ran once and ended with its output', async () => {
    await crashAtEveryWrite(
      run,
      {
        mustCross: [
          'appendRecord[started]',
          'transact[updateCommand]',
          'send[command:poll',
          'lease.command',
          'appendRecord[cancelled]',
          'lease.destroyed',
          'resource.destroyed',
        ],
      },
      async (r, where) => {
        const { sys, lease } = r;
        expect(r.active.status, where).toBe('active');
        const now = async (c: CommandRecord) =>
          (await sys.store.getCommand(c.leaseId, c.id)) as CommandRecord;

        // Each output exactly once and in order: a crashed poll is not appended twice.
        const build = await now(r.build);
        expect(build, where).toMatchObject({ status: 'finished', attempt: 1 });
        expect(build.result, where).toMatchObject({
          exitCode: 0,
          timedOut: false,
          stdout: 'step 1\nstep 2\nbuilt\n',
          stderr: '',
        });
        const test = await now(r.test);
        expect(test.status, where).toBe('finished');
        expect(test.result, where).toMatchObject({
          exitCode: 2,
          stdout: '',
          stderr: '1 test failed\n',
        });

        // The long job still ran at release, and was stopped saying why.
        expect(r.soakBeforeRelease?.status, where).toBe('running');
        const soak = await now(r.soak);
        expect(soak.status, where).toBe('cancelled');
        expect(soak.error, where).toContain(`lease ${lease.id} is`);

        // Started once each on the host (a retried start is the same run); the job stopped once.
        const { resourceId } = r.active;
        const hostRecords = await sys.store.listRecords(
          syntheticScopes.commands('pool', `synthetic-${resourceId}`),
        );
        const events = (id: string, event: string) =>
          hostRecords.filter((x) => x.commandId === id && x.event === event);
        for (const c of [build, test, soak]) expect(events(c.id, 'started'), where).toHaveLength(1);
        expect(events(soak.id, 'cancelled'), where).toHaveLength(1);
        expect(events(build.id, 'cancelled'), where).toEqual([]);

        // One line per command's end in the holder's log.
        const ends = (await sys.store.listLogs(lease.id, { limit: 1000 })).filter(
          (e) => e.type === 'lease.command',
        );
        expect(ends.map((e) => e.data?.commandId).sort(), where).toEqual(
          [build.id, test.id, soak.id].sort(),
        );

        expect((await leaseNow(sys.store, lease.id)).endReason, where).toBe('released by ci');
        expect((await sys.store.getResource(resourceId as string))?.status, where).toBe(
          'destroyed',
        );
        await expectNothingLeftBehind(r.crash, where, {
          warm: [],
          leaseIds: [lease.id],
          commands: [build, test, soak],
        });
      },
    );
  }, 600_000);
});

/** Deliver on the plain engine until the next message is the one `wanted` picks; return it. */
async function deliverUntil(
  sys: TestSystem,
  wanted: (msg: UpdateMessage) => Promise<boolean>,
): Promise<UpdateMessage> {
  for (let steps = 0; steps < 200; steps++) {
    const msg = sys.queue.take();
    if (!msg) break;
    if (await wanted(msg)) return msg;
    await processUpdate(sys.engine, msg);
  }
  throw new Error('the message the test waits for never came');
}

/** Deliver `step` on the crashing engine, dying right after its first write; then again. */
async function crashAfterFirstWriteThenRedeliver(crash: CrashRun, step: UpdateMessage) {
  crash.plan.crashAfter = crash.plan.writes + 1;
  await expect(processUpdate(crash.crashing, step)).rejects.toThrow(InjectedCrash);
  crash.plan.revive();
  await processUpdate(crash.crashing, step);
}

/** A host whose commands run until killed; a kill is recorded, and no timeout is its own. */
const killableHost: BlueprintType<Record<string, never>> = {
  type: 'killable-test',
  description: 'commands that run until killed, with no timeout of their own (test only)',
  resourceTypes: ['host'],
  configSchema: z.object({}).strict(),
  allocateResource: async () => ({}),
  activateResource: async () => ({ state: 'active' }),
  destroyResource: async () => {},
  healthCheck: async () => ({ healthy: true }),
  command: (ctx) => ({
    start: async (id) => ({ id }),
    poll: async (handle) => {
      const killed = (await ctx.records.list('killable:kills')).some((r) => r.id === handle.id);
      return killed
        ? {
            state: 'finished',
            stdout: '',
            stderr: '',
            exitCode: null,
            timedOut: false,
            cancelled: true,
            durationMs: 1,
          }
        : { state: 'running', stdout: '.', stderr: '' };
    },
    cancel: async (handle) => ctx.records.append('killable:kills', { id: handle.id }),
  }),
};

describe('a worker that stops a command itself and dies before recording why', () => {
  // Regressions: the redelivery polled, saw "cancelled" on the host, and recorded the command
  // as cancelled by its holder, who never asked.
  it('because its lease ended: the redelivery records that reason', async () => {
    const crash = await startCrashRun(0);
    const { sys } = crash;
    await syntheticPool(sys.engine, { config: SCRIPT });
    const lease = await requestLease(sys.engine, { type: 'host', owner: holder.principal });
    await sys.queue.drain(sys.engine);
    const soak = await startCommand(sys.engine, lease.id, { script: 'make soak' }, holder);
    await sys.queue.drain(sys.engine, {
      until: async () => (await sys.store.getCommand(lease.id, soak.id))?.status === 'running',
    });
    await releaseLease(sys.engine, lease.id, holder);
    const step = await deliverUntil(
      sys,
      async (m) =>
        m.kind === 'command' && (await leaseNow(sys.store, lease.id)).status === 'destroyed',
    );

    await crashAfterFirstWriteThenRedeliver(crash, step);
    expect(crash.plan.log[0]).toBe('appendRecord[cancelled]'); // stopped on its host, then died
    expect(await sys.store.getCommand(lease.id, soak.id)).toMatchObject({
      status: 'cancelled',
      error: `lease ${lease.id} is destroyed, not active (released by ci); commands run only on active leases`,
    });
  });

  it('at its timeout: the redelivery records it timed out', async () => {
    const crash = await startCrashRun(0, { plugins: [killableHost] });
    const { sys } = crash;
    await createBlueprint(sys.engine, {
      id: 'killable',
      type: 'killable-test',
      resourceType: 'host',
      limits: { maxResources: 1 },
    });
    const lease = await requestLease(sys.engine, { type: 'host', owner: holder.principal });
    await sys.queue.drain(sys.engine);
    const command = await startCommand(
      sys.engine,
      lease.id,
      { argv: ['sleep', 'forever'], timeoutSeconds: 5 },
      holder,
    );
    // The first poll past the timeout and its grace (10 s) is the one that kills it.
    const step = await deliverUntil(sys, async (m) => {
      const now = await sys.store.getCommand(lease.id, command.id);
      return m.kind === 'command' && sys.clock.now() >= Date.parse(now?.startedAt ?? '') + 15_000;
    });

    await crashAfterFirstWriteThenRedeliver(crash, step);
    expect(crash.plan.log[0]).toBe('appendRecord[killable:kills]');
    const done = await sys.store.getCommand(lease.id, command.id);
    expect(done).toMatchObject({
      status: 'finished',
      result: { exitCode: null, timedOut: true },
    });
    expect(done?.error).toBeUndefined();
  });
});
