/**
 * static-host through the shared AWS fake: the pool and its binding locks, activation of an
 * instance (offline, deregistered, setup commands), SSM commands (long output through CloudWatch
 * Logs, timeouts, hosts that go away, throttling, env kept out of errors), and health.
 */
import { ListCommandsCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  commentFor,
  type SsmCommandHandle,
  ssmCommandInterface,
} from '../../lambdas/blueprints/ssm/commands.ts';
import {
  bindingKey,
  makeStaticHostBlueprint,
  staticHostConfigSchema,
} from '../../lambdas/blueprints/static-host/index.ts';
import type {
  BlueprintType,
  CommandInterface,
  ConfiguredBlueprint,
  ParsedCommand,
} from '../../lambdas/core/blueprint.ts';
import { parseCommandSpec } from '../../lambdas/core/command-spec.ts';
import type { CommandSpec, Resource } from '../../lambdas/core/model.ts';
import { FakeAws } from '../support/aws-fake/index.ts';
import {
  configuredBlueprint,
  makeLease,
  makeResource,
  memoryRecords,
  runToEnd,
  type TestContext,
  testContext,
} from './support.ts';

const LOG_GROUP = '/drydock/commands';
const POOL = { 'drydock-pool': 'linux-build' };
const A = 'i-0aaaaaaaaaaaaaaa1';
const B = 'i-0bbbbbbbbbbbbbbb2';

let ctx: TestContext;
let fake: FakeAws;
let held: Set<string>;
let plugin: BlueprintType<unknown>;
const lease = makeLease();

beforeEach(async () => {
  ctx = await testContext();
  fake = new FakeAws({ clock: ctx.clock });
  ctx.clients = fake.clients();
  held = new Set();
  ctx.slotLocks = { held: async (keys) => keys.filter((k) => held.has(k)) };
  // Housekeeping waits (files, cleanup, health ping) pass on the fake clock.
  plugin = makeStaticHostBlueprint({
    env: { DRYDOCK_COMMAND_LOG_GROUP: LOG_GROUP },
    sleep: async (ms) => ctx.clock.advance(ms),
  }) as BlueprintType<unknown>;
  fake.addInstance({ id: A, tags: POOL });
  fake.addInstance({ id: B, tags: POOL });
});
afterEach(async () => {
  await ctx.cleanup();
});

function blueprintWith(config: Record<string, unknown> = {}): ConfiguredBlueprint<unknown> {
  return configuredBlueprint(plugin, { instances: { tags: POOL }, ...config });
}

/** A resource as the allocator writes it: the template's data and slot locks. */
async function allocated(blueprint: ConfiguredBlueprint<unknown>, id = 'res-1'): Promise<Resource> {
  const template = await plugin.allocateResource(ctx, blueprint, lease);
  for (const key of template.slotLocks ?? []) held.add(key);
  return makeResource(blueprint, {
    id,
    data: template.data ?? {},
    slotLocks: template.slotLocks ?? [],
  });
}

async function activated(blueprint: ConfiguredBlueprint<unknown>, id = 'res-1') {
  let resource = await allocated(blueprint, id);
  for (let i = 0; i < 50; i++) {
    const step = await plugin.activateResource(ctx, blueprint, resource);
    resource = { ...resource, data: { ...resource.data, ...step.data } };
    if (step.state === 'active') return { ...resource, status: 'active' as const };
    ctx.clock.advance(step.checkAgainSeconds * 1000);
  }
  throw new Error('still pending');
}

function parsed(spec: CommandSpec): ParsedCommand {
  return parseCommandSpec(spec, 30);
}

/** Run a command to its end, polling every second of fake time. */
function run(command: CommandInterface, id: string, spec: CommandSpec) {
  return runToEnd(command, id, parsed(spec), { between: () => ctx.clock.advance(1_000) });
}

describe('config', () => {
  it('fills defaults and documents the pool default', () => {
    expect(staticHostConfigSchema.parse({})).toMatchObject({
      platform: 'linux',
      workRoot: '/var/lib/drydock',
      setupCommands: [],
      commandDefaults: { timeoutSeconds: 600 },
      offlineGraceSeconds: 300,
    });
  });

  it('refuses windows saying only linux is supported', () => {
    const result = staticHostConfigSchema.safeParse({ platform: 'windows' });
    expect(result.success).toBe(false);
    expect(z.prettifyError(result.error as z.ZodError)).toMatch(
      /platform 'windows' is not supported: static-host only supports 'linux'/,
    );
  });

  it('refuses malformed instance ids and relative work roots, naming them', () => {
    const ids = staticHostConfigSchema.safeParse({ instances: { ids: ['i-xyz', 'mi-0123'] } });
    expect(z.prettifyError(ids.error as z.ZodError)).toContain(
      "'i-xyz' is not a managed instance id",
    );
    const root = staticHostConfigSchema.safeParse({ workRoot: 'var/drydock' });
    expect(z.prettifyError(root.error as z.ZodError)).toContain("(got 'var/drydock')");
    expect(
      staticHostConfigSchema.safeParse({
        instances: { ids: ['i-0123abcd', 'mi-0123456789abcdef0'] },
      }).success,
    ).toBe(true);
  });
});

describe('allocation', () => {
  it('binds a free instance with a binding lock, and names the pool when all are bound', async () => {
    const blueprint = blueprintWith();
    expect(await plugin.canAllocateNow!(ctx, blueprint, lease)).toEqual({ ok: true });
    const first = await plugin.allocateResource(ctx, blueprint, lease);
    expect(first).toMatchObject({ slotLocks: [bindingKey(A)], data: { instanceId: A } });
    held.add(bindingKey(A));
    const second = await plugin.allocateResource(ctx, blueprint, lease);
    expect(second).toMatchObject({ slotLocks: [bindingKey(B)], data: { instanceId: B } });
    held.add(bindingKey(B));
    expect(await plugin.canAllocateNow!(ctx, blueprint, lease)).toEqual({
      ok: false,
      reason: 'all 2 instances of pool tags drydock-pool=linux-build are bound to resources',
    });
    // Nothing was sent to any instance: allocation only decides.
    expect(fake.sent.filter((s) => s.operation === 'SendCommand')).toEqual([]);
  });

  it('skips offline and Windows instances and instances outside the pool', async () => {
    fake.setPing(A, 'ConnectionLost');
    fake.addInstance({ id: 'i-0ccccccccccccccc3', tags: POOL, platform: 'Windows' });
    fake.addInstance({ id: 'i-0ddddddddddddddd4', tags: { 'drydock-pool': 'other' } });
    const template = await plugin.allocateResource(ctx, blueprintWith(), lease);
    expect(template.data).toEqual({ instanceId: B });
    fake.setPing(B, 'Inactive');
    const can = await plugin.canAllocateNow!(ctx, blueprintWith(), lease);
    expect(can.ok).toBe(false);
    if (!can.ok) {
      expect(can.reason).toContain('pool tags drydock-pool=linux-build');
      expect(can.reason).toContain(`instance ${A} is ConnectionLost`);
    }
  });

  it('in a deployment, an instance without its drydock:deployment tag is not in the pool', async () => {
    // The stack allows SendCommand only to instances tagged drydock:deployment=<stack>: an
    // untagged one would be bound and then refused every command.
    plugin = makeStaticHostBlueprint({
      env: { DRYDOCK_COMMAND_LOG_GROUP: LOG_GROUP, DRYDOCK_DEPLOYMENT: 'Drydock' },
      sleep: async (ms) => ctx.clock.advance(ms),
    }) as BlueprintType<unknown>;
    fake.setTags(B, { ...POOL, 'drydock:deployment': 'Drydock' });
    const blueprint = blueprintWith();
    const template = await plugin.allocateResource(ctx, blueprint, lease);
    expect(template.data).toEqual({ instanceId: B }); // A comes first by id, but is untagged
    held.add(bindingKey(B));
    expect(await plugin.canAllocateNow!(ctx, blueprint, lease)).toEqual({
      ok: false,
      reason:
        'all 1 instance of pool tags drydock-pool=linux-build, drydock:deployment=Drydock are bound to resources',
    });
    // An id pool is narrowed the same way.
    const byId = blueprintWith({ instances: { ids: [A] } });
    expect(await plugin.canAllocateNow!(ctx, byId, lease)).toEqual({
      ok: false,
      reason: `no SSM managed instance is registered in pool ids ${A} tagged drydock:deployment=Drydock`,
    });
    // A bound instance that loses the tag leaves the pool (its health says so).
    held.clear();
    const resource = await activated(blueprint);
    expect(resource.data.instanceId).toBe(B);
    expect(await plugin.healthCheck(ctx, blueprint, resource)).toEqual({ healthy: true });
    fake.setTags(B, POOL);
    expect(await plugin.healthCheck(ctx, blueprint, resource)).toEqual({
      healthy: false,
      reason: `instance ${B} is no longer in pool tags drydock-pool=linux-build, drydock:deployment=Drydock`,
    });
  });

  it('an id pool uses exactly its ids', async () => {
    const blueprint = blueprintWith({ instances: { ids: [B] } });
    expect((await plugin.allocateResource(ctx, blueprint, lease)).data).toEqual({ instanceId: B });
  });
});

describe('activation', () => {
  it('is active at once without setup commands', async () => {
    const resource = await activated(blueprintWith());
    expect(resource.data).toMatchObject({ instanceId: A });
  });

  it('waits for an offline instance with a reason naming it, and breaks on a deregistered one', async () => {
    const blueprint = blueprintWith();
    const resource = await allocated(blueprint);
    fake.setPing(A, 'ConnectionLost');
    const step = await plugin.activateResource(ctx, blueprint, resource);
    expect(step).toMatchObject({ state: 'pending' });
    if (step.state === 'pending') expect(step.message).toContain(A);
    fake.deregister(A);
    await expect(plugin.activateResource(ctx, blueprint, resource)).rejects.toThrow(
      new RegExp(`instance ${A} is not registered with SSM`),
    );
  });

  it('runs setup commands once, asynchronously, and fails with their output', async () => {
    fake.rule({ match: /install-toolchain/, stdout: 'installing\n', durationMs: 20_000 });
    const blueprint = blueprintWith({ setupCommands: ['install-toolchain --all'] });
    const resource = await activated(blueprint);
    expect(resource.data.setupDone).toBe(true);
    const setups = fake.sent.filter(
      (s) => s.operation === 'SendCommand' && JSON.stringify(s.input).includes('install-toolchain'),
    );
    expect(setups).toHaveLength(1);

    fake.rule({ match: /broken-setup/, stderr: 'E: no such package\n', exitCode: 100 });
    const failing = blueprintWith({ setupCommands: ['broken-setup'] });
    held.clear();
    await expect(activated(failing, 'res-2')).rejects.toThrow(
      /exited with 100.*E: no such package/s,
    );
  });

  it('reads a setup output over 300 KiB to its end promptly, and fails with the END of it', async () => {
    // Over one poll's 256 KiB: each step must poll on from where the last stopped.
    const body = 'y'.repeat(99).concat('\n').repeat(3_100);
    fake.rule({
      match: /noisy-setup/,
      chunks: [{ afterMs: 1_000, stdout: `${body}the last words of setup\n` }],
      exitCode: 2,
    });
    const blueprint = blueprintWith({ setupCommands: ['noisy-setup'] });
    const resource = await allocated(blueprint);
    let failure: unknown;
    let steps = 0;
    let data = resource.data;
    for (; steps < 10 && failure === undefined; steps++) {
      try {
        const step = await plugin.activateResource(ctx, blueprint, { ...resource, data });
        expect(step.state).toBe('pending');
        if (step.state === 'pending') ctx.clock.advance(step.checkAgainSeconds * 1000);
        data = { ...data, ...step.data };
        // What the resource keeps between steps stays small, however long the output.
        expect(JSON.stringify(data).length).toBeLessThan(16_000);
      } catch (err) {
        failure = err;
      }
    }
    expect(steps).toBeLessThanOrEqual(5);
    expect((failure as Error).message).toMatch(/exited with 2.*the last words of setup/s);
  });
});

describe('commands', () => {
  it('delivers a 40,000-character output whole and in order (through CloudWatch Logs)', async () => {
    const lines = Array.from(
      { length: 1_000 },
      (_, i) => `line ${String(i).padStart(4, '0')} ${'x'.repeat(29)}\n`,
    );
    const text = lines.join('');
    expect(text.length).toBe(40_000);
    fake.rule({
      match: /print-lots/,
      chunks: [
        { afterMs: 1_000, stdout: text.slice(0, 15_000) },
        { afterMs: 2_000, stdout: text.slice(15_000, 31_000) },
        { afterMs: 3_000, stdout: text.slice(31_000) },
      ],
    });
    const blueprint = blueprintWith();
    const resource = await activated(blueprint);
    const command = plugin.command!(ctx, blueprint, resource, lease);
    const out = await run(command, 'cmd-lots', { argv: ['print-lots'] });
    expect(out.exitCode).toBe(0);
    expect(out.stdout.length).toBe(40_000);
    expect(out.stdout).toBe(text);
  });

  it('delivers multi-byte output past the per-poll cap whole, in order, never half a character', async () => {
    const text = '€'.repeat(100_000); // 300,000 bytes: more than one poll's 256 KiB
    fake.rule({
      match: /print-euros/,
      chunks: [
        { afterMs: 500, stdout: text.slice(0, 33_333) },
        { afterMs: 1_000, stdout: text.slice(33_333) },
      ],
    });
    const blueprint = blueprintWith();
    const resource = await activated(blueprint);
    const command = plugin.command!(ctx, blueprint, resource, lease);
    const polls: string[] = [];
    const out = await runToEnd(command, 'cmd-euros', parsed({ argv: ['print-euros'] }), {
      between: () => ctx.clock.advance(1_000),
      onPoll: (p) => {
        polls.push(p.stdout);
      },
    });
    expect(out.exitCode).toBe(0);
    expect(out.stdout).toBe(text);
    expect(polls.every((chunk) => /^€*$/.test(chunk))).toBe(true);
    expect(polls.filter((chunk) => chunk !== '').length).toBeGreaterThan(1);
  });

  it('reports a command past its timeout as timedOut (the SSM executionTimeout stops it)', async () => {
    fake.rule({ match: /'sleep' '600'/, durationMs: 600_000 });
    const blueprint = blueprintWith();
    const resource = await activated(blueprint);
    const command = plugin.command!(ctx, blueprint, resource, lease);
    const out = await run(command, 'cmd-slow', { argv: ['sleep', '600'], timeoutSeconds: 5 });
    expect(out).toMatchObject({ timedOut: true, exitCode: null });
    const send = fake.sent.find(
      (s) => s.operation === 'SendCommand' && JSON.stringify(s.input).includes('sleep'),
    );
    expect(send?.input).toMatchObject({ Parameters: { executionTimeout: ['5'] } });
  });

  it('leaves a command SSM still runs past its timeout to the engine; SSM then times it out', async () => {
    fake.rule({ match: /'make' 'test'/, durationMs: 600_000 });
    const blueprint = blueprintWith();
    const resource = await activated(blueprint);
    const command = plugin.command!(ctx, blueprint, resource, lease);
    const handle = await command.start(
      'cmd-late',
      parsed({ argv: ['make', 'test'], timeoutSeconds: 5 }),
    );
    // The agent is unreachable before delivery (Delayed) and back only after the timeout: SSM
    // starts the command late, so it is still running when its deadline passes. The plug-in
    // reports it running and cancels nothing: the engine stops it (test/engine/static-host.test.ts).
    fake.setPing(A, 'ConnectionLost');
    ctx.clock.advance(40_000);
    fake.setPing(A, 'Online');
    ctx.clock.advance(1_000);
    expect((await command.poll(handle, { stdout: 0, stderr: 0 })).state).toBe('running');
    expect(fake.sent.filter((s) => s.operation === 'CancelCommand')).toHaveLength(0);
    // Left alone, SSM's executionTimeout ends it, and that is reported as a timeout.
    ctx.clock.advance(10_000);
    const progress = await command.poll(handle, { stdout: 0, stderr: 0 });
    expect(progress).toMatchObject({ state: 'finished', timedOut: true, exitCode: null });
  });

  it('an instance offline mid-command → ResourceGoneError naming it; health fails naming it', async () => {
    fake.rule({ match: /long-build/, durationMs: 120_000 });
    const blueprint = blueprintWith({ offlineGraceSeconds: 60 });
    const resource = await activated(blueprint);
    const command = plugin.command!(ctx, blueprint, resource, lease);
    const handle = await command.start(
      'cmd-build',
      parsed({ argv: ['long-build'], timeoutSeconds: 60 }),
    );
    ctx.clock.advance(5_000);
    expect((await command.poll(handle, { stdout: 0, stderr: 0 })).state).toBe('running');
    fake.setPing(A, 'ConnectionLost');
    let error: unknown;
    for (let i = 0; i < 300 && error === undefined; i++) {
      ctx.clock.advance(1_000);
      await command.poll(handle, { stdout: 0, stderr: 0 }).catch((err) => {
        error = err;
      });
    }
    expect(error).toMatchObject({ name: 'ResourceGoneError' });
    expect((error as Error).message).toContain(A);
    // Within the grace it is still healthy; past it, unhealthy naming the instance.
    expect(await plugin.healthCheck(ctx, blueprint, resource)).toEqual({ healthy: true });
    ctx.clock.advance(61_000);
    const health = await plugin.healthCheck(ctx, blueprint, resource);
    expect(health).toMatchObject({ healthy: false });
    if (!health.healthy) expect(health.reason).toContain(`instance ${A} has been ConnectionLost`);
  });

  it('throttling becomes TemporaryError (the engine retries)', async () => {
    const blueprint = blueprintWith();
    const resource = await activated(blueprint);
    const command = plugin.command!(ctx, blueprint, resource, lease);
    fake.throttle('SendCommand', 1);
    await expect(command.start('cmd-t', parsed({ argv: ['echo', 'hi'] }))).rejects.toMatchObject({
      name: 'TemporaryError',
    });
    const handle = await command.start('cmd-t', parsed({ argv: ['echo', 'hi'] }));
    fake.throttle('GetCommandInvocation', 1);
    await expect(command.poll(handle, { stdout: 0, stderr: 0 })).rejects.toMatchObject({
      name: 'TemporaryError',
    });
    fake.throttle('DescribeInstanceInformation', 1);
    await expect(plugin.canAllocateNow!(ctx, blueprint, lease)).rejects.toMatchObject({
      name: 'TemporaryError',
    });
  });

  it('env reaches the host but never an error message', async () => {
    const secret = 's3cr3t-token-value';
    const blueprint = blueprintWith();
    const resource = await activated(blueprint);
    const command = plugin.command!(ctx, blueprint, resource, lease);
    fake.throttle('SendCommand', 1);
    const failure = await command
      .start('cmd-env', parsed({ argv: ['deploy'], env: { TOKEN: secret } }))
      .catch((err: Error) => err);
    expect(failure).toBeInstanceOf(Error);
    expect(`${(failure as Error).message} ${JSON.stringify(failure)}`).not.toContain(secret);
    const badName = await command
      .start('cmd-env2', parsed({ argv: ['deploy'], env: { 'NOT-A-NAME': secret } }))
      .catch((err: Error) => err);
    expect((badName as Error).message).toContain('NOT-A-NAME');
    expect(`${(badName as Error).message} ${JSON.stringify(badName)}`).not.toContain(secret);
    await run(command, 'cmd-env3', { argv: ['deploy'], env: { TOKEN: secret } });
    // It is in the SendCommand parameters, necessarily (documented in the README).
    const sent = fake.sent
      .filter((s) => s.operation === 'SendCommand')
      .map((s) => JSON.stringify(s.input));
    expect(sent.some((s) => s.includes(`export TOKEN='${secret}'`))).toBe(true);
  });
});

describe('the SSM command interface (shared by host types)', () => {
  it('a start retried after a crash between SendCommand and its record finds the command by its Comment', async () => {
    const options = {
      logs: fake.logs,
      clock: ctx.clock,
      instanceId: A,
      workDir: '/var/lib/drydock/res-1/lease-1',
      logGroupName: LOG_GROUP,
    };
    const first = ssmCommandInterface({ ...options, ssm: fake.ssm, records: ctx.records });
    const sent = (await first.start('cmd-crash', parsed({ argv: ['make'] }))) as SsmCommandHandle;
    const sends = fake.sent.filter((s) => s.operation === 'SendCommand');
    expect(sends.map((s) => (s.input as { Comment: string }).Comment)).toEqual([
      commentFor('cmd-crash'),
    ]);

    // The crashed worker recorded its intent but not the handle. The fake does not model
    // ListCommands, so this test answers it as SSM would: the command with our Comment.
    const records = memoryRecords(ctx.clock);
    await records.append('ssm-command:cmd-crash', { intent: true, at: ctx.clock.now() });
    const listed: unknown[] = [];
    const ssm = {
      send: async (command: unknown) => {
        if (!(command instanceof ListCommandsCommand)) return fake.ssm.send(command as never);
        listed.push(command.input);
        return {
          Commands: [
            { CommandId: 'someone-elses', Comment: 'deploy' },
            {
              CommandId: sent.ssmCommandId,
              Comment: commentFor('cmd-crash'),
              Parameters: { executionTimeout: ['30'] },
              RequestedDateTime: new Date(sent.sentAtMs),
              CloudWatchOutputConfig: { CloudWatchLogGroupName: LOG_GROUP },
            },
          ],
        };
      },
    } as unknown as SSMClient;
    const retried = ssmCommandInterface({ ...options, ssm, records });
    const again = await retried.start('cmd-crash', parsed({ argv: ['make'] }));
    expect(again).toEqual(sent);
    expect(listed).toEqual([
      { InstanceId: A, Filters: [{ key: 'InvokedAfter', value: expect.any(String) }] },
    ]);
    expect(fake.sent.filter((s) => s.operation === 'SendCommand')).toHaveLength(1);
    // And the found handle is recorded: the next retry needs no ListCommands.
    await retried.start('cmd-crash', parsed({ argv: ['make'] }));
    expect(listed).toHaveLength(1);
  });

  it('quotes argv and cwd, and refuses a cwd that leaves the working directory', async () => {
    const iface = ssmCommandInterface({
      ssm: fake.ssm,
      logs: fake.logs,
      records: ctx.records,
      clock: ctx.clock,
      instanceId: A,
      workDir: '/w/lease',
      logGroupName: LOG_GROUP,
    });
    await iface.start('cmd-q', parsed({ argv: ['echo', "it's $HOME; rm -rf /"], cwd: 'sub dir' }));
    const input = fake.sent.at(-1)?.input as {
      Parameters: { commands: string[]; executionTimeout: string[] };
      CloudWatchOutputConfig: unknown;
      DocumentName: string;
    };
    expect(input.DocumentName).toBe('AWS-RunShellScript');
    expect(input.Parameters.commands).toEqual([
      "mkdir -p -- '/w/lease' && cd -- '/w/lease' || exit 125",
      "cd -- 'sub dir' || exit 125",
      `'echo' 'it'\\''s $HOME; rm -rf /'`,
    ]);
    expect(input.Parameters.executionTimeout).toEqual(['30']);
    expect(input.CloudWatchOutputConfig).toEqual({
      CloudWatchOutputEnabled: true,
      CloudWatchLogGroupName: LOG_GROUP,
    });
    await expect(
      iface.start('cmd-escape', parsed({ argv: ['ls'], cwd: '../other' })),
    ).rejects.toMatchObject({ name: 'ValidationError' });
  });
});

describe('files', () => {
  it('refuses paths outside the working directory and files over the stated limit', async () => {
    const blueprint = blueprintWith();
    const resource = await activated(blueprint);
    const fs = plugin.filesystem!(ctx, blueprint, resource, lease);
    await expect(fs.put('../other-lease/x', 'x')).rejects.toMatchObject({
      name: 'ValidationError',
    });
    await expect(fs.get('/etc/passwd')).rejects.toMatchObject({ name: 'ValidationError' });
    await expect(fs.put('big.bin', new Uint8Array(1024 * 1024 + 1))).rejects.toThrow(
      /at most 1048576 can be put/,
    );
    // A symlink escape is refused on the host (realpath), reported as a ValidationError.
    fake.rule({ match: /'link\/secret'[\s\S]*base64 -w0/, exitCode: 46 });
    await expect(fs.get('link/secret')).rejects.toThrow(/escapes the working directory/);
  });

  it('refuses a lease id that is not one safe directory name on the host', async () => {
    const blueprint = blueprintWith();
    const resource = await activated(blueprint);
    const evil = makeLease({ id: '../res-2' });
    expect(() => plugin.command!(ctx, blueprint, resource, evil)).toThrow(
      "lease id '../res-2' is not a safe directory name",
    );
  });

  it('puts a file in base64 chunks into the lease directory', async () => {
    const blueprint = blueprintWith();
    const resource = await activated(blueprint);
    const fs = plugin.filesystem!(ctx, blueprint, resource, lease);
    const content = Buffer.alloc(100_000, 7);
    await fs.put('out/data.bin', content);
    const puts = fake.sent
      .filter((s) => s.operation === 'SendCommand')
      .map((s) =>
        (s.input as { Parameters: { commands: string[] } }).Parameters.commands.join('\n'),
      )
      .filter((script) => script.includes('data.bin'));
    expect(puts.length).toBeGreaterThan(1); // 100 KB travels in several commands
    const sent = puts
      .flatMap((script) => [...script.matchAll(/printf %s '([A-Za-z0-9+/=]+)'/g)].map((m) => m[1]))
      .join('');
    expect(Buffer.from(sent, 'base64').equals(content)).toBe(true);
    expect(puts[0]).toContain("'/var/lib/drydock/res-1/lease-1'");
  });
});

describe('health', () => {
  it('an instance whose pool tag is removed is unhealthy, naming it', async () => {
    const blueprint = blueprintWith();
    const resource = await activated(blueprint);
    expect(await plugin.healthCheck(ctx, blueprint, resource)).toEqual({ healthy: true });
    fake.setTags(A, {});
    expect(await plugin.healthCheck(ctx, blueprint, resource)).toEqual({
      healthy: false,
      reason: `instance ${A} is no longer in pool tags drydock-pool=linux-build`,
    });
  });

  it('asks SSM about a tag pool once per health check; twice only for an instance not in it', async () => {
    const blueprint = blueprintWith();
    const resource = await activated(blueprint);
    const describes = () =>
      fake.calls.filter((c) => c.operation === 'DescribeInstanceInformation').length;
    let before = describes();
    expect(await plugin.healthCheck(ctx, blueprint, resource)).toEqual({ healthy: true });
    expect(describes() - before).toBe(1);
    fake.setTags(A, {});
    before = describes();
    expect(await plugin.healthCheck(ctx, blueprint, resource)).toMatchObject({ healthy: false });
    expect(describes() - before).toBe(2);
  });

  it('a deregistered instance is unhealthy, naming it', async () => {
    const blueprint = blueprintWith();
    const resource = await activated(blueprint);
    fake.deregister(A);
    expect(await plugin.healthCheck(ctx, blueprint, resource)).toEqual({
      healthy: false,
      reason: `instance ${A} is no longer registered with SSM`,
    });
  });

  it('housekeeping (health ping, file put, cleanup) sends plainly: no idempotency records', async () => {
    const blueprint = blueprintWith();
    const resource = await activated(blueprint);
    expect(await plugin.healthCheck(ctx, blueprint, resource)).toEqual({ healthy: true });
    await plugin.filesystem!(ctx, blueprint, resource, lease).put('a.txt', 'a');
    await plugin.releaseLease!(ctx, blueprint, resource, lease);
    const sends = fake.sent.filter((s) => s.operation === 'SendCommand');
    expect(sends.length).toBeGreaterThanOrEqual(3);
    expect(sends.map((s) => (s.input as { Comment: string }).Comment)).toEqual(
      sends.map(() => 'drydock housekeeping'),
    );
    expect([...ctx.records.dump().keys()].filter((k) => k.startsWith('ssm-command:'))).toEqual([]);
  });

  it('releaseLease removes the lease directory on the host', async () => {
    const blueprint = blueprintWith();
    const resource = await activated(blueprint);
    await plugin.releaseLease!(ctx, blueprint, resource, lease);
    const scripts = fake.sent
      .filter((s) => s.operation === 'SendCommand')
      .map((s) => JSON.stringify(s.input));
    expect(scripts.some((s) => s.includes("rm -rf -- '/var/lib/drydock/res-1/lease-1'"))).toBe(
      true,
    );
  });
});
