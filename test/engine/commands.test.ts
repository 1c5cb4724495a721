/**
 * Commands on the real engine and store (DynamoDB Local), delivered by the deterministic queue
 * on a virtual clock: start once, poll with re-enqueued delays, output in order on the record,
 * duplicates that do not multiply the chain, cancel (running, queued, racing the start), the
 * engine's own timeout, the bounded output tail, and a lost poll re-driven by the sweep.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { syntheticScopes } from '../../lambdas/blueprints/synthetic/index.ts';
import type { BlueprintType } from '../../lambdas/core/blueprint.ts';
import { advanceCommand } from '../../lambdas/core/command-runner.ts';
import { cancelCommand, readCommand, startCommand } from '../../lambdas/core/commands.ts';
import type { Engine } from '../../lambdas/core/engine.ts';
import type { CommandRecord, Lease } from '../../lambdas/core/model.ts';
import type { Store, TxWrite } from '../../lambdas/core/ports.ts';
import { createBlueprint, requestLease, runSweep } from '../../lambdas/core/use-cases.ts';
import { leaseNow, syntheticPool, type TestSystem, testSystem } from '../support/system.ts';

const ci = { principal: 'ci' };

async function activeLease(system: TestSystem, config: Record<string, unknown> = {}) {
  await syntheticPool(system.engine, { config });
  const lease = await requestLease(system.engine, { type: 'host', owner: ci.principal });
  await system.queue.drain(system.engine);
  expect((await leaseNow(system.store, lease.id)).status).toBe('active');
  return lease;
}

async function commandNow(engine: Engine, c: CommandRecord): Promise<CommandRecord> {
  return (await engine.store.getCommand(c.leaseId, c.id)) as CommandRecord;
}

async function hostCommandRecords(system: TestSystem, lease: Lease) {
  const { resourceId } = await leaseNow(system.store, lease.id);
  const resource = await system.store.getResource(resourceId as string);
  return system.store.listRecords(
    syntheticScopes.commands('pool', resource?.data.hostId as string),
  );
}

/** A build that prints a line every 10 s for a minute. */
const BUILD = {
  commands: [
    {
      match: '^make build$',
      chunks: [10, 20, 30, 40, 50].map((s) => ({ afterMs: s * 1000, stdout: `step ${s / 10}\n` })),
      stdout: 'built\n',
      delayMs: 60_000,
    },
  ],
};

describe('commands on the engine', () => {
  it('start once, poll until done: output arrives in order on the record, one run', async () => {
    const system = await testSystem();
    const lease = await activeLease(system, BUILD);
    const command = await startCommand(system.engine, lease.id, { script: 'make build' }, ci);

    // Watch the record as the queue delivers the steps.
    const seen: string[] = [];
    await system.queue.drain(system.engine, {
      until: async () => {
        const { output } = await readCommand(system.engine, lease.id, command.id, ci);
        if (output.stdout.text && seen.at(-1) !== output.stdout.text) seen.push(output.stdout.text);
        return false;
      },
    });
    const done = await commandNow(system.engine, command);
    expect(done).toMatchObject({ status: 'finished', attempt: 1 });
    expect(done.result).toMatchObject({ exitCode: 0, timedOut: false });
    expect(done.result?.stdout).toBe('step 1\nstep 2\nstep 3\nstep 4\nstep 5\nbuilt\n');
    // Output grew step by step while it ran (never reordered, never repeated).
    expect(seen.length).toBeGreaterThanOrEqual(5);
    for (const [i, text] of seen.entries()) {
      if (i > 0) expect(text.startsWith(seen[i - 1] as string)).toBe(true);
    }
    expect(done.polls).toBeGreaterThan(5);
    expect(done).not.toHaveProperty('env');
    const starts = (await hostCommandRecords(system, lease)).filter(
      (r) => r.event === 'started' && r.commandId === command.id,
    );
    expect(starts).toHaveLength(1);
  });

  it('a duplicated poll message does not start a second chain', async () => {
    const system = await testSystem();
    const lease = await activeLease(system, BUILD);
    const command = await startCommand(system.engine, lease.id, { script: 'make build' }, ci);
    const first = system.queue.take()!;
    await advanceCommand(system.engine, first); // started; one poll message queued
    const poll = system.queue.take()!;
    expect(poll).toMatchObject({ kind: 'command', waitSeq: 0 });
    expect(await advanceCommand(system.engine, poll)).toMatchObject({ action: 'polled' });
    // The same message again (SQS at-least-once): superseded, nothing sent.
    expect(await advanceCommand(system.engine, poll)).toMatchObject({ action: 'stale' });
    expect(system.queue.size).toBe(1);
    await system.queue.drain(system.engine);
    expect((await commandNow(system.engine, command)).status).toBe('finished');
  });

  it('cancel stops a running command: cancelling, then cancelled once the host says so', async () => {
    const system = await testSystem();
    const lease = await activeLease(system, BUILD);
    const command = await startCommand(system.engine, lease.id, { script: 'make build' }, ci);
    await system.queue.drain(system.engine, {
      until: async () => (await commandNow(system.engine, command)).status === 'running',
    });
    const cancelling = await cancelCommand(system.engine, lease.id, command.id, ci);
    expect(cancelling.status).toBe('cancelling');
    // Idempotent.
    expect((await cancelCommand(system.engine, lease.id, command.id, ci)).status).toBe(
      'cancelling',
    );
    await system.queue.drain(system.engine);
    const done = await commandNow(system.engine, command);
    expect(done).toMatchObject({ status: 'cancelled', result: { exitCode: null } });
    const cancels = (await hostCommandRecords(system, lease)).filter(
      (r) => r.event === 'cancelled' && r.commandId === command.id,
    );
    expect(cancels).toHaveLength(1);
    expect((await cancelCommand(system.engine, lease.id, command.id, ci)).status).toBe('cancelled');
  });

  it('a command cancelled before it started never starts', async () => {
    const system = await testSystem();
    const lease = await activeLease(system, BUILD);
    const command = await startCommand(system.engine, lease.id, { script: 'make build' }, ci);
    await cancelCommand(system.engine, lease.id, command.id, ci);
    await system.queue.drain(system.engine);
    expect(await commandNow(system.engine, command)).toMatchObject({
      status: 'cancelled',
      error: 'cancelled before it started',
    });
    const starts = (await hostCommandRecords(system, lease)).filter(
      (r) => r.commandId === command.id,
    );
    expect(starts).toEqual([]);
  });

  it('a cancel that lands while a worker starts the command stops what that worker started', async () => {
    const system = await testSystem();
    const lease = await activeLease(system, BUILD);
    const command = await startCommand(system.engine, lease.id, { script: 'make build' }, ci);
    // The cancel arrives between the host starting it and the worker recording its handle.
    let fired = false;
    const racing: Store = new Proxy(system.store, {
      get(target, prop, receiver) {
        if (prop !== 'transact') return Reflect.get(target, prop, receiver);
        return async (writes: TxWrite[]) => {
          const recordsStart = writes.some(
            (w) => w.op === 'updateCommand' && w.set.status === 'running',
          );
          if (recordsStart && !fired) {
            fired = true;
            await cancelCommand(system.engine, lease.id, command.id, ci);
          }
          return target.transact(writes);
        };
      },
    });
    const racer = system.engineWith({ store: racing });
    expect(await advanceCommand(racer, system.queue.take()!)).toMatchObject({
      action: 'cancelled',
    });
    await system.queue.drain(system.engine);
    expect((await commandNow(system.engine, command)).status).toBe('cancelled');
    const events = (await hostCommandRecords(system, lease))
      .filter((r) => r.commandId === command.id)
      .map((r) => r.event);
    expect(events).toEqual(['started', 'cancelled']);
  });

  it('the engine stops a command past its timeout if the plug-in never does', async () => {
    const calls: string[] = [];
    // A host whose commands never end and never report a timeout.
    const stubborn: BlueprintType<Record<string, never>> = {
      type: 'stubborn-test',
      description: 'commands that never end (test only)',
      resourceTypes: ['host'],
      configSchema: z.object({}).strict(),
      allocateResource: async () => ({}),
      activateResource: async () => ({ state: 'active' }),
      destroyResource: async () => {},
      healthCheck: async () => ({ healthy: true }),
      command: () => ({
        start: async (id) => {
          calls.push(`start ${id}`);
          return { id };
        },
        poll: async () => ({ state: 'running', stdout: '.', stderr: '' }),
        cancel: async (handle) => {
          calls.push(`cancel ${handle.id}`);
        },
      }),
    };
    const system = await testSystem({}, { plugins: [stubborn] });
    await createBlueprint(system.engine, {
      id: 'stubborn',
      type: 'stubborn-test',
      resourceType: 'host',
      limits: { maxResources: 1 },
    });
    const lease = await requestLease(system.engine, { type: 'host', owner: ci.principal });
    await system.queue.drain(system.engine);
    const command = await startCommand(
      system.engine,
      lease.id,
      { argv: ['sleep', 'forever'], timeoutSeconds: 5 },
      ci,
    );
    await system.queue.drain(system.engine);
    const done = await commandNow(system.engine, command);
    expect(done).toMatchObject({
      status: 'finished',
      result: { exitCode: null, timedOut: true },
    });
    expect(done.result?.stdout).toMatch(/^\.+$/);
    expect(calls).toEqual([`start ${command.id}`, `cancel ${command.id}`]);
  });

  it('keeps a bounded tail of huge output, says it was cut, and a late reader learns how much', async () => {
    const system = await testSystem();
    const big = 'x'.repeat(1023);
    const lease = await activeLease(system, {
      commands: [
        {
          match: '^flood$',
          chunks: Array.from({ length: 300 }, (_, i) => ({ afterMs: i * 10, stdout: `${big}\n` })),
          delayMs: 3_000,
        },
      ],
    });
    const command = await startCommand(system.engine, lease.id, { argv: ['flood'] }, ci);
    await system.queue.drain(system.engine);
    const done = await commandNow(system.engine, command);
    expect(done.status).toBe('finished');
    expect(done.result?.truncated).toBe(true);
    expect(done.output?.stdout.end).toBe(300 * 1024);
    expect(Buffer.byteLength(done.result?.stdout ?? '')).toBeLessThanOrEqual(96 * 1024);
    const { output } = await readCommand(system.engine, lease.id, command.id, ci, { stdout: 0 });
    expect(output.stdout.skipped).toBe(done.output?.stdout.start);
  });

  it('stores each output tail once: a long script flooding both streams still fits one item', async () => {
    const system = await testSystem();
    const line = `${'y'.repeat(1023)}\n`;
    const lease = await activeLease(system, {
      commands: [
        {
          match: '^flood-both ',
          // 3 × 40 KiB per stream (a blueprint config is an item too: keep it well under 400 KB).
          chunks: Array.from({ length: 3 }, (_, i) => ({
            afterMs: i * 500,
            stdout: line.repeat(40),
            stderr: line.repeat(40),
          })),
          delayMs: 3_000,
        },
      ],
    });
    // 60 KB of script + two 96 KiB tails: a second copy of the tails would pass 400 KB.
    const script = `flood-both ${'#'.repeat(60_000)}`;
    const command = await startCommand(system.engine, lease.id, { script }, ci);
    await system.queue.drain(system.engine);
    const done = await commandNow(system.engine, command);
    expect(done.status).toBe('finished');
    expect(Buffer.byteLength(done.result?.stdout ?? '')).toBeGreaterThan(90 * 1024);
    expect(Buffer.byteLength(done.result?.stderr ?? '')).toBeGreaterThan(90 * 1024);
    // A reader still gets the tail and the extents after the end.
    const { output } = await readCommand(system.engine, lease.id, command.id, ci, {
      stderr: (done.output?.stderr.end ?? 0) - 2048,
    });
    expect(output.stderr.text).toBe(line.repeat(2));
  });

  it('a lost poll is re-driven by the sweep', async () => {
    const system = await testSystem();
    const lease = await activeLease(system, BUILD);
    const command = await startCommand(system.engine, lease.id, { script: 'make build' }, ci);
    system.queue.dropNext((m) => m.kind === 'command' && m.waitSeq === 1);
    await system.queue.drain(system.engine);
    expect((await commandNow(system.engine, command)).status).toBe('running');
    system.clock.advance(system.engine.settings.commandStrandSeconds * 1000 + 5_000);
    expect((await runSweep(system.engine)).redrivenCommands).toBe(1);
    await system.queue.drain(system.engine);
    expect((await commandNow(system.engine, command)).status).toBe('finished');
  });
});
