/**
 * What is specific to the working-copy plug-in's step runner (steps.ts), against a scripted
 * host: output bigger than one poll is read on to the end, a host that never reports a git call
 * ended has it stopped past its timeout, and the merge-conflict parser names the files. Real git
 * on real hosts is in test/engine/working-copy.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { conflictingFiles } from '../../lambdas/blueprints/working-copy/git-plans.ts';
import { advance, type GitStep, type Plan } from '../../lambdas/blueprints/working-copy/steps.ts';
import type { CommandInterface, CommandProgress } from '../../lambdas/core/blueprint.ts';

/** A host that serves `output` in chunks of `chunk` bytes and ends (or never does). */
function scriptedHost(output: string, chunk: number, ends: boolean) {
  const calls = { starts: [] as string[], cancels: 0 };
  const commands: CommandInterface = {
    async start(commandId) {
      calls.starts.push(commandId);
      return { id: commandId };
    },
    async poll(_handle, from): Promise<CommandProgress> {
      const stdout = output.slice(from.stdout, from.stdout + chunk);
      const atEnd = from.stdout + stdout.length >= output.length;
      if (!ends || !atEnd || calls.cancels > 0) {
        return { state: 'running', stdout, stderr: '' };
      }
      return {
        state: 'finished',
        stdout,
        stderr: '',
        exitCode: 0,
        timedOut: false,
        durationMs: 5,
      };
    },
    async cancel() {
      calls.cancels++;
    },
  };
  return { commands, calls };
}

const STATUS: GitStep = {
  id: 'status0',
  text: 'git status',
  command: { argv: ['git', 'status'] },
  timeoutSeconds: 10,
};
const onePlan: Plan = (done) => (done.status0 ? 'done' : STATUS);

describe('working-copy steps', () => {
  it('reads output bigger than one poll to its end, keeping the tail', async () => {
    const output = `${'x'.repeat(10_000)}END\n`;
    const { commands, calls } = scriptedHost(output, 1000, true);
    const step = await advance(commands, 'lease-1-0-checkout', onePlan, {}, 0);
    expect(step.state).toBe('done');
    if (step.state !== 'done') return;
    expect(step.results.status0?.stdout.endsWith('END\n')).toBe(true);
    expect(step.results.status0?.stdout.length).toBeLessThan(output.length);
    expect(step.steps.status0?.read).toEqual({ stdout: output.length, stderr: 0 });
    expect(calls.starts).toEqual(['lease-1-0-checkout-status0']);
    expect(step.log).toEqual([expect.stringMatching(/^git status: done in 0\.0s$/)]);
  });

  it('a git call the host never reports ended is stopped past its timeout and counted timed out', async () => {
    const { commands, calls } = scriptedHost('', 1000, false);
    const first = await advance(commands, 's', onePlan, {}, 1_000);
    expect(first.state).toBe('pending');
    // Within its timeout plus grace: still waiting, started once.
    const waiting = await advance(commands, 's', onePlan, first.steps, 1_000 + 39_000);
    expect(waiting.state).toBe('pending');
    expect(calls.starts).toHaveLength(1);
    const late = await advance(commands, 's', onePlan, waiting.steps, 1_000 + 41_000);
    expect(late.state).toBe('failed');
    expect(calls.cancels).toBe(1);
    expect(late.log).toEqual(['git status timed out after 10s']);
  });

  it('names the conflicting files of a merge', () => {
    const output = [
      'Auto-merging a.txt',
      'CONFLICT (content): Merge conflict in a.txt',
      'CONFLICT (add/add): Merge conflict in dir/b.txt',
      'CONFLICT (modify/delete): c.txt deleted in HEAD and modified in 1234. Version 1234 of c.txt left in tree.',
      'Automatic merge failed; fix conflicts and then commit the result.',
    ].join('\n');
    expect(conflictingFiles(output)).toEqual(['a.txt', 'dir/b.txt', 'c.txt']);
  });
});
