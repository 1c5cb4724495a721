/** Housekeeping waits are bounded by the worker step, not by the command's own timeout. */
import { describe, expect, it } from 'vitest';
import {
  type HousekeepingCommands,
  housekeeping,
  runToEnd,
  STEP_BUDGET_MS,
} from '../../lambdas/blueprints/ssm/run.ts';

describe('runToEnd (housekeeping commands)', () => {
  it('cancels a command still running after the step budget and fails the step for a retry', async () => {
    let now = 0;
    const cancelled: unknown[] = [];
    const stuck: HousekeepingCommands = {
      send: async () => ({ id: 'h' }),
      poll: async () => ({ state: 'running', stdout: '', stderr: '' }),
      cancel: async (handle) => {
        cancelled.push(handle);
      },
    };
    const run = runToEnd(stuck, housekeeping('rm -rf /var/lib/drydock/r/l', 600), {
      clock: { now: () => now },
      sleep: async (ms) => {
        now += ms;
      },
      what: 'cleanup of lease l',
    });
    await expect(run).rejects.toMatchObject({
      name: 'TemporaryError',
      message: 'cleanup of lease l did not finish within 20s; it is retried later',
    });
    expect(now).toBeLessThanOrEqual(STEP_BUDGET_MS + 500);
    expect(cancelled).toEqual([{ id: 'h' }]);
  });

  it('returns what a command that ends in time printed', async () => {
    let polls = 0;
    const quick: HousekeepingCommands = {
      send: async () => ({}),
      poll: async () =>
        ++polls < 3
          ? { state: 'running', stdout: `${polls}\n`, stderr: '' }
          : {
              state: 'finished',
              stdout: 'done\n',
              stderr: '',
              exitCode: 0,
              timedOut: false,
              durationMs: 5,
            },
      cancel: async () => {},
    };
    const done = await runToEnd(quick, housekeeping('true', 30), {
      clock: { now: () => 0 },
      sleep: async () => {},
      what: 'ping',
    });
    expect(done).toEqual({ stdout: '1\n2\ndone\n', stderr: '', exitCode: 0, timedOut: false });
  });
});
