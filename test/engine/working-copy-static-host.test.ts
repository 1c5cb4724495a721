/**
 * A working copy on a static-host host, unchanged: the plug-in only runs commands through its
 * host lease, so every git call goes out as one SSM command (played by the shared AWS fake,
 * which runs no shell: the git answers are scripted), each with its own timeout, relative paths
 * and the non-interactive git environment. Real git runs in test/engine/working-copy.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { makeStaticHostBlueprint } from '../../lambdas/blueprints/static-host/index.ts';
import { workingCopyBlueprint } from '../../lambdas/blueprints/working-copy/index.ts';
import { BlueprintRegistry } from '../../lambdas/core/blueprint.ts';
import { createBlueprint, releaseLease, requestLease } from '../../lambdas/core/use-cases.ts';
import { FakeAws } from '../support/aws-fake/index.ts';
import { runCommandToEnd } from '../support/commands.ts';
import type { TestClock } from '../support/manual-queue.ts';
import { leaseNow, testSystem } from '../support/system.ts';

const INSTANCE = 'i-0aaaaaaaaaaaaaaaa';
const POOL = { 'drydock-pool': 'git-hosts' };
const SHA = 'c0ffee'.padEnd(40, '0');
const ci = { principal: 'ci' };

interface SendCommandInput {
  Parameters: { commands: string[]; executionTimeout: string[] };
}

describe('working copies on static-host hosts', () => {
  it('every git call is one SSM command with its own timeout, never interactive', async () => {
    let clock: TestClock | undefined;
    const startedAt = performance.now();
    const fake = new FakeAws({
      clock: {
        now: () => (clock?.now() ?? Date.now()) + Math.floor(performance.now() - startedAt),
      },
    });
    fake.addInstance({ id: INSTANCE, tags: POOL });
    fake.rule({ match: /'fsck'/, exitCode: 3 }); // no clone on the host yet
    fake.rule({ match: /'rev-parse' '--git-dir'/, stdout: '.git\n' });
    fake.rule({
      match: /'rev-parse' '--verify' '--quiet' 'refs\/remotes\/origin\/main/,
      stdout: `${SHA}\n`,
    });
    fake.rule({ match: /'git' 'log'/, stdout: `${SHA}\n` });
    const registry = new BlueprintRegistry().register(workingCopyBlueprint).register(
      makeStaticHostBlueprint({
        env: { DRYDOCK_COMMAND_LOG_GROUP: '/drydock/test/commands' },
        sleep: (ms) => new Promise((resolve) => setTimeout(resolve, Math.min(ms, 25))),
      }),
    );
    const { engine, store, queue, ...system } = await testSystem(
      {},
      { registry, clients: fake.clients() },
    );
    clock = system.clock;
    await createBlueprint(engine, {
      id: 'git-hosts',
      type: 'static-host',
      resourceType: 'host',
      limits: { maxResources: 1, leasesPerResource: 1, idleGraceSeconds: 0 },
      config: { instances: { tags: POOL } },
    });
    await createBlueprint(engine, {
      id: 'wc',
      type: 'working-copy',
      resourceType: 'working-copy',
      limits: { maxResources: 1, leasesPerResource: 1 },
      config: { host: { blueprintIds: ['git-hosts'] }, timeouts: { fetch: 900 } },
    });
    const url = 'https://git.example.com/app.git';
    const lease = await requestLease(engine, {
      type: 'working-copy',
      owner: ci.principal,
      workingCopy: { repositories: [{ url, ref: 'main' }] },
    });
    await queue.drain(engine, { maxSteps: 5_000 });
    const active = await leaseNow(store, lease.id);
    expect(active.status).toBe('active');
    const result = await runCommandToEnd(
      engine,
      lease.id,
      { argv: ['git', 'log', '-1', '--format=%H'] },
      ci,
    );
    expect(result.stdout).toBe(`${SHA}\n`);
    await releaseLease(engine, lease.id, ci);
    await queue.drain(engine, { maxSteps: 5_000 });
    expect((await leaseNow(store, lease.id)).status).toBe('destroyed');

    const git = fake.sent
      .filter((s) => s.operation === 'SendCommand' && s.outcome === 'ok')
      .map((s) => (s.input as SendCommandInput).Parameters)
      .filter((p) => p.commands.join('\n').includes("'git'"));
    const calls = git.map((p) => {
      const script = p.commands.join('\n');
      const verb = /'--work-tree=\.' (?:'-c' '[^']*' )*'([a-z-]+)'/.exec(script)?.[1] ?? 'log';
      return `${/git -C '[^']+' init/.test(script) ? 'init' : verb} ${p.executionTimeout[0]}`;
    });
    expect(calls).toEqual([
      'fsck 600',
      'init 120',
      'rev-parse 300',
      'fetch 900',
      'rev-parse 300',
      'checkout 300',
      'clean 300',
      'log 300',
      'rev-parse 300',
      'clean 300',
      'submodule 300',
    ]);
    for (const { commands } of git) {
      const script = commands.join('\n');
      // The plug-in's own git calls (the holder's `git log` runs with the holder's environment).
      if (!script.includes("'git' 'log'"))
        expect(script).toContain("export GIT_TERMINAL_PROMPT='0'");
      // Clones are named relative to the host lease's directory (config `root`).
      if (!script.includes("'git' 'log'")) {
        expect(script).toMatch(/-C'? '?working-copies\/[0-9a-f]{16}\/app/);
      }
    }
    // The holder's command ran in the clone.
    const log = git.find((p) => p.commands.join('\n').includes("'git' 'log'"));
    expect(log?.commands.join('\n')).toMatch(/cd -- 'working-copies\/[0-9a-f]{16}\/app'/);
  });
});
