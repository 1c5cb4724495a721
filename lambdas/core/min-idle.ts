/**
 * Warm pools, the rules without I/O: how many idle resources a blueprint keeps ready at a given
 * time (`minIdle`, optionally per time window), and which of its resources count as idle.
 *
 * A schedule is a short ordered list of windows; at time t the first window that contains t
 * gives the target, otherwise `minIdle` does. Windows are local times in their own time zone
 * (default UTC), `from` inclusive and `to` exclusive, on the listed days (default every day):
 *
 *   minIdle: 1
 *   minIdleSchedule: [{ days: 'mon-fri', from: '08:00', to: '18:00', minIdle: 4, timezone: 'Europe/Berlin' }]
 *
 * A window never spans midnight (`from` < `to`; `to` may be `24:00`): an overnight window is
 * written as two, so "which day" is never ambiguous.
 */
import { z } from 'zod';
import { usesLimit } from './eligibility.ts';
import type {
  Blueprint,
  BlueprintLimits,
  MinIdleWindow,
  Resource,
  UpdateMessage,
} from './model.ts';

const DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;

/** Up to this many windows: a schedule is a few working-hours rules, not a calendar. */
export const MAX_MIN_IDLE_WINDOWS = 10;

const hhmm = (what: string, allow24: boolean) =>
  z
    .string()
    .regex(
      allow24 ? /^(([01]\d|2[0-3]):[0-5]\d|24:00)$/ : /^([01]\d|2[0-3]):[0-5]\d$/,
      `${what}: a local time HH:MM${allow24 ? ' (24:00 for the end of the day)' : ''}, e.g. 08:00`,
    );

/** `mon-fri`, `sat,sun`, `mon,wed-fri`: the set of weekdays (0 = Sunday), or an error text. */
export function parseDays(text: string): Set<number> | string {
  const days = new Set<number>();
  for (const part of text.toLowerCase().split(',')) {
    const [first, last, extra] = part.trim().split('-');
    const a = DAY_NAMES.indexOf(first as (typeof DAY_NAMES)[number]);
    const b = last === undefined ? a : DAY_NAMES.indexOf(last as (typeof DAY_NAMES)[number]);
    if (extra !== undefined || a < 0 || b < 0) {
      return `days '${text}': use day names ${DAY_NAMES.join(',')} joined by ',' and '-', e.g. mon-fri or sat,sun`;
    }
    // A range may wrap over the weekend (fri-mon).
    for (let d = a; ; d = (d + 1) % 7) {
      days.add(d);
      if (d === b) break;
    }
  }
  return days;
}

function validTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

export const minIdleWindowSchema = z
  .object({
    days: z.string().max(64).optional(),
    from: hhmm('from', false),
    to: hhmm('to', true),
    minIdle: z.number().int().min(0).max(1000),
    timezone: z.string().max(64).default('UTC'),
  })
  .strict()
  .superRefine((w: MinIdleWindow & { timezone: string }, ctx) => {
    if (w.from >= w.to) {
      ctx.addIssue({
        code: 'custom',
        path: ['to'],
        message: `window ${w.from}-${w.to} must end after it starts (split an overnight window in two: ${w.from}-24:00 and 00:00-${w.to})`,
      });
    }
    if (w.days !== undefined) {
      const days = parseDays(w.days);
      if (typeof days === 'string') ctx.addIssue({ code: 'custom', path: ['days'], message: days });
    }
    if (!validTimeZone(w.timezone)) {
      ctx.addIssue({
        code: 'custom',
        path: ['timezone'],
        message: `unknown time zone '${w.timezone}'; use an IANA name such as UTC or Europe/Berlin`,
      });
    }
  });

export const minIdleScheduleSchema = z.array(minIdleWindowSchema).max(MAX_MIN_IDLE_WINDOWS);

/** Weekday (0 = Sunday) and minutes since midnight of an instant in a time zone. */
function localTime(atMs: number, timeZone: string): { day: number; minutes: number } {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    weekday: 'short',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(new Date(atMs));
  const part = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
  const day = DAY_NAMES.indexOf(part('weekday').toLowerCase() as (typeof DAY_NAMES)[number]);
  return { day, minutes: Number(part('hour')) * 60 + Number(part('minute')) };
}

function toMinutes(text: string): number {
  const [h, m] = text.split(':');
  return Number(h) * 60 + Number(m);
}

/** Whether the instant falls in the window (its days, from inclusive, to exclusive). */
export function inWindow(window: MinIdleWindow, atMs: number): boolean {
  const { day, minutes } = localTime(atMs, window.timezone ?? 'UTC');
  if (window.days !== undefined) {
    const days = parseDays(window.days);
    if (typeof days === 'string' || !days.has(day)) return false;
  }
  return minutes >= toMinutes(window.from) && minutes < toMinutes(window.to);
}

/** The idle resources a blueprint should keep ready at this instant (0: no warm pool). */
export function effectiveMinIdle(
  limits: Pick<BlueprintLimits, 'minIdle' | 'minIdleSchedule'>,
  atMs: number,
): number {
  const window = limits.minIdleSchedule?.find((w) => inWindow(w, atMs));
  return window ? window.minIdle : (limits.minIdle ?? 0);
}

/** Whether the blueprint may have a warm pool at all (cheap: no clock, no I/O). */
export function hasWarmPool(limits: Pick<BlueprintLimits, 'minIdle' | 'minIdleSchedule'>): boolean {
  return (limits.minIdle ?? 0) > 0 || (limits.minIdleSchedule?.some((w) => w.minIdle > 0) ?? false);
}

/**
 * Whether a resource counts as one of the blueprint's idle, ready resources: live (a pending
 * one is on its way), no lease, not suspect, not retiring (an ec2-host after a rebalance
 * recommendation: it takes no new lease and is reclaimed once idle), still able to take a
 * lease (uses left), not past its max age (it is about to go). A used resource of a
 * reclaim-on-release blueprint never counts: it takes no further lease.
 */
export function isWarmIdle(r: Resource, blueprint: Blueprint, nowMs: number): boolean {
  if (r.blueprintId !== blueprint.id) return false;
  if (r.status !== 'pending' && r.status !== 'active') return false;
  if (r.leaseCount > 0 || r.suspectSince) return false;
  if (r.data.retiring !== undefined) return false;
  const maxUses = usesLimit(blueprint);
  if (maxUses !== undefined && r.uses >= maxUses) return false;
  const { maxAgeSeconds } = blueprint.limits;
  return maxAgeSeconds === undefined || nowMs - Date.parse(r.createdAt) < maxAgeSeconds * 1000;
}

export function countWarmIdle(resources: Resource[], blueprint: Blueprint, nowMs: number): number {
  return resources.filter((r) => isWarmIdle(r, blueprint, nowMs)).length;
}

/** The idle resources the blueprint keeps now: none unless enabled (draining/disabled keep none). */
export function keepsIdle(blueprint: Blueprint, nowMs: number): number {
  return blueprint.state === 'enabled' ? effectiveMinIdle(blueprint.limits, nowMs) : 0;
}

/**
 * The message that asks a worker to top the blueprint's warm pool up, or nothing when the
 * blueprint keeps none or may not allocate (disabled, draining). Duplicates are harmless: every
 * pre-warm takes a pool slot lock conditionally.
 */
export function topUpMessage(blueprint: Blueprint, why: string): UpdateMessage[] {
  if (blueprint.state !== 'enabled' || !hasWarmPool(blueprint.limits)) return [];
  return [{ kind: 'blueprint', id: blueprint.id, reason: `top up warm pool: ${why}` }];
}
