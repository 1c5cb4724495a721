/**
 * local-host with real child processes and real files in a temp dir.
 */
import { mkdir, mkdtemp, readFile, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type LocalHostConfig,
  localHostBlueprint,
  resourceDir,
} from '../../lambdas/blueprints/local-host/index.ts';
import type { CommandInterface, ConfiguredBlueprint } from '../../lambdas/core/blueprint.ts';
import type { Resource } from '../../lambdas/core/model.ts';
import {
  configuredBlueprint,
  eventually,
  makeLease,
  makeResource,
  processAlive,
  type TestContext,
  testContext,
} from './support.ts';

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
    await expect(command.run({ argv: ['true'] })).rejects.toMatchObject({
      name: 'ResourceGoneError',
    });
    await expect(plugin.activateLease!(ctx, blueprint, resource, lease)).rejects.toMatchObject({
      name: 'ResourceGoneError',
    });
    expect(await plugin.healthCheck(ctx, blueprint, resource)).toMatchObject({ healthy: false });
  });
});

describe('local-host command interface', () => {
  it('runs argv without a shell and reports output and exit code', async () => {
    const result = await command.run({ argv: ['echo', 'hello', '$HOME'] });
    expect(result).toMatchObject({
      exitCode: 0,
      stdout: 'hello $HOME\n',
      stderr: '',
      timedOut: false,
    });
    expect(result.truncated).toBeUndefined();
  });

  it('runs scripts with the shell and reports a non-zero exit code', async () => {
    const result = await command.run({ script: 'echo out; echo err >&2; exit 3' });
    expect(result).toMatchObject({
      exitCode: 3,
      stdout: 'out\n',
      stderr: 'err\n',
      timedOut: false,
    });
    expect((await command.run({ argv: ['false'] })).exitCode).toBe(1);
  });

  it('reports a program that does not exist as exit code 127', async () => {
    const result = await command.run({ argv: ['drydock-no-such-program'] });
    expect(result.exitCode).toBe(127);
    expect(result.stderr).toContain('ENOENT');
  });

  it('runs in the resource directory (or a cwd inside it) with a minimal environment', async () => {
    const realDir = await realpath(dir);
    await mkdir(join(dir, 'sub'));
    process.env.DRYDOCK_TEST_LEAK = 'leaked';
    try {
      const result = await command.run({
        script: 'pwd; echo "$HOME|$GREETING|$DRYDOCK_TEST_LEAK"',
        env: { GREETING: 'hi' },
      });
      expect(result.stdout).toBe(`${realDir}\n${realDir}|hi|\n`);
    } finally {
      delete process.env.DRYDOCK_TEST_LEAK;
    }
    expect((await command.run({ argv: ['pwd'], cwd: 'sub' })).stdout).toBe(`${realDir}/sub\n`);
    await expect(command.run({ argv: ['pwd'], cwd: '../..' })).rejects.toMatchObject({
      name: 'ValidationError',
      message: expect.stringContaining('../..'),
    });
    await expect(command.run({ argv: ['pwd'], cwd: 'missing' })).rejects.toMatchObject({
      name: 'ValidationError',
    });
  });

  it('on timeout kills the whole process group, grandchildren included', async () => {
    const started = performance.now();
    const result = await command.run({
      // $$ is the shell (our child); $! a background sleep (a grandchild of the worker).
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
    const result = await command.run({
      script: "trap '' TERM; echo $$; while :; do sleep 0.1; done",
      timeoutSeconds: 0.5,
    });
    expect(result).toMatchObject({ timedOut: true, exitCode: null });
    expect(performance.now() - started).toBeLessThan(6_000);
    const pid = Number(result.stdout.trim());
    expect(await eventually(async () => !(await processAlive(pid)), { timeoutMs: 3_000 })).toBe(
      true,
    );
  });

  it('honours an AbortSignal like a timeout', async () => {
    const abort = new AbortController();
    const running = command.run({ script: 'echo started; sleep 30' }, { signal: abort.signal });
    setTimeout(() => abort.abort(), 200);
    const result = await running;
    expect(result).toMatchObject({ timedOut: true, exitCode: null, stdout: 'started\n' });
    expect(result.durationMs).toBeLessThan(5_000);

    const already = await command.run({ argv: ['true'] }, { signal: AbortSignal.abort() });
    expect(already).toMatchObject({ timedOut: true, exitCode: null });
  });

  it('truncates output past maxOutputBytes and still lets the command finish', async () => {
    await setUp({ maxOutputBytes: 1000 });
    const result = await command.run({
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
