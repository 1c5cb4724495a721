/**
 * synthetic: every scripted race and failure, with an injected clock and in-memory records.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  hostTimeline,
  inWriteOrder,
  type SyntheticConfig,
  syntheticBlueprint,
  syntheticScopes,
} from '../../lambdas/blueprints/synthetic/index.ts';
import type {
  ActivationStep,
  CommandHandle,
  CommandInterface,
  CommandProgress,
  ConfiguredBlueprint,
} from '../../lambdas/core/blueprint.ts';
import { parseCommandSpec } from '../../lambdas/core/command-spec.ts';
import type { CommandSpec, Resource } from '../../lambdas/core/model.ts';
import {
  configuredBlueprint,
  makeLease,
  makeResource,
  runToEnd,
  type TestContext,
  testContext,
} from './support.ts';

const plugin = syntheticBlueprint;
const lease = makeLease();

let ctx: TestContext;
beforeEach(async () => {
  ctx = await testContext();
});
afterEach(async () => {
  await ctx.cleanup();
});

function blueprintWith(config: unknown): ConfiguredBlueprint<SyntheticConfig> {
  return configuredBlueprint(plugin, config);
}

function resourceOf(blueprint: ConfiguredBlueprint<SyntheticConfig>, id: string): Resource {
  return makeResource(blueprint, { id });
}

async function bill(blueprint: ConfiguredBlueprint<SyntheticConfig>) {
  return hostTimeline(await ctx.records.list(syntheticScopes.hosts(blueprint.id)));
}

/** Activate (delay 0) and return the resource as the allocator would store it. */
async function activeResource(
  blueprint: ConfiguredBlueprint<SyntheticConfig>,
  id: string,
): Promise<Resource> {
  const step = await plugin.activateResource(ctx, blueprint, resourceOf(blueprint, id));
  expect(step.state).toBe('active');
  return { ...resourceOf(blueprint, id), status: 'active', data: { ...step.data } };
}

let commandIds = 0;

/**
 * Run a command to its end like the engine, advancing the fake clock `stepMs` between polls (the
 * plug-in's time is ctx.clock: no real waiting).
 */
function run(
  command: CommandInterface,
  spec: CommandSpec,
  options: {
    stepMs?: number;
    onPoll?: (progress: CommandProgress, run: { handle: CommandHandle; polls: number }) => unknown;
  } = {},
) {
  const { stepMs = 10, onPoll } = options;
  commandIds += 1;
  let polls = 0;
  return runToEnd(command, `cmd-${commandIds}`, parseCommandSpec(spec, 300), {
    between: () => ctx.clock.advance(stepMs),
    onPoll: async (progress, handle) => {
      polls += 1;
      await onPoll?.(progress, { handle, polls });
    },
  });
}

function settled<T>(promises: Array<Promise<T>>) {
  return Promise.allSettled(promises).then((all) => ({
    ok: all.filter((r) => r.status === 'fulfilled').length,
    failed: all
      .filter((r) => r.status === 'rejected')
      .map((r) => (r as PromiseRejectedResult).reason),
  }));
}

describe('synthetic config', () => {
  it('defaults everything', () => {
    expect(plugin.configSchema.parse({})).toEqual({
      allocation: { failTimes: 0, failMessage: 'synthetic allocation failure' },
      activation: { delaySeconds: 0, failTimes: 0, failMessage: 'synthetic activation failure' },
      leaseActivation: { failTimes: 0, failMessage: 'synthetic lease activation failure' },
      vanish: {},
      commands: [],
    });
  });

  it('refuses unknown nested keys and bad regexes, naming them', () => {
    const bad = plugin.configSchema.safeParse({
      activation: { delaySecs: 3 },
      commands: [{ match: '(unclosed' }],
    });
    expect(bad.success).toBe(false);
    const messages = bad.error?.issues.map((i) => i.message).join('\n');
    expect(messages).toContain('delaySecs');
    expect(messages).toContain('(unclosed');
  });

  it('refuses command chunks out of time order or after the command ends, naming them', () => {
    const bad = plugin.configSchema.safeParse({
      commands: [
        {
          match: 'build',
          delayMs: 1_000,
          chunks: [{ afterMs: 500 }, { afterMs: 200 }, { afterMs: 1_500, stdout: 'late' }],
        },
      ],
    });
    expect(bad.success).toBe(false);
    const messages = bad.error?.issues.map((i) => i.message).join('\n');
    expect(messages).toContain('afterMs 200 comes after 500');
    expect(messages).toContain('afterMs 1500 is after the command ends (delayMs 1000)');
  });

  it('activates later only when activation takes time', () => {
    expect(plugin.activatesLater?.(blueprintWith({}))).toBe(false);
    expect(plugin.activatesLater?.(blueprintWith({ activation: { delaySeconds: 5 } }))).toBe(true);
  });
});

describe('synthetic allocation failures', () => {
  it('throws TemporaryError for the first N calls of the blueprint, then allocates', async () => {
    const blueprint = blueprintWith({ allocation: { failTimes: 2, failMessage: 'no capacity' } });
    for (let i = 1; i <= 2; i++) {
      await expect(plugin.allocateResource(ctx, blueprint, lease)).rejects.toMatchObject({
        name: 'TemporaryError',
        message: expect.stringContaining('no capacity'),
      });
    }
    expect(await plugin.allocateResource(ctx, blueprint, lease)).toEqual({});
    expect(await plugin.allocateResource(ctx, blueprint, lease)).toEqual({});
    // Counted in records, and nothing is written once the failing phase is over.
    expect(await ctx.records.list(syntheticScopes.allocations(blueprint.id))).toHaveLength(2);
    expect((await bill(blueprint)).events).toEqual([]);
  });

  it('counts across workers: concurrent calls see exactly N failures', async () => {
    const blueprint = blueprintWith({ allocation: { failTimes: 3 } });
    // A second "process": same shared records, nothing else in common.
    const other = { ...ctx };
    const { ok, failed } = await settled(
      Array.from({ length: 10 }, (_, i) =>
        plugin.allocateResource(i % 2 ? ctx : other, blueprint, makeLease({ id: `lease-${i}` })),
      ),
    );
    expect(failed).toHaveLength(3);
    expect(ok).toBe(7);
  });

  it('counts per blueprint', async () => {
    const a = blueprintWith({ allocation: { failTimes: 1 } });
    const b = { ...a, id: 'other-pool' };
    await expect(plugin.allocateResource(ctx, a, lease)).rejects.toThrow();
    await expect(plugin.allocateResource(ctx, b, lease)).rejects.toThrow();
    await expect(plugin.allocateResource(ctx, a, lease)).resolves.toEqual({});
  });
});

describe('synthetic activation', () => {
  it('is pending until delaySeconds after the host was created, then active', async () => {
    const blueprint = blueprintWith({ activation: { delaySeconds: 30 } });
    const resource = resourceOf(blueprint, 'res-slow');
    const first = await plugin.activateResource(ctx, blueprint, resource);
    expect(first).toMatchObject({ state: 'pending', checkAgainSeconds: 30 });
    const hostId = first.data?.hostId;
    expect(hostId).toBeTypeOf('string');
    expect((first as Extract<ActivationStep, { state: 'pending' }>).message).toContain(
      String(hostId),
    );

    ctx.clock.advance(29_500);
    expect(await plugin.activateResource(ctx, blueprint, resource)).toMatchObject({
      state: 'pending',
      checkAgainSeconds: 1,
    });
    expect(await plugin.healthCheck(ctx, blueprint, resource)).toEqual({ healthy: true });
    ctx.clock.advance(500);
    expect(await plugin.activateResource(ctx, blueprint, resource)).toEqual({
      state: 'active',
      data: { hostId },
    });
    const { events, alive } = await bill(blueprint);
    expect(events.map((e) => e.event)).toEqual(['created']);
    expect(alive).toEqual([hostId]);
  });

  it('racing activations of one resource describe one host', async () => {
    const blueprint = blueprintWith({});
    const resource = resourceOf(blueprint, 'res-dup');
    const steps = await Promise.all(
      [1, 2, 3].map(() => plugin.activateResource(ctx, blueprint, resource)),
    );
    expect(new Set(steps.map((s) => s.data?.hostId)).size).toBe(1);
    expect((await bill(blueprint)).maxAlive).toBe(1);
  });

  it('fails the first N resources (every attempt) without leaving a host', async () => {
    const blueprint = blueprintWith({ activation: { failTimes: 1, failMessage: 'kernel panic' } });
    const doomed = resourceOf(blueprint, 'res-doomed');
    for (let attempt = 0; attempt < 2; attempt++) {
      await expect(plugin.activateResource(ctx, blueprint, doomed)).rejects.toMatchObject({
        name: 'SyntheticFailure',
        message: 'kernel panic',
      });
    }
    await activeResource(blueprint, 'res-fine');
    const { events } = await bill(blueprint);
    expect(events.map((e) => [e.event, e.resourceId])).toEqual([['created', 'res-fine']]);
    expect(await plugin.healthCheck(ctx, blueprint, doomed)).toMatchObject({ healthy: false });
  });

  it('decides failures per resource deterministically under concurrency', async () => {
    const blueprint = blueprintWith({ activation: { failTimes: 2 } });
    const ids = ['r1', 'r2', 'r3', 'r4', 'r5'];
    const first = await settled(
      ids.map((id) => plugin.activateResource(ctx, blueprint, resourceOf(blueprint, id))),
    );
    expect(first.failed).toHaveLength(2);
    // Retrying every resource gives the same answer for each.
    const again = await settled(
      ids.map((id) => plugin.activateResource(ctx, blueprint, resourceOf(blueprint, id))),
    );
    expect(again.failed).toHaveLength(2);
    expect((await bill(blueprint)).alive).toHaveLength(3);
  });

  it('fails a share of resources by id (every attempt, any order) without leaving a host', async () => {
    const ids = Array.from({ length: 40 }, (_, i) => `res-share-${i}`);
    const failing = async (config: unknown, order: string[]) => {
      const blueprint = blueprintWith(config);
      const out = new Set<string>();
      for (const id of order) {
        await plugin.activateResource(ctx, blueprint, resourceOf(blueprint, id)).catch((err) => {
          expect(err).toMatchObject({ name: 'SyntheticFailure' });
          out.add(id);
        });
      }
      return { out, alive: (await bill(blueprint)).alive.length };
    };
    const half = await failing({ activation: { failShare: 0.5 } }, ids);
    // Some fail and some do not; a retry in another order fails exactly the same ones.
    expect(half.out.size).toBeGreaterThan(5);
    expect(half.out.size).toBeLessThan(35);
    expect(half.alive).toBe(ids.length - half.out.size);
    const again = await failing({ activation: { failShare: 0.5 } }, [...ids].reverse());
    expect([...again.out].sort()).toEqual([...half.out].sort());
    expect(again.alive).toBe(half.alive); // no host created twice, none for a failing one
    expect((await failing({ activation: { failShare: 1 } }, ['res-x', 'res-y'])).out.size).toBe(2);
    expect((await failing({ activation: { failShare: 0 } }, ['res-x', 'res-y'])).out.size).toBe(0);
  });

  it('does not bring a destroyed resource back', async () => {
    const blueprint = blueprintWith({});
    const resource = await activeResource(blueprint, 'res-gone');
    await plugin.destroyResource(ctx, blueprint, resource);
    await expect(plugin.activateResource(ctx, blueprint, resource)).rejects.toMatchObject({
      name: 'ResourceGoneError',
    });
    const { events, alive } = await bill(blueprint);
    expect(events.map((e) => e.event)).toEqual(['created', 'destroyed']);
    expect(alive).toEqual([]);
  });
});

describe('synthetic lease activation', () => {
  it('fails the first N calls, then succeeds', async () => {
    const blueprint = blueprintWith({
      leaseActivation: { failTimes: 1, failMessage: 'ssh refused' },
    });
    const resource = await activeResource(blueprint, 'res-1');
    await expect(plugin.activateLease!(ctx, blueprint, resource, lease)).rejects.toMatchObject({
      name: 'SyntheticFailure',
      message: expect.stringContaining('ssh refused'),
    });
    await expect(plugin.activateLease!(ctx, blueprint, resource, lease)).resolves.toBeUndefined();
  });
});

describe('synthetic vanishing hosts', () => {
  it('vanishes after N commands: command N+1 throws, health fails, the bill shows it', async () => {
    const blueprint = blueprintWith({ vanish: { afterCommands: 2 } });
    const resource = await activeResource(blueprint, 'res-v');
    const command = plugin.command!(ctx, blueprint, resource, lease);
    expect((await run(command, { argv: ['echo', 'one'] })).stdout).toBe('one\n');
    expect((await run(command, { argv: ['echo', 'two'] })).stdout).toBe('two\n');
    await expect(run(command, { argv: ['echo', 'three'] })).rejects.toMatchObject({
      name: 'ResourceGoneError',
      message: expect.stringMatching(/^host \S+ vanished after 2 commands/),
    });
    const health = await plugin.healthCheck(ctx, blueprint, resource);
    expect(health).toMatchObject({ healthy: false, reason: expect.stringContaining('vanished') });
    await expect(plugin.activateLease!(ctx, blueprint, resource, lease)).rejects.toMatchObject({
      name: 'ResourceGoneError',
    });
    const { events, alive } = await bill(blueprint);
    expect(events.map((e) => e.event)).toEqual(['created', 'vanished']);
    expect(alive).toEqual([]);
    // Destroying the dead host is still recorded, once.
    await plugin.destroyResource(ctx, blueprint, resource);
    await plugin.destroyResource(ctx, blueprint, resource);
    expect((await bill(blueprint)).events.map((e) => e.event)).toEqual([
      'created',
      'vanished',
      'destroyed',
    ]);
  });

  it('vanishes N seconds after creation, recorded at the moment it happened', async () => {
    const blueprint = blueprintWith({ vanish: { afterSeconds: 60 } });
    const resource = await activeResource(blueprint, 'res-t');
    const createdAt = ctx.clock.now();
    ctx.clock.advance(59_999);
    expect(await plugin.healthCheck(ctx, blueprint, resource)).toEqual({ healthy: true });
    ctx.clock.advance(10_000);
    expect(await plugin.healthCheck(ctx, blueprint, resource)).toMatchObject({
      healthy: false,
      reason: expect.stringMatching(/^host \S+ vanished 60s after/),
    });
    const vanished = (await bill(blueprint)).events.filter((e) => e.event === 'vanished');
    expect(vanished).toHaveLength(1);
    expect(vanished[0]?.at).toBe(new Date(createdAt + 60_000).toISOString());
    await expect(
      run(plugin.command!(ctx, blueprint, resource, lease), { argv: ['true'] }),
    ).rejects.toMatchObject({ name: 'ResourceGoneError' });
  });

  it('a host that vanishes while booting breaks its activation', async () => {
    const blueprint = blueprintWith({
      activation: { delaySeconds: 120 },
      vanish: { afterSeconds: 30 },
    });
    const resource = resourceOf(blueprint, 'res-boot');
    expect((await plugin.activateResource(ctx, blueprint, resource)).state).toBe('pending');
    ctx.clock.advance(30_000);
    await expect(plugin.activateResource(ctx, blueprint, resource)).rejects.toMatchObject({
      name: 'ResourceGoneError',
    });
  });
});

describe('synthetic commands', () => {
  const scripted = {
    commands: [
      { match: '^git fetch', exitCode: 128, stderr: 'fatal: unable to access\n' },
      { match: 'make test', stdout: 'ok\n', delayMs: 30 },
      { match: 'hang', delayMs: 60_000 },
      { match: 'git', stdout: 'never reached for fetch\n' },
    ],
  };

  it('answers from the script (first match wins) and echoes everything else', async () => {
    const blueprint = blueprintWith(scripted);
    const command = plugin.command!(ctx, blueprint, await activeResource(blueprint, 'r'), lease);
    expect(await run(command, { argv: ['git', 'fetch', 'origin'] })).toMatchObject({
      exitCode: 128,
      stdout: '',
      stderr: 'fatal: unable to access\n',
      timedOut: false,
    });
    expect((await run(command, { argv: ['git', 'status'] })).stdout).toBe(
      'never reached for fetch\n',
    );
    const slow = await run(command, { script: 'cd src && make test' });
    expect(slow).toMatchObject({ exitCode: 0, stdout: 'ok\n', timedOut: false });
    expect(slow.durationMs).toBeGreaterThanOrEqual(25);
    expect((await run(command, { script: 'echo hi' })).stdout).toBe('hi\n');
    expect((await run(command, { argv: ['uname', '-a'] })).stdout).toBe('uname -a\n');
    // Every command is on the host's record.
    const hostId = `synthetic-r`;
    const ran = inWriteOrder(
      await ctx.records.list(syntheticScopes.commands(blueprint.id, hostId)),
    );
    expect(ran.map((r) => r.command)).toEqual([
      'git fetch origin',
      'git status',
      'cd src && make test',
      'echo hi',
      'uname -a',
    ]);
  });

  it('times out a command slower than its timeout without waiting out the delay', async () => {
    const blueprint = blueprintWith(scripted);
    const command = plugin.command!(ctx, blueprint, await activeResource(blueprint, 'r'), lease);
    const started = performance.now();
    // One second is the shortest timeout a spec may ask for; the fake clock makes it instant.
    const result = await run(command, { argv: ['hang'], timeoutSeconds: 1 });
    expect(result).toMatchObject({ exitCode: null, timedOut: true, cancelled: false });
    expect(result.durationMs).toBeGreaterThanOrEqual(150);
    expect(result.durationMs).toBe(1_000);
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('stops when the caller cancels', async () => {
    const blueprint = blueprintWith(scripted);
    const command = plugin.command!(ctx, blueprint, await activeResource(blueprint, 'r'), lease);
    const result = await run(
      command,
      { argv: ['hang'] },
      {
        onPoll: async (progress, { handle, polls }) => {
          if (polls === 5) {
            expect(progress.state).toBe('running');
            await command.cancel(handle);
            await command.cancel(handle); // idempotent
          }
        },
      },
    );
    expect(result).toMatchObject({ exitCode: null, timedOut: false, cancelled: true });
    expect(result.durationMs).toBeLessThan(5_000);
    expect(result.durationMs).toBe(40);
    const records = await ctx.records.list(syntheticScopes.commands(blueprint.id, 'synthetic-r'));
    expect(records.filter((r) => r.event === 'cancelled')).toHaveLength(1);
  });
});

describe('synthetic commands over time (start, poll, cancel)', () => {
  const build = {
    match: '^make build',
    delayMs: 3_000,
    exitCode: 2,
    chunks: [
      { afterMs: 0, stdout: 'compiling\n' },
      { afterMs: 1_000, stdout: 'linking\n', stderr: 'warning: unused\n' },
      { afterMs: 2_000, stdout: 'tests ✓ 3\n' },
    ],
    stdout: 'done\n',
    stderr: 'error: 1 failed\n',
  };

  async function commandOn(config: unknown) {
    const blueprint = blueprintWith(config);
    const resource = await activeResource(blueprint, 'r');
    return { blueprint, resource, command: plugin.command!(ctx, blueprint, resource, lease) };
  }

  it('chunks arrive in order across polls as the clock advances; bytes, not characters', async () => {
    const { blueprint, resource, command } = await commandOn({ commands: [build] });
    const handle = await command.start('c-1', parseCommandSpec({ argv: ['make', 'build'] }, 300));
    expect(handle).toEqual({
      hostId: 'synthetic-r',
      commandId: 'c-1',
      startedAtMs: ctx.clock.now(),
    });
    const from = { stdout: 0, stderr: 0 };
    const pollFrom = async () => {
      const progress = await command.poll(handle, from);
      from.stdout += Buffer.byteLength(progress.stdout);
      from.stderr += Buffer.byteLength(progress.stderr);
      return progress;
    };
    expect(await pollFrom()).toEqual({ state: 'running', stdout: 'compiling\n', stderr: '' });
    ctx.clock.advance(999);
    expect(await pollFrom()).toEqual({ state: 'running', stdout: '', stderr: '' });
    ctx.clock.advance(1);
    expect(await pollFrom()).toEqual({
      state: 'running',
      stdout: 'linking\n',
      stderr: 'warning: unused\n',
    });
    ctx.clock.advance(1_000);
    // '✓' is three bytes of UTF-8: the offsets the engine sends are bytes.
    expect(await pollFrom()).toEqual({ state: 'running', stdout: 'tests ✓ 3\n', stderr: '' });
    expect(from.stdout).toBe('compiling\nlinking\ntests ✓ 3\n'.length + 2);
    ctx.clock.advance(1_000);
    expect(await pollFrom()).toEqual({
      state: 'finished',
      stdout: 'done\n',
      stderr: 'error: 1 failed\n',
      exitCode: 2,
      timedOut: false,
      cancelled: false,
      durationMs: 3_000,
    });
    // Another worker (no shared memory, only the records) polling from the start sees it all.
    const elsewhere = plugin.command!({ ...ctx }, blueprint, resource, lease);
    expect(await elsewhere.poll(handle, { stdout: 0, stderr: 0 })).toMatchObject({
      state: 'finished',
      stdout: 'compiling\nlinking\ntests ✓ 3\ndone\n',
      stderr: 'warning: unused\nerror: 1 failed\n',
    });
  });

  it('reports a long command running over several polls, then finished', async () => {
    const { command } = await commandOn({ commands: [build] });
    const states: string[] = [];
    const result = await run(
      command,
      { script: 'make build && make install' },
      { stepMs: 1_000, onPoll: (progress) => states.push(progress.state) },
    );
    expect(states).toEqual(['running', 'running', 'running', 'finished']);
    expect(result).toEqual({
      exitCode: 2,
      stdout: 'compiling\nlinking\ntests ✓ 3\ndone\n',
      stderr: 'warning: unused\nerror: 1 failed\n',
      timedOut: false,
      cancelled: false,
      durationMs: 3_000,
      polls: 4,
      handle: expect.objectContaining({ hostId: 'synthetic-r' }),
    });
  });

  it('cancel: finished and cancelled with the output so far; a finished command ignores it', async () => {
    const { blueprint, command } = await commandOn({ commands: [build] });
    const spec = parseCommandSpec({ argv: ['make', 'build'] }, 300);
    const handle = await command.start('c-cancel', spec);
    ctx.clock.advance(1_500);
    await command.cancel(handle);
    ctx.clock.advance(10_000);
    await command.cancel(handle);
    expect(await command.poll(handle, { stdout: 0, stderr: 0 })).toEqual({
      state: 'finished',
      stdout: 'compiling\nlinking\n',
      stderr: 'warning: unused\n',
      exitCode: null,
      timedOut: false,
      cancelled: true,
      durationMs: 1_500,
    });

    const done = await command.start('c-done', spec);
    ctx.clock.advance(3_000);
    await command.cancel(done);
    expect(await command.poll(done, { stdout: 0, stderr: 0 })).toMatchObject({
      state: 'finished',
      exitCode: 2,
      cancelled: false,
    });
    const records = await ctx.records.list(syntheticScopes.commands(blueprint.id, 'synthetic-r'));
    expect(records.filter((r) => r.event === 'cancelled').map((r) => r.commandId)).toEqual([
      'c-cancel',
    ]);
  });

  it('times out at the timeout with the output so far', async () => {
    const { command } = await commandOn({ commands: [build] });
    const result = await run(command, { argv: ['make', 'build'], timeoutSeconds: 2 });
    expect(result).toMatchObject({
      exitCode: null,
      timedOut: true,
      cancelled: false,
      durationMs: 2_000,
      stdout: 'compiling\nlinking\ntests ✓ 3\n',
      stderr: 'warning: unused\n',
    });
  });

  it('a second start of the same command id returns the same handle and counts once', async () => {
    const { blueprint, command } = await commandOn({ vanish: { afterCommands: 2 } });
    const spec = parseCommandSpec({ argv: ['echo', 'once'] }, 300);
    const first = await command.start('c-a', spec);
    ctx.clock.advance(5);
    const again = await plugin.command!(
      { ...ctx },
      blueprint,
      await activeResource(blueprint, 'r'),
      lease,
    ).start('c-a', spec);
    expect(again).toEqual(first);
    expect(await command.poll(first, { stdout: 0, stderr: 0 })).toMatchObject({
      state: 'finished',
      stdout: 'once\n',
    });
    // Command 2 is the last before the host vanishes (not 3: c-a was one command).
    expect((await run(command, { argv: ['echo', 'two'] })).stdout).toBe('two\n');
    await expect(run(command, { argv: ['echo', 'three'] })).rejects.toMatchObject({
      name: 'ResourceGoneError',
      message: expect.stringMatching(/vanished after 2 commands/),
    });
    const records = await ctx.records.list(syntheticScopes.commands(blueprint.id, 'synthetic-r'));
    expect(records.filter((r) => r.commandId === 'c-a')).toHaveLength(1);
    // A command that ended before its host vanished still reports how it ended.
    expect(await command.poll(first, { stdout: 0, stderr: 0 })).toMatchObject({
      state: 'finished',
      exitCode: 0,
    });
  });

  it('a command still running when its host vanishes fails its poll with ResourceGoneError', async () => {
    const { command } = await commandOn({ commands: [build], vanish: { afterSeconds: 2 } });
    const handle = await command.start('c-v', parseCommandSpec({ argv: ['make', 'build'] }, 300));
    ctx.clock.advance(1_000);
    expect((await command.poll(handle, { stdout: 0, stderr: 0 })).state).toBe('running');
    ctx.clock.advance(1_000);
    await expect(command.poll(handle, { stdout: 0, stderr: 0 })).rejects.toMatchObject({
      name: 'ResourceGoneError',
      message: expect.stringContaining('vanished 2s after'),
    });
  });

  it('refuses a handle that is not one of its own', async () => {
    const { command } = await commandOn({});
    await expect(command.poll({ pid: 42 }, { stdout: 0, stderr: 0 })).rejects.toMatchObject({
      name: 'ValidationError',
    });
    await expect(
      command.poll(
        { hostId: 'synthetic-r', commandId: 'never', startedAtMs: 0 },
        { stdout: 0, stderr: 0 },
      ),
    ).rejects.toMatchObject({ name: 'NotFoundError' });
  });
});

describe('synthetic filesystem', () => {
  it('keeps files as records per host; last write wins', async () => {
    const blueprint = blueprintWith({});
    const resource = await activeResource(blueprint, 'r');
    const fs = plugin.filesystem!(ctx, blueprint, resource, lease);
    await fs.put('conf/app.ini', 'v1');
    await fs.put('./conf/app.ini', new Uint8Array([118, 50]));
    expect(Buffer.from(await fs.get('conf/app.ini')).toString()).toBe('v2');
    await expect(fs.get('../x')).rejects.toMatchObject({
      name: 'ValidationError',
      message: expect.stringContaining('../x'),
    });
    await expect(fs.put('/etc/passwd', 'x')).rejects.toMatchObject({ name: 'ValidationError' });
    // Another host does not see it.
    const other = await activeResource(blueprint, 'r2');
    await expect(
      plugin.filesystem!(ctx, blueprint, other, lease).get('conf/app.ini'),
    ).rejects.toMatchObject({
      name: 'NotFoundError',
    });
    await plugin.destroyResource(ctx, blueprint, resource);
    await expect(fs.get('conf/app.ini')).rejects.toMatchObject({ name: 'ResourceGoneError' });
  });
});

describe('hostTimeline', () => {
  const at = (s: number) => new Date(Date.UTC(2030, 0, 1, 0, 0, s)).toISOString();
  const ev = (event: string, hostId: string, s: number) => ({
    event,
    hostId,
    resourceId: `r-${hostId}`,
    at: at(s),
  });

  it('computes the most hosts alive at once', () => {
    const t = hostTimeline([
      ev('created', 'a', 0),
      ev('created', 'b', 1),
      ev('created', 'c', 2),
      ev('vanished', 'a', 3),
      ev('destroyed', 'b', 4),
      ev('created', 'd', 5),
    ]);
    expect(t.maxAlive).toBe(3);
    expect(t.alive).toEqual(['c', 'd']);
    expect(t.events).toHaveLength(6);
  });

  it('orders by time, not by record order, and processes ends before starts at a tie', () => {
    const t = hostTimeline([
      ev('created', 'a', 0),
      ev('created', 'b', 0),
      // Recorded first, but at the same instant as b's destruction: the slot was freed first.
      ev('created', 'c', 5),
      ev('destroyed', 'b', 5),
      ev('destroyed', 'a', 9),
      ev('destroyed', 'c', 7),
    ]);
    expect(t.maxAlive).toBe(2);
    expect(t.alive).toEqual([]);
    expect(t.events.map((e) => `${e.event}:${e.hostId}`)).toEqual([
      'created:a',
      'created:b',
      'destroyed:b',
      'created:c',
      'destroyed:c',
      'destroyed:a',
    ]);
  });

  it('never ends a host before its own creation at the same instant (a frozen clock)', () => {
    const t = hostTimeline([
      ev('created', 'a', 0),
      ev('destroyed', 'a', 0),
      ev('created', 'b', 0),
      ev('vanished', 'b', 0),
      ev('created', 'c', 0),
    ]);
    expect(t.maxAlive).toBe(1);
    expect(t.alive).toEqual(['c']);
    expect(t.events.map((e) => `${e.event}:${e.hostId}`)).toEqual([
      'created:a',
      'destroyed:a',
      'created:b',
      'vanished:b',
      'created:c',
    ]);
  });

  it('counts a host created twice once, and ignores foreign records', () => {
    const t = hostTimeline([
      ev('created', 'a', 0),
      ev('created', 'a', 1),
      { something: 'else' },
      ev('rebooted', 'a', 2),
    ]);
    expect(t.maxAlive).toBe(1);
    expect(t.events).toHaveLength(2);
  });

  it('reads the bill the plug-in writes', async () => {
    const blueprint = blueprintWith({});
    const first = await activeResource(blueprint, 'one');
    await activeResource(blueprint, 'two');
    ctx.clock.advance(1_000);
    // A replacement recorded before the destruction, at the same millisecond (a frozen clock):
    // the tie rule counts the destruction first, so never three alive.
    await activeResource(blueprint, 'three');
    await plugin.destroyResource(ctx, blueprint, first);
    const t = await bill(blueprint);
    expect(t.maxAlive).toBe(2);
    expect(t.alive.sort()).toEqual(['synthetic-three', 'synthetic-two']);
  });
});
