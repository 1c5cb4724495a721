/**
 * local-host with real child processes and real files in a temp dir.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { commandOver } from '../../lambdas/blueprints/local-host/command-files.ts';
import {
  commandDir,
  type LocalCommandHandle,
  type LocalHostConfig,
  localHostBlueprint,
  resourceDir,
} from '../../lambdas/blueprints/local-host/index.ts';
import type {
  BlueprintContext,
  CommandHandle,
  CommandInterface,
  CommandProgress,
  ConfiguredBlueprint,
  ParsedCommand,
} from '../../lambdas/core/blueprint.ts';
import { parseCommandSpec } from '../../lambdas/core/command-spec.ts';
import type { CommandSpec, Resource } from '../../lambdas/core/model.ts';
import {
  configuredBlueprint,
  eventually,
  makeLease,
  makeResource,
  manualClock,
  memoryRecords,
  processAlive,
  runToEnd,
  type TestContext,
  testContext,
} from './support.ts';

const DEFAULT_TIMEOUT_SECONDS = 300;

const plugin = localHostBlueprint;
const lease = makeLease();

let ctx: TestContext;
let blueprint: ConfiguredBlueprint<LocalHostConfig>;
let resource: Resource;
let dir: string;
let command: CommandInterface;

async function setUp(config: unknown = {}): Promise<void> {
  blueprint = configuredBlueprint(plugin, config);
  resource = makeResource(blueprint, { id: 'res-local' });
  const step = await plugin.activateResource(ctx, blueprint, resource);
  expect(step.state).toBe('active');
  resource = { ...resource, status: 'active', data: { ...step.data } };
  dir = resourceDir(ctx, blueprint, resource);
  command = plugin.command!(ctx, blueprint, resource, lease);
}

beforeEach(async () => {
  ctx = await testContext();
  await setUp();
});
afterEach(async () => {
  // Destroy kills whatever a failed test left running before the files go.
  await plugin.destroyResource(ctx, blueprint, resource);
  await ctx.cleanup();
});

describe('local-host resources', () => {
  it('lives in <dataDir>/local-host/<blueprintId>/<resourceId> by default', () => {
    expect(dir).toBe(join(ctx.dataDir, 'local-host', blueprint.id, resource.id));
    expect(resource.data.dir).toBe(dir);
  });

  it('sets platform only when the operator did not', async () => {
    expect(await plugin.allocateResource(ctx, blueprint, lease)).toEqual({
      attributes: { platform: process.platform },
    });
    const pinned = configuredBlueprint(plugin, {}, { attributes: { platform: 'plan9' } });
    expect(await plugin.allocateResource(ctx, pinned, lease)).toEqual({});
  });

  it('refuses a resource id that is not one safe path segment', async () => {
    const evil = makeResource(blueprint, { id: '..' });
    await expect(plugin.destroyResource(ctx, blueprint, evil)).rejects.toThrow(/not a safe/);
    const nested = makeResource(blueprint, { id: 'a/../../b' });
    await expect(plugin.activateResource(ctx, blueprint, nested)).rejects.toThrow(/not a safe/);
  });

  it('config: root must be absolute', () => {
    const bad = plugin.configSchema.safeParse({ root: 'relative/dir' });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.message).toContain('relative/dir');
  });

  it('a vanished directory fails commands and lease activation: ResourceGoneError', async () => {
    await rm(dir, { recursive: true });
    await expect(command.start('cmd-gone', parsed({ argv: ['true'] }))).rejects.toMatchObject({
      name: 'ResourceGoneError',
    });
    await expect(plugin.activateLease!(ctx, blueprint, resource, lease)).rejects.toMatchObject({
      name: 'ResourceGoneError',
    });
    expect(await plugin.healthCheck(ctx, blueprint, resource)).toMatchObject({ healthy: false });
  });
});

/** Parse a spec the way the engine does before handing it to the plug-in. */
function parsed(spec: CommandSpec): ParsedCommand {
  return parseCommandSpec(spec, DEFAULT_TIMEOUT_SECONDS);
}

let commandCount = 0;
/** Run a command to its end with a fresh command id. */
function run(spec: CommandSpec, options: Parameters<typeof runToEnd>[3] = {}) {
  commandCount += 1;
  return runToEnd(command, `cmd-${commandCount}`, parsed(spec), options);
}

/** Poll until `check` holds for the output so far (bounded), as the engine would. */
async function pollUntil(
  handle: CommandHandle,
  check: (stdout: string, progress: CommandProgress) => boolean,
  { intervalMs = 50, timeoutMs = 10_000, iface = command } = {},
): Promise<{ stdout: string; progress: CommandProgress }> {
  const deadline = performance.now() + timeoutMs;
  let stdout = '';
  let stderr = '';
  for (;;) {
    const progress = await iface.poll(handle, {
      stdout: Buffer.byteLength(stdout),
      stderr: Buffer.byteLength(stderr),
    });
    stdout += progress.stdout;
    stderr += progress.stderr;
    if (check(stdout, progress)) return { stdout, progress };
    if (performance.now() > deadline) throw new Error(`condition not met; stdout: ${stdout}`);
    await new Promise((done) => setTimeout(done, intervalMs));
  }
}

describe('local-host command interface', () => {
  it('runs argv without a shell and reports output and exit code', async () => {
    const result = await run({ argv: ['echo', 'hello', '$HOME'] });
    expect(result).toMatchObject({
      exitCode: 0,
      stdout: 'hello $HOME\n',
      stderr: '',
      timedOut: false,
    });
    expect(result.truncated).toBeUndefined();
  });

  it('runs scripts with the shell and reports a non-zero exit code', async () => {
    const result = await run({ script: 'echo out; echo err >&2; exit 3' });
    expect(result).toMatchObject({
      exitCode: 3,
      stdout: 'out\n',
      stderr: 'err\n',
      timedOut: false,
    });
    expect((await run({ argv: ['false'] })).exitCode).toBe(1);
  });

  it('reports a program that does not exist as exit code 127', async () => {
    const result = await run({ argv: ['drydock-no-such-program'] });
    expect(result.exitCode).toBe(127);
    expect(result.stderr).toContain('ENOENT');
  });

  it('runs in the resource directory (or a cwd inside it) with a minimal environment', async () => {
    const realDir = await realpath(dir);
    await mkdir(join(dir, 'sub'));
    process.env.DRYDOCK_TEST_LEAK = 'leaked';
    try {
      const result = await run({
        script: 'pwd; echo "$HOME|$GREETING|$DRYDOCK_TEST_LEAK"',
        env: { GREETING: 'hi' },
      });
      expect(result.stdout).toBe(`${realDir}\n${realDir}|hi|\n`);
    } finally {
      delete process.env.DRYDOCK_TEST_LEAK;
    }
    expect((await run({ argv: ['pwd'], cwd: 'sub' })).stdout).toBe(`${realDir}/sub\n`);
    await expect(
      command.start('cmd-up', parsed({ argv: ['pwd'], cwd: '../..' })),
    ).rejects.toMatchObject({
      name: 'ValidationError',
      message: expect.stringContaining('../..'),
    });
    await expect(
      command.start('cmd-missing', parsed({ argv: ['pwd'], cwd: 'missing' })),
    ).rejects.toMatchObject({
      name: 'ValidationError',
    });
  });

  it('on timeout kills the whole process group, grandchildren included', async () => {
    const started = performance.now();
    const result = await run({
      // $$ is the shell (the leader's child); $! a background sleep (a grandchild).
      script: 'echo $$; sleep 30 & echo $!; sleep 30',
      timeoutSeconds: 1,
    });
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(result).toMatchObject({ timedOut: true, exitCode: null });
    const pids = result.stdout.trim().split('\n').map(Number);
    expect(pids).toHaveLength(2);
    for (const pid of pids) {
      expect(pid).toBeGreaterThan(1);
      expect(await eventually(async () => !(await processAlive(pid)), { timeoutMs: 3_000 })).toBe(
        true,
      );
    }
  });

  it('SIGKILLs a process group that ignores SIGTERM after the grace period', async () => {
    const started = performance.now();
    const result = await run({
      script: "trap '' TERM; echo $$; while :; do sleep 0.1; done",
      // The engine's spec check allows whole seconds only (it was 0.5 before).
      timeoutSeconds: 1,
    });
    expect(result).toMatchObject({ timedOut: true, exitCode: null });
    expect(performance.now() - started).toBeLessThan(6_000);
    const pid = Number(result.stdout.trim());
    expect(await eventually(async () => !(await processAlive(pid)), { timeoutMs: 3_000 })).toBe(
      true,
    );
  });

  it('cancel stops a running command and reports it cancelled (was: an AbortSignal)', async () => {
    const handle = await command.start('cmd-cancel', parsed({ script: 'echo started; sleep 30' }));
    const seen = await pollUntil(handle, (stdout) => stdout === 'started\n');
    await command.cancel(handle);
    const { progress } = await pollUntil(handle, (_, p) => p.state === 'finished', {
      intervalMs: 200,
    });
    expect(progress).toMatchObject({
      state: 'finished',
      timedOut: false,
      exitCode: null,
      cancelled: true,
    });
    expect(seen.stdout).toBe('started\n');
    expect(progress.state === 'finished' && progress.durationMs).toBeLessThan(5_000);

    // Cancelling a command that already finished changes nothing.
    const done = await run({ argv: ['true'] });
    await command.cancel(done.handle);
    const again = await command.poll(done.handle, { stdout: 0, stderr: 0 });
    expect(again).toMatchObject({ state: 'finished', exitCode: 0, timedOut: false });
    expect(again).not.toHaveProperty('cancelled');
  });

  it('truncates output past maxOutputBytes and still lets the command finish', async () => {
    await setUp({ maxOutputBytes: 1000 });
    const result = await run({
      script: "head -c 200000 /dev/zero | tr '\\0' a; echo done >&2",
    });
    expect(result).toMatchObject({
      exitCode: 0,
      timedOut: false,
      truncated: true,
      stderr: 'done\n',
    });
    expect(result.stdout).toBe('a'.repeat(1000));
  });
});

describe('local-host commands are asynchronous and outlive their starter', () => {
  it('output arrives over several polls, in order', async () => {
    const chunks: string[] = [];
    const result = await run(
      { script: 'for i in 1 2 3; do echo $i; sleep 0.3; done' },
      {
        onPoll: (progress) => {
          if (progress.stdout !== '') chunks.push(progress.stdout);
        },
      },
    );
    expect(result).toMatchObject({ exitCode: 0, stdout: '1\n2\n3\n', timedOut: false });
    expect(chunks.length).toBeGreaterThanOrEqual(2);
    expect(chunks.join('')).toBe('1\n2\n3\n');
  });

  it('a fresh process can poll with the handle alone (read back from JSON)', async () => {
    const handle = await command.start(
      'cmd-survivor',
      parsed({ script: 'echo one; sleep 0.5; echo two' }),
    );
    const stored = JSON.stringify(handle);
    // Another worker: its own context object, blueprint, resource and interface; same disk.
    const other: BlueprintContext = {
      ...ctx,
      clock: manualClock(),
      records: memoryRecords(),
    };
    const otherBlueprint = configuredBlueprint(plugin, {});
    const otherResource = makeResource(otherBlueprint, { id: 'res-local', status: 'active' });
    const otherCommand = plugin.command!(other, otherBlueprint, otherResource, lease);
    const { stdout, progress } = await pollUntil(
      JSON.parse(stored) as CommandHandle,
      (_, p) => p.state === 'finished',
      { iface: otherCommand },
    );
    expect(stdout).toBe('one\ntwo\n');
    expect(progress).toMatchObject({ state: 'finished', exitCode: 0, timedOut: false });
  });

  it('a command outlives the process that started it being SIGKILLed', async () => {
    // A separate worker process starts the command, hands over the handle, and is killed.
    const root = process.cwd();
    // .mts: the data dir is outside the package, where .ts would be CommonJS.
    const starter = join(ctx.dataDir, 'starter.mts');
    await writeFile(
      starter,
      `import { localHostBlueprint } from '${root}/lambdas/blueprints/local-host/index.ts';
import { parseCommandSpec } from '${root}/lambdas/core/command-spec.ts';
import { configuredBlueprint, makeLease, makeResource } from '${root}/test/blueprints/support.ts';
const blueprint = configuredBlueprint(localHostBlueprint, {});
const resource = makeResource(blueprint, { id: 'res-local', status: 'active' });
const ctx = { dataDir: process.argv[2] };
const command = localHostBlueprint.command(ctx, blueprint, resource, makeLease());
const spec = { script: 'echo before; sleep 1; echo after; exit 4' };
const handle = await command.start('cmd-crash', parseCommandSpec(spec, 300));
process.stdout.write(JSON.stringify(handle) + '\\n');
setInterval(() => {}, 1000);
`,
    );
    const worker = spawn(process.execPath, ['--import', 'tsx', starter, ctx.dataDir], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = once(worker, 'exit');
    const [line] = (await Promise.race([
      once(worker.stdout!, 'data'),
      exited.then(([code]) => {
        throw new Error(`the starter exited (${code}) before handing over a handle`);
      }),
    ])) as [Buffer];
    worker.kill('SIGKILL');
    expect((await exited)[1]).toBe('SIGKILL');
    const handle = JSON.parse(line.toString()) as CommandHandle;
    const { stdout, progress } = await pollUntil(handle, (_, p) => p.state === 'finished');
    expect(stdout).toBe('before\nafter\n');
    expect(progress).toMatchObject({ state: 'finished', exitCode: 4, timedOut: false });
  });

  it('the exit status is recorded by the process tree itself, with nobody polling', async () => {
    const handle = await command.start('cmd-seven', parsed({ script: 'sleep 1; exit 7' }));
    const { pid } = handle as LocalCommandHandle;
    expect(await eventually(async () => !(await processAlive(pid)), { timeoutMs: 10_000 })).toBe(
      true,
    );
    const progress = await command.poll(handle, { stdout: 0, stderr: 0 });
    expect(progress).toMatchObject({ state: 'finished', exitCode: 7, timedOut: false });
    expect(progress.state === 'finished' && progress.durationMs).toBeGreaterThanOrEqual(1_000);
  });

  it.each([
    ['that stops on SIGTERM', ''],
    ['that ignores SIGTERM', "trap '' TERM; "],
  ])('cancel kills the whole group %s within 5 s, polled once a second', async (_, trap) => {
    const handle = await command.start(
      `cmd-group-${trap === '' ? 'term' : 'kill'}`,
      parsed({ script: `${trap}echo $$; sleep 60 & echo $!; sleep 60` }),
    );
    const { stdout } = await pollUntil(handle, (out) => out.split('\n').length === 3);
    const pids = stdout.trim().split('\n').map(Number);
    const cancelled = performance.now();
    await command.cancel(handle);
    expect(performance.now() - cancelled).toBeLessThan(500);
    const { progress } = await pollUntil(handle, (_, p) => p.state === 'finished', {
      intervalMs: 1_000,
      timeoutMs: 5_000,
    });
    expect(performance.now() - cancelled).toBeLessThan(5_000);
    expect(progress).toMatchObject({
      state: 'finished',
      cancelled: true,
      timedOut: false,
      exitCode: null,
    });
    for (const pid of pids) expect(await processAlive(pid)).toBe(false);
  });

  it('start is idempotent by command id, even when two starts race', async () => {
    const spec = parsed({ script: 'echo ran >> runs.txt' });
    const [first, second] = await Promise.all([
      command.start('cmd-once', spec),
      command.start('cmd-once', spec),
    ]);
    expect(second).toEqual(first);
    await pollUntil(first, (_, p) => p.state === 'finished');
    expect(await command.start('cmd-once', spec)).toEqual(first);
    expect(await readFile(join(dir, 'runs.txt'), 'utf8')).toBe('ran\n');
  });

  it('keeps its state outside the resource directory, safe from the command cleaning it', async () => {
    const result = await run({ script: 'rm -rf ./* ./.[!.]*; echo still here' });
    expect(result).toMatchObject({ exitCode: 0, stdout: 'still here\n' });
    expect((result.handle as LocalCommandHandle).dir).toBe(
      relative(ctx.dataDir, commandDir(ctx, blueprint, resource, `cmd-${commandCount}`)),
    );
  });

  it('refuses a handle of another resource and a vanished resource', async () => {
    const handle = await command.start('cmd-mine', parsed({ argv: ['true'] }));
    const otherResource = makeResource(blueprint, { id: 'res-other', status: 'active' });
    const other = plugin.command!(ctx, blueprint, otherResource, lease);
    await expect(other.poll(handle, { stdout: 0, stderr: 0 })).rejects.toMatchObject({
      name: 'ValidationError',
    });
    await expect(command.poll({ dir: 'x' }, { stdout: 0, stderr: 0 })).rejects.toMatchObject({
      name: 'ValidationError',
    });
    await pollUntil(handle, (_, p) => p.state === 'finished');
    await rm(dir, { recursive: true });
    await expect(command.poll(handle, { stdout: 0, stderr: 0 })).rejects.toMatchObject({
      name: 'ResourceGoneError',
    });
  });

  it('destroying the resource kills its running commands', async () => {
    const handle = await command.start('cmd-orphan', parsed({ script: 'echo $$; sleep 60' }));
    const { stdout } = await pollUntil(handle, (out) => out.endsWith('\n'));
    await plugin.destroyResource(ctx, blueprint, resource);
    const pid = Number(stdout.trim());
    expect(await eventually(async () => !(await processAlive(pid)), { timeoutMs: 3_000 })).toBe(
      true,
    );
  });

  it('never splits a UTF-8 character between polls', async () => {
    // 'é' is 2 bytes, '€' 3, '😀' 4; printed a byte at a time, with pauses in between.
    const result = await run(
      {
        script:
          "for b in 'a' '\\303' '\\251' '\\342' '\\202' '\\254' '\\360' '\\237' '\\230' '\\200'; do printf \"$b\"; sleep 0.05; done",
      },
      { intervalMs: 20 },
    );
    expect(result).toMatchObject({ exitCode: 0, stdout: 'aé€😀' });
  });
});

describe('when a local command is over (one rule for polls and destroy)', () => {
  it('is over once it exited by itself or its group was seen gone, not while being stopped', () => {
    const exit = { code: 0, signal: null, at: 1 };
    const kill = { reason: 'cancel', at: 1 };
    const gone = { at: 2 };
    expect(commandOver({})).toBe(false);
    expect(commandOver({ exit })).toBe(true);
    expect(commandOver({ exit, kill })).toBe(false);
    expect(commandOver({ kill })).toBe(false);
    expect(commandOver({ exit, kill, gone })).toBe(true);
    expect(commandOver({ gone })).toBe(true);
  });
});

describe('local-host filesystem interface', () => {
  let outside: string;

  beforeEach(async () => {
    outside = await mkdtemp(join(tmpdir(), 'drydock-outside-'));
    await writeFile(join(outside, 'secret'), 'secret');
  });
  afterEach(async () => {
    await rm(outside, { recursive: true, force: true });
  });

  it('puts and gets files inside the resource directory', async () => {
    const fs = plugin.filesystem!(ctx, blueprint, resource, lease);
    await fs.put('a/b/c.txt', 'content');
    expect(await readFile(join(dir, 'a/b/c.txt'), 'utf8')).toBe('content');
    await fs.put('bin.dat', new Uint8Array([0, 1, 2, 255]));
    expect([...(await fs.get('bin.dat'))]).toEqual([0, 1, 2, 255]);
    // A link that stays inside is fine.
    await symlink(join(dir, 'a'), join(dir, 'inner-link'));
    expect(Buffer.from(await fs.get('inner-link/b/c.txt')).toString()).toBe('content');
  });

  it.each([
    ['../x', /escapes/],
    ['a/../../x', /escapes/],
    ['/etc/passwd', /absolute/],
  ])('refuses %s, naming the path', async (path, why) => {
    const fs = plugin.filesystem!(ctx, blueprint, resource, lease);
    for (const attempt of [() => fs.get(path), () => fs.put(path, 'x')]) {
      await expect(attempt()).rejects.toMatchObject({
        name: 'ValidationError',
        message: expect.stringMatching(why),
      });
      await expect(attempt()).rejects.toThrow(path);
    }
  });

  it('refuses symlinks that resolve outside the resource', async () => {
    const fs = plugin.filesystem!(ctx, blueprint, resource, lease);
    await symlink(outside, join(dir, 'out-dir'));
    await symlink(join(outside, 'secret'), join(dir, 'out-file'));
    await symlink(join(outside, 'does-not-exist'), join(dir, 'dangling'));
    for (const attempt of [
      () => fs.get('out-dir/secret'),
      () => fs.get('out-file'),
      () => fs.put('out-dir/new/file', 'x'),
      () => fs.put('out-file', 'overwritten'),
      () => fs.put('dangling', 'x'),
    ]) {
      await expect(attempt()).rejects.toMatchObject({
        name: 'ValidationError',
        message: expect.stringMatching(/'(out-dir|out-file|dangling)[^']*' resolves outside/),
      });
    }
    expect(await readFile(join(outside, 'secret'), 'utf8')).toBe('secret');
    await expect(readFile(join(outside, 'new/file'))).rejects.toThrow();
    await expect(readFile(join(outside, 'does-not-exist'))).rejects.toThrow();
  });

  it('destroy removes the directory and nothing outside it', async () => {
    await symlink(outside, join(dir, 'out-dir'));
    await plugin.destroyResource(ctx, blueprint, resource);
    await expect(readFile(join(dir, 'out-dir/secret'))).rejects.toThrow();
    expect(await readFile(join(outside, 'secret'), 'utf8')).toBe('secret');
  });
});
