/**
 * processUpdate reports what an update did as a typed outcome: the message kind, then the steps
 * (an acquisition followed at once by its activation is one update, two steps).
 */
import { describe, expect, it } from 'vitest';
import { processUpdate, releaseLease, requestLease } from '../../lambdas/core/use-cases.ts';
import { syntheticPool, testSystem } from '../support/system.ts';

const ci = { principal: 'arn:aws:iam::123456789012:role/ci' };

describe('processUpdate outcomes', () => {
  it('says acquired then activated, and a duplicate delivery does nothing', async () => {
    // The worker's teardown of the released lease is part of the subject: no release at once.
    const { engine, queue } = await testSystem({ releaseAtOnce: false });
    await syntheticPool(engine);
    const lease = await requestLease(engine, { type: 'host', owner: ci.principal });
    const first = queue.take()!;
    const result = await processUpdate(engine, first);
    expect(result).toMatchObject({
      kind: 'lease',
      outcome: { action: 'acquired', next: { action: 'activated' } },
    });
    await queue.drain(engine);

    await releaseLease(engine, lease.id, ci);
    const released = queue.take()!;
    expect(await processUpdate(engine, released)).toEqual({
      kind: 'lease',
      outcome: { action: 'destroyed' },
    });
    expect(await processUpdate(engine, released)).toEqual({
      kind: 'lease',
      outcome: { action: 'none', detail: 'lease already destroyed' },
    });
  });
});
