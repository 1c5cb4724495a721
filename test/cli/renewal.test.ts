/**
 * The CLI's side of held leases (lib/cli/renewal.ts): which hold it asks for, and that it
 * renews on a timer until stopped, carrying on after a failed renewal.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_HOLD_SECONDS } from '../../lambdas/core/lease-hold.ts';
import type { ApiClient } from '../../lib/cli/api.ts';
import { Interrupts } from '../../lib/cli/interrupts.ts';
import { holdSecondsFrom, keepRenewing } from '../../lib/cli/renewal.ts';
import { waitFor } from '../support/env.ts';

describe('holdSecondsFrom', () => {
  it('defaults to the API default, takes DRYDOCK_HOLD_SECONDS, 0 = no hold, refuses junk', () => {
    expect(holdSecondsFrom({})).toBe(DEFAULT_HOLD_SECONDS);
    expect(holdSecondsFrom({ DRYDOCK_HOLD_SECONDS: '5' })).toBe(5);
    expect(holdSecondsFrom({ DRYDOCK_HOLD_SECONDS: '0' })).toBeUndefined();
    expect(() => holdSecondsFrom({ DRYDOCK_HOLD_SECONDS: 'soon' })).toThrow(/DRYDOCK_HOLD_SECONDS/);
  });
});

describe('keepRenewing', () => {
  it('renews every third of the hold until stopped, reporting a failure once', async () => {
    const calls: string[] = [];
    let fail = true;
    const client = {
      post: async (path: string) => {
        calls.push(path);
        if (fail) {
          fail = false;
          throw new Error('503 busy');
        }
        return {};
      },
    } as unknown as ApiClient;
    const warnings: string[] = [];
    const renewal = keepRenewing(client, 'lease-1', 1, (text) => warnings.push(text));
    await waitFor(() => calls.length >= 3, { timeoutMs: 5_000, message: 'three renewals' });
    renewal.stop();
    const stoppedAt = calls.length;
    expect(calls.every((p) => p === '/v1/leases/lease-1/renew')).toBe(true);
    expect(warnings).toEqual([
      expect.stringMatching(/could not renew lease-1 \(will retry\): 503/),
    ]);
    await new Promise((done) => setTimeout(done, 800));
    expect(calls.length).toBe(stoppedAt);
  });
});

describe('Interrupts', () => {
  it('takes SIGHUP like SIGTERM: aborts the flow, exit status 129', () => {
    const exits: number[] = [];
    const interrupts = new Interrupts({ exit: (code) => exits.push(code), parentPollMs: 0 });
    interrupts.trigger('SIGHUP');
    expect(interrupts.signal.aborted).toBe(true);
    expect(interrupts.received).toBe('SIGHUP');
    expect(exits).toEqual([]);
  });
});
