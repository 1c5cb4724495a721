import { describe, expect, it } from 'vitest';
import {
  type AnyOutcome,
  describeOutcome,
  isWasted,
  type LeaseOutcome,
  outcomeDetail,
  outcomeKinds,
  parseOutcome,
  wastedAs,
} from '../../lambdas/core/outcomes.ts';

const acquiredThenActivated: LeaseOutcome = {
  action: 'acquired',
  next: { action: 'activated', detail: 'on res-1' },
};
const brokenThenStale: LeaseOutcome = {
  action: 'broken',
  detail: 'host vanished',
  next: { action: 'stale' },
};

describe('update outcomes', () => {
  it('read as their steps, in order', () => {
    expect(outcomeKinds(acquiredThenActivated)).toEqual(['acquired', 'activated']);
    expect(describeOutcome(acquiredThenActivated)).toBe('acquired, then activated');
    expect(describeOutcome({ action: 'waited' })).toBe('waited');
    expect(outcomeDetail(acquiredThenActivated)).toBe('on res-1');
    expect(outcomeDetail(brokenThenStale)).toBe('host vanished');
    expect(outcomeDetail({ action: 'destroyed' })).toBeUndefined();
  });

  it('are wasted work when they end waiting or stale', () => {
    expect(wastedAs({ action: 'waited', detail: 'pool full' })).toBe('waited');
    expect(wastedAs({ action: 'stale' })).toBe('stale');
    expect(wastedAs(brokenThenStale)).toBe('stale');
    expect(wastedAs({ action: 'acquired', next: { action: 'stale' } })).toBe('stale');
    expect(wastedAs(acquiredThenActivated)).toBeUndefined();
    expect(isWasted({ action: 'released', detail: 'expired', next: { action: 'destroyed' } })).toBe(
      false,
    );
  });

  it('survive a round trip through a JSON log line', () => {
    const logged = JSON.parse(JSON.stringify({ outcome: brokenThenStale })) as {
      outcome: unknown;
    };
    const read = parseOutcome(logged.outcome);
    expect(read).toEqual(brokenThenStale);
    expect(wastedAs(read as AnyOutcome)).toBe('stale');
    expect(parseOutcome('acquired+stale')).toBeUndefined();
    expect(parseOutcome({ action: 'acquired', next: { detail: 'no action' } })).toBeUndefined();
  });
});
