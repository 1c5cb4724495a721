/**
 * The blueprint contract suite: one set of expectations run over every registered type.
 * A new type must add a fixture below (the suite fails for a type without one).
 */
import { access } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type LocalCommandHandle, resourceDir } from '../../lambdas/blueprints/local-host/index.ts';
import { groupRunning } from '../../lambdas/blueprints/local-host/process-group.ts';
import { localRegistry } from '../../lambdas/blueprints/registry.ts';
import { readBinding } from '../../lambdas/blueprints/static-host/bindings.ts';
import { hostTimeline, syntheticScopes } from '../../lambdas/blueprints/synthetic/index.ts';
import type {
  BlueprintType,
  CommandHandle,
  CommandInterface,
  CommandProgress,
  ConfiguredBlueprint,
  ParsedCommand,
  ResourceTemplate,
} from '../../lambdas/core/blueprint.ts';
import { parseCommandSpec } from '../../lambdas/core/command-spec.ts';
import { asLeaseStep, mergedLeaseData } from '../../lambdas/core/lease-steps.ts';
import type { CommandSpec, Lease, Resource } from '../../lambdas/core/model.ts';
import { FakeAws } from '../support/aws-fake/index.ts';
import {
  configuredBlueprint,
  eventually,
  makeLease,
  makeResource,
  type TestContext,
  testContext,
} from './support.ts';
import { wireLocalHostLeases, workingCopyContractLease } from './working-copy-fixture.ts';

interface Fixture {
  /**
   * A config exercising the type's normal path (may rely on defaults for everything else). It
   * must make COUNTER print "1\n2\n3\n" over about a second and SLEEPER run for a minute.
   */
  config: unknown;
  /** Wire the context before the blueprint is made (a cloud fake and its clients). */
  prepare?(ctx: TestContext): void;
  /**
   * Resources start from allocateResource's template, as the allocator writes them (its data
   * names the host the resource is bound to).
   */
  fromTemplate?: boolean;
  /** The lease the suite hands the type (a working copy needs its repositories). */
  lease?(): Partial<Lease>;
  /** Let `ms` pass for the plug-in: its clock (records-only types) or real time (processes). */
  elapse(ctx: TestContext, ms: number): Promise<void>;
  /** Asserts (bounded wait) that nothing of a stopped command still runs, where that can be seen. */
  commandGone?(handle: CommandHandle): Promise<void>;
  /** How many live things (hosts, directories) exist for this resource right now. */
  liveCount(
    ctx: TestContext,
    blueprint: ConfiguredBlueprint<unknown>,
    resource: Resource,
  ): Promise<number>;
}

const fixtures: Record<string, Fixture> = {
  synthetic: {
    // A boot delay, so "eventually active" goes through pending; scripted command timings.
    config: {
      activation: { delaySeconds: 30 },
      commands: [
        {
          match: '^for i in 1 2 3',
          chunks: [
            { afterMs: 300, stdout: '1\n' },
            { afterMs: 600, stdout: '2\n' },
          ],
          stdout: '3\n',
          delayMs: 900,
        },
        { match: '^sleep 60$', delayMs: 60_000 },
      ],
    },
    async elapse(ctx, ms) {
      ctx.clock.advance(ms);
    },
    async liveCount(ctx, blueprint, resource) {
      const bill = hostTimeline(await ctx.records.list(syntheticScopes.hosts(blueprint.id)));
      const created = bill.events.filter(
        (e) => e.event === 'created' && e.resourceId === resource.id,
      );
      expect(created.length).toBeLessThanOrEqual(1);
      return bill.alive.filter((h) => created.some((e) => e.hostId === h)).length;
    },
  },
  'local-host': {
    config: {},
    async commandGone(handle) {
      const { pgid } = handle as LocalCommandHandle;
      expect(await eventually(async () => !(await groupRunning(pgid)), { timeoutMs: 5_000 })).toBe(
        true,
      );
    },
    async elapse(_ctx, ms) {
      await new Promise((resolve) => setTimeout(resolve, ms));
    },
    async liveCount(ctx, blueprint, resource) {
      const dir = resourceDir(ctx, blueprint as never, resource);
      return access(dir).then(
        () => 1,
        () => 0,
      );
    },
  },
};

/** Working copies on real local-host hosts, cloning a real bare repository. */
let workingCopyHosts: ReturnType<typeof wireLocalHostLeases> | undefined;
fixtures['working-copy'] = {
  config: { host: { blueprintIds: ['contract-hosts'] } },
  fromTemplate: true,
  lease: workingCopyContractLease,
  prepare(ctx) {
    workingCopyHosts = wireLocalHostLeases(ctx);
  },
  async commandGone(handle) {
    await fixtures['local-host']?.commandGone?.(handle);
  },
  async elapse(ctx, ms) {
    // Real git runs on the host: real time passes, though less than a step's full delay.
    await new Promise((resolve) => setTimeout(resolve, Math.min(ms, 200)));
    ctx.clock.advance(ms);
  },
  async liveCount(_ctx, _blueprint, resource) {
    return workingCopyHosts?.liveFor(resource) ?? 0;
  },
};

/** The static-host pool in the contract: one tagged instance on the shared AWS fake. */
const CONTRACT_INSTANCE = 'i-0c0c0c0c0c0c0c0c0';
const CONTRACT_POOL = { 'drydock-pool': 'contract' };

fixtures['static-host'] = {
  config: { instances: { tags: CONTRACT_POOL }, logGroupName: '/drydock/contract-commands' },
  fromTemplate: true,
  prepare(ctx) {
    // The fake's time also runs with real time, so the plug-in's real waits between polls of a
    // file transfer see its commands end; the suite's own advances still apply on top.
    const manual = ctx.clock;
    const startedAt = performance.now();
    ctx.clock = {
      now: () => manual.now() + Math.floor(performance.now() - startedAt),
      advance: (ms) => manual.advance(ms),
    };
    const fake = new FakeAws({ clock: ctx.clock });
    fake.addInstance({ id: CONTRACT_INSTANCE, tags: CONTRACT_POOL });
    scriptContractCommands(fake);
    ctx.clients = fake.clients();
  },
  async elapse(ctx, ms) {
    ctx.clock.advance(ms);
  },
  async liveCount(ctx, _blueprint, resource) {
    const binding = await readBinding(ctx, resource.id);
    return binding.instanceId !== undefined && !binding.released ? 1 : 0;
  },
};

/**
 * The SSM hosts' fixtures (static-host, ec2-host) share one script: the fake runs no shell, so
 * COUNTER, SLEEPER and the suite's commands are scripted. Files: put succeeds unscripted; get of
 * note.txt prints what the last put wrote.
 */
function scriptContractCommands(fake: FakeAws): void {
  fake.rule({
    match: /for i in 1 2 3/,
    chunks: [
      { afterMs: 300, stdout: '1\n' },
      { afterMs: 600, stdout: '2\n' },
      { afterMs: 900, stdout: '3\n' },
    ],
  });
  fake.rule({ match: /'sleep' '60'/, durationMs: 60_000 });
  fake.rule({ match: /'echo' 'hello'/, stdout: 'hello\n' });
  fake.rule({ match: /'echo' 'once'/, stdout: 'once\n' });
  fake.rule({
    match: /'nested\/dir\/note\.txt'[\s\S]*base64 -w0/,
    stdout: Buffer.from('second').toString('base64'),
  });
  fake.rule({ match: /'nope\.txt'[\s\S]*test -f/, exitCode: 44 });
}

/** The ec2-host fixture: instances launched on the shared AWS fake, scripted like static-host. */
let contractFake: FakeAws | undefined;
fixtures['ec2-host'] = {
  config: {
    subnetIds: ['subnet-0c0c0c0c'],
    instanceTypes: ['m5.large'],
    instanceProfileArn: 'arn:aws:iam::123456789012:instance-profile/drydock-hosts',
    logGroupName: '/drydock/contract-commands',
  },
  fromTemplate: true,
  prepare(ctx) {
    const manual = ctx.clock;
    const startedAt = performance.now();
    ctx.clock = {
      now: () => manual.now() + Math.floor(performance.now() - startedAt),
      advance: (ms) => manual.advance(ms),
    };
    const fake = new FakeAws({ clock: ctx.clock });
    scriptContractCommands(fake);
    ctx.clients = fake.clients();
    contractFake = fake;
  },
  async elapse(ctx, ms) {
    ctx.clock.advance(ms);
  },
  async liveCount(_ctx, _blueprint, resource) {
    return (contractFake?.launched() ?? []).filter(
      (i) => i.tags['drydock:resource'] === resource.id && ['pending', 'running'].includes(i.state),
    ).length;
  },
};

const registry = localRegistry();
/** Prints 1, 2, 3 about 300 ms apart (scripted the same way for records-only types). */
const COUNTER: CommandSpec = { script: 'for i in 1 2 3; do echo $i; sleep 0.3; done' };
/** Runs for a minute unless stopped. */
const SLEEPER: CommandSpec = { argv: ['sleep', '60'], timeoutSeconds: 120 };

function parsed(spec: CommandSpec): ParsedCommand {
  return parseCommandSpec(spec, 30);
}

describe.each(registry.types())('blueprint contract: %s', (type) => {
  const plugin = registry.require(type) as BlueprintType<unknown>;
  const fixture = fixtures[type];
  let ctx: TestContext;
  let blueprint: ConfiguredBlueprint<unknown>;
  let resource: Resource;
  const lease = makeLease(fixture?.lease?.());

  beforeEach(async () => {
    ctx = await testContext();
    if (!fixture) return;
    fixture.prepare?.(ctx);
    blueprint = configuredBlueprint(plugin, fixture.config, { attributes: { pool: 'contract' } });
    resource = makeResource(blueprint, { id: `res-${type}` });
    if (fixture.fromTemplate) {
      const template = await plugin.allocateResource(ctx, blueprint, lease);
      resource = { ...resource, data: template.data ?? {}, slotLocks: template.slotLocks ?? [] };
    }
  });
  afterEach(async () => {
    await ctx.cleanup();
  });

  /** Call activateResource until it is active (bounded), as the workflow would. */
  async function activate(): Promise<Resource> {
    for (let attempt = 0; attempt < 100; attempt++) {
      const step = await plugin.activateResource(ctx, blueprint, resource);
      resource = { ...resource, data: { ...resource.data, ...step.data } };
      if (step.state === 'active') {
        resource = { ...resource, status: 'active' };
        return resource;
      }
      expect(step.checkAgainSeconds).toBeGreaterThan(0);
      expect(step.message).not.toBe('');
      await fixture!.elapse(ctx, step.checkAgainSeconds * 1000);
    }
    throw new Error(`${type}: resource still pending after 100 activation steps`);
  }

  /** Call a step-based lease hook (activateLease, releaseLease) until it says done, as the engine does. */
  async function leaseSteps(hook: 'activateLease' | 'releaseLease'): Promise<void> {
    let current = lease;
    for (let attempt = 0; attempt < 100; attempt++) {
      const step = asLeaseStep(await plugin[hook]?.(ctx, blueprint, resource, current));
      current = { ...current, data: mergedLeaseData(current, step) };
      if (step.state === 'done') return;
      expect(step.checkAgainSeconds).toBeGreaterThan(0);
      expect(step.message).not.toBe('');
      await fixture!.elapse(ctx, step.checkAgainSeconds * 1000);
    }
    throw new Error(`${type}: ${hook} still pending after 100 steps`);
  }

  it('has a contract fixture and describes itself', () => {
    expect(fixture, `add a fixture for '${type}' to contract.test.ts`).toBeDefined();
    expect(plugin.type).toBe(type);
    expect(plugin.description).not.toBe('');
    expect(plugin.resourceTypes.length).toBeGreaterThan(0);
  });

  it('config schema fills defaults from {} and refuses unknown keys by name', () => {
    expect(plugin.configSchema.safeParse({}).success).toBe(true);
    expect(plugin.configSchema.safeParse(fixture?.config).success).toBe(true);
    const bad = plugin.configSchema.safeParse({ surpriseKey: 1 });
    expect(bad.success).toBe(false);
    expect(z.prettifyError(bad.error as z.ZodError)).toContain('surpriseKey');
  });

  it('allocateResource returns a template without creating anything', async () => {
    const template: ResourceTemplate = await plugin.allocateResource(ctx, blueprint, lease);
    expect(template).toBeTypeOf('object');
    for (const value of Object.values(template.attributes ?? {}))
      expect(value).toBeTypeOf('string');
    for (const key of template.slotLocks ?? []) expect(key).toBeTypeOf('string');
    expect(await fixture!.liveCount(ctx, blueprint, resource)).toBe(0);
  });

  it('activateResource is idempotent and eventually active', async () => {
    const first = await plugin.activateResource(ctx, blueprint, resource);
    const again = await plugin.activateResource(ctx, blueprint, resource);
    expect(again.state).toBe(first.state);
    expect(await fixture!.liveCount(ctx, blueprint, resource)).toBe(1);
    await activate();
    await activate();
    expect(await fixture!.liveCount(ctx, blueprint, resource)).toBe(1);
  });

  it('runs `echo hello` through the command interface', async () => {
    await activate();
    await leaseSteps('activateLease');
    const command = plugin.command?.(ctx, blueprint, resource, lease);
    expect(command, `${type} offers a command interface`).toBeDefined();
    const run = await drive(command!, 'cmd-echo', { argv: ['echo', 'hello'], timeoutSeconds: 10 });
    expect(run.final).toMatchObject({ exitCode: 0, timedOut: false });
    expect(run.stdout).toContain('hello');
    expect(run.final.durationMs).toBeGreaterThanOrEqual(0);
    await leaseSteps('releaseLease');
  });

  it('streams output in order while a command runs longer than one poll', async () => {
    await activate();
    const command = plugin.command!(ctx, blueprint, resource, lease);
    const run = await drive(command, 'cmd-counter', COUNTER);
    expect(run.stdout).toBe('1\n2\n3\n');
    expect(run.final).toMatchObject({ exitCode: 0, timedOut: false });
    // It was seen running, with part of its output, before it finished.
    expect(run.polls.filter((p) => p.state === 'running').length).toBeGreaterThan(0);
    expect(run.polls.some((p) => p.state === 'running' && p.stdout !== '')).toBe(true);
  });

  it('starts a command once however often start is called with its id', async () => {
    await activate();
    const command = plugin.command!(ctx, blueprint, resource, lease);
    const first = await command.start('cmd-twice', parsed({ argv: ['echo', 'once'] }));
    const again = await command.start('cmd-twice', parsed({ argv: ['echo', 'once'] }));
    expect(again).toEqual(first);
    const run = await drive(command, 'cmd-twice', { argv: ['echo', 'once'] }, first);
    expect(run.stdout).toBe('once\n');
  });

  it('cancel stops a running command and polls report it cancelled', async () => {
    await activate();
    const command = plugin.command!(ctx, blueprint, resource, lease);
    const handle = await command.start('cmd-cancel', parsed(SLEEPER));
    expect((await command.poll(handle, { stdout: 0, stderr: 0 })).state).toBe('running');
    await command.cancel(handle);
    const run = await drive(command, 'cmd-cancel', SLEEPER, handle, { maxMs: 5_000 });
    expect(run.final).toMatchObject({ cancelled: true, exitCode: null, timedOut: false });
    await fixture!.commandGone?.(handle);
    await command.cancel(handle); // cancelling an ended command does nothing
  });

  it('kills a command at its timeout and reports timedOut', async () => {
    await activate();
    const command = plugin.command!(ctx, blueprint, resource, lease);
    const spec = { ...SLEEPER, timeoutSeconds: 1 };
    const handle = await command.start('cmd-timeout', parsed(spec));
    const run = await drive(command, 'cmd-timeout', spec, handle, { maxMs: 8_000 });
    expect(run.final).toMatchObject({ timedOut: true, exitCode: null });
    await fixture!.commandGone?.(handle);
  });

  it('refuses a handle it did not write with a ValidationError naming what is wrong', async () => {
    await activate();
    const command = plugin.command!(ctx, blueprint, resource, lease);
    for (const attempt of [
      command.poll({ bogus: true }, { stdout: 0, stderr: 0 }),
      command.cancel({ bogus: true }),
    ]) {
      const err = await attempt.catch((e: unknown) => e);
      expect(err).toMatchObject({ name: 'ValidationError' });
      expect((err as Error).message).toMatch(/^not a .+ command handle: \w+: /);
    }
  });

  /**
   * Poll a command until it finishes, as the workers do (from the offsets already seen), letting
   * time pass between polls; bounded by `maxMs` of the plug-in's time.
   */
  async function drive(
    command: CommandInterface,
    id: string,
    spec: CommandSpec,
    started?: CommandHandle,
    { everyMs = 150, maxMs = 10_000 } = {},
  ) {
    const handle = started ?? (await command.start(id, parsed(spec)));
    const polls: CommandProgress[] = [];
    let stdout = '';
    let stderr = '';
    for (let waited = 0; waited <= maxMs; waited += everyMs) {
      const progress = await command.poll(handle, {
        stdout: Buffer.byteLength(stdout),
        stderr: Buffer.byteLength(stderr),
      });
      polls.push(progress);
      stdout += progress.stdout;
      stderr += progress.stderr;
      if (progress.state === 'finished') return { polls, stdout, stderr, final: progress };
      await fixture!.elapse(ctx, everyMs);
    }
    throw new Error(`${type}: command ${id} still running after ${maxMs}ms`);
  }

  it('round-trips a file through the filesystem interface', async () => {
    await activate();
    const fs = plugin.filesystem?.(ctx, blueprint, resource, lease);
    if (!fs) return;
    await fs.put('nested/dir/note.txt', 'first');
    await fs.put('nested/dir/note.txt', 'second');
    expect(Buffer.from(await fs.get('nested/dir/note.txt')).toString()).toBe('second');
    await expect(fs.get('nope.txt')).rejects.toMatchObject({ name: 'NotFoundError' });
  });

  it('is healthy after activation', async () => {
    await activate();
    expect(await plugin.healthCheck(ctx, blueprint, resource)).toEqual({ healthy: true });
  });

  it('destroyResource is idempotent; afterwards the resource is unhealthy and gone', async () => {
    await activate();
    await plugin.destroyResource(ctx, blueprint, resource);
    await plugin.destroyResource(ctx, blueprint, resource);
    expect(await fixture!.liveCount(ctx, blueprint, resource)).toBe(0);
    const health = await plugin.healthCheck(ctx, blueprint, resource);
    expect(health.healthy).toBe(false);
    if (!health.healthy) expect(health.reason).not.toBe('');
    const command = plugin.command?.(ctx, blueprint, resource, lease);
    await expect(
      (async () => command!.start('cmd-late', parsed({ argv: ['echo', 'late'] })))(),
    ).rejects.toMatchObject({ name: 'ResourceGoneError' });
  });

  it('destroying a resource that never activated is a no-op', async () => {
    await plugin.destroyResource(ctx, blueprint, resource);
    expect(await fixture!.liveCount(ctx, blueprint, resource)).toBe(0);
  });
});
