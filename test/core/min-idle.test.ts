/**
 * Warm pools, the pure rules: the effective minIdle at an instant (schedule windows in their
 * time zones), day lists, which resources count as idle, and what a blueprint may say.
 */
import { describe, expect, it } from 'vitest';
import { blueprintInputSchema } from '../../lambdas/core/blueprint-schema.ts';
import {
  countWarmIdle,
  effectiveMinIdle,
  hasWarmPool,
  isWarmIdle,
  keepsIdle,
  parseDays,
  topUpMessage,
} from '../../lambdas/core/min-idle.ts';
import type { Blueprint, Resource } from '../../lambdas/core/model.ts';
import { formatZodIssues } from '../../lambdas/core/validation.ts';

const at = (iso: string) => Date.parse(iso);
const workingHours = {
  minIdle: 1,
  minIdleSchedule: [
    { days: 'mon-fri', from: '08:00', to: '18:00', minIdle: 4, timezone: 'UTC' },
    { days: 'sat,sun', from: '10:00', to: '12:00', minIdle: 2, timezone: 'UTC' },
  ],
};

function blueprint(limits: Partial<Blueprint['limits']> = {}, state = 'enabled'): Blueprint {
  return {
    id: 'pool',
    type: 'synthetic',
    resourceType: 'host',
    attributes: {},
    state: state as Blueprint['state'],
    limits: {
      maxResources: 5,
      leasesPerResource: 1,
      reclaimOnRelease: false,
      idleTtlSeconds: 600,
      idleGraceSeconds: 30,
      setupTimeoutSeconds: 900,
      minIdle: 3,
      ...limits,
    },
    config: {},
    version: 1,
    createdAt: '2026-01-05T00:00:00.000Z',
    updatedAt: '2026-01-05T00:00:00.000Z',
    health: { failureCount: 0 },
  };
}

function resource(overrides: Partial<Resource> = {}): Resource {
  return {
    id: 'res-1',
    blueprintId: 'pool',
    type: 'host',
    attributes: {},
    status: 'active',
    version: 1,
    slotLocks: ['blueprint:pool:slot:0'],
    capacity: 1,
    leaseCount: 0,
    uses: 0,
    createdAt: '2026-01-05T09:00:00.000Z',
    updatedAt: '2026-01-05T09:00:00.000Z',
    data: {},
    ...overrides,
  };
}

describe('effective minIdle', () => {
  it('is minIdle outside every window and the first matching window inside one', () => {
    // 2026-01-05 is a Monday.
    expect(effectiveMinIdle(workingHours, at('2026-01-05T07:59:59Z'))).toBe(1);
    expect(effectiveMinIdle(workingHours, at('2026-01-05T08:00:00Z'))).toBe(4); // from: inclusive
    expect(effectiveMinIdle(workingHours, at('2026-01-05T17:59:00Z'))).toBe(4);
    expect(effectiveMinIdle(workingHours, at('2026-01-05T18:00:00Z'))).toBe(1); // to: exclusive
    expect(effectiveMinIdle(workingHours, at('2026-01-10T11:00:00Z'))).toBe(2); // Saturday
    expect(effectiveMinIdle(workingHours, at('2026-01-10T09:00:00Z'))).toBe(1);
    expect(effectiveMinIdle(workingHours, at('2026-01-09T12:00:00Z'))).toBe(4); // Friday
  });

  it('reads windows in their own time zone, daylight saving included', () => {
    const berlin = {
      minIdle: 0,
      minIdleSchedule: [{ from: '08:00', to: '09:00', minIdle: 3, timezone: 'Europe/Berlin' }],
    };
    // Winter: Berlin is UTC+1, summer UTC+2.
    expect(effectiveMinIdle(berlin, at('2026-01-05T07:30:00Z'))).toBe(3);
    expect(effectiveMinIdle(berlin, at('2026-01-05T08:30:00Z'))).toBe(0);
    expect(effectiveMinIdle(berlin, at('2026-07-06T06:30:00Z'))).toBe(3);
    expect(effectiveMinIdle(berlin, at('2026-07-06T07:30:00Z'))).toBe(0);
    // A Monday 00:30 in Tokyo is still Sunday in UTC: days are local days.
    const tokyoMonday = {
      minIdle: 0,
      minIdleSchedule: [
        { days: 'mon', from: '00:00', to: '01:00', minIdle: 2, timezone: 'Asia/Tokyo' },
      ],
    };
    expect(effectiveMinIdle(tokyoMonday, at('2026-01-04T15:30:00Z'))).toBe(2);
    expect(effectiveMinIdle(tokyoMonday, at('2026-01-05T15:30:00Z'))).toBe(0);
  });

  it('defaults to 0 for blueprints stored before warm pools existed', () => {
    expect(effectiveMinIdle({}, at('2026-01-05T10:00:00Z'))).toBe(0);
    expect(hasWarmPool({})).toBe(false);
    expect(
      hasWarmPool({ minIdle: 0, minIdleSchedule: [{ from: '08:00', to: '09:00', minIdle: 1 }] }),
    ).toBe(true);
    // 24:00 ends a window at midnight.
    expect(
      effectiveMinIdle(
        { minIdleSchedule: [{ from: '20:00', to: '24:00', minIdle: 2 }] },
        at('2026-01-05T23:59:59Z'),
      ),
    ).toBe(2);
  });

  it('keeps nothing for a draining or disabled blueprint', () => {
    const now = at('2026-01-05T10:00:00Z');
    expect(keepsIdle(blueprint(), now)).toBe(3);
    expect(keepsIdle(blueprint({}, 'draining'), now)).toBe(0);
    expect(keepsIdle(blueprint({}, 'disabled'), now)).toBe(0);
    expect(topUpMessage(blueprint({}, 'draining'), 'x')).toEqual([]);
    expect(topUpMessage(blueprint({ minIdle: 0 }), 'x')).toEqual([]);
    expect(topUpMessage(blueprint(), 'sweep')).toEqual([
      { kind: 'blueprint', id: 'pool', reason: 'top up warm pool: sweep' },
    ]);
  });
});

describe('days', () => {
  it('reads ranges, lists and ranges over the weekend', () => {
    expect([...(parseDays('mon-fri') as Set<number>)].sort()).toEqual([1, 2, 3, 4, 5]);
    expect([...(parseDays('sat,sun') as Set<number>)].sort()).toEqual([0, 6]);
    expect([...(parseDays('Mon,wed-thu') as Set<number>)].sort()).toEqual([1, 3, 4]);
    expect([...(parseDays('fri-mon') as Set<number>)].sort()).toEqual([0, 1, 5, 6]);
    expect(parseDays('monday')).toMatch(/^days 'monday': use day names sun,mon,/);
    expect(parseDays('mon-tue-wed')).toMatch(/^days 'mon-tue-wed'/);
  });
});

describe('idle resources of a warm pool', () => {
  const now = at('2026-01-05T10:00:00Z');

  it('counts live resources with no lease that can still take one', () => {
    const b = blueprint({ maxUses: 3 });
    expect(isWarmIdle(resource(), b, now)).toBe(true);
    expect(isWarmIdle(resource({ status: 'pending' }), b, now)).toBe(true); // on its way
    expect(isWarmIdle(resource({ leaseCount: 1 }), b, now)).toBe(false);
    expect(isWarmIdle(resource({ suspectSince: '2026-01-05T09:59:00Z' }), b, now)).toBe(false);
    expect(isWarmIdle(resource({ uses: 3 }), b, now)).toBe(false); // used up
    // Retiring (a rebalance recommendation): no new lease, reclaimed once idle.
    expect(isWarmIdle(resource({ data: { retiring: 'rebalance recommended' } }), b, now)).toBe(
      false,
    );
    expect(isWarmIdle(resource({ status: 'released' }), b, now)).toBe(false);
    expect(isWarmIdle(resource({ blueprintId: 'other' }), b, now)).toBe(false);
  });

  it('never counts a used resource of a reclaim-on-release blueprint, or one past its max age', () => {
    const once = blueprint({ reclaimOnRelease: true });
    expect(isWarmIdle(resource({ uses: 0 }), once, now)).toBe(true);
    expect(isWarmIdle(resource({ uses: 1 }), once, now)).toBe(false);
    const young = blueprint({ maxAgeSeconds: 7200 });
    expect(isWarmIdle(resource(), young, now)).toBe(true);
    expect(isWarmIdle(resource(), blueprint({ maxAgeSeconds: 3600 }), now)).toBe(false);
    expect(
      countWarmIdle(
        [resource(), resource({ id: 'res-2', leaseCount: 1 }), resource({ id: 'res-3' })],
        young,
        now,
      ),
    ).toBe(2);
  });
});

describe('blueprint limits', () => {
  const parse = (limits: Record<string, unknown>) => {
    const parsed = blueprintInputSchema.safeParse({ id: 'pool', type: 'synthetic', limits });
    return parsed.success ? parsed.data.limits : formatZodIssues(parsed.error);
  };

  it('default minIdle to 0 and take a schedule', () => {
    expect(parse({})).toMatchObject({ minIdle: 0 });
    expect(blueprintInputSchema.parse({ id: 'pool', type: 'synthetic' }).limits.minIdle).toBe(0);
    expect(
      parse({
        maxResources: 5,
        minIdle: 1,
        minIdleSchedule: [{ days: 'mon-fri', from: '08:00', to: '18:00', minIdle: 5 }],
      }),
    ).toMatchObject({
      minIdle: 1,
      minIdleSchedule: [
        { days: 'mon-fri', from: '08:00', to: '18:00', minIdle: 5, timezone: 'UTC' },
      ],
    });
  });

  it('refuse more idle resources than the cap, in words that say what to do', () => {
    expect(parse({ maxResources: 5, minIdle: 6 })).toMatch(
      /minIdle 6 exceeds maxResources 5; lower it or raise maxResources/,
    );
    expect(
      parse({ maxResources: 2, minIdleSchedule: [{ from: '08:00', to: '18:00', minIdle: 3 }] }),
    ).toMatch(/minIdleSchedule\.0\.minIdle.*minIdle 3 exceeds maxResources 2/);
    expect(parse({ minIdle: -1 })).toMatch(/minIdle/);
  });

  it('refuse windows that are backwards, on unknown days or in unknown time zones', () => {
    expect(parse({ minIdleSchedule: [{ from: '22:00', to: '06:00', minIdle: 1 }] })).toMatch(
      /split an overnight window in two: 22:00-24:00 and 00:00-06:00/,
    );
    expect(parse({ minIdleSchedule: [{ from: '8:00', to: '18:00', minIdle: 1 }] })).toMatch(
      /from: a local time HH:MM/,
    );
    expect(
      parse({ minIdleSchedule: [{ days: 'weekdays', from: '08:00', to: '18:00', minIdle: 1 }] }),
    ).toMatch(/days 'weekdays'/);
    expect(
      parse({
        minIdleSchedule: [{ from: '08:00', to: '18:00', minIdle: 1, timezone: 'Mars/Olympus' }],
      }),
    ).toMatch(/unknown time zone 'Mars\/Olympus'/);
    expect(
      parse({ minIdleSchedule: [{ from: '08:00', to: '18:00', minIdle: 1, extra: true }] }),
    ).toMatch(/extra/);
  });
});
