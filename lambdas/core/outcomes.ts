/**
 * What one queued update did, as data. An update may take two steps in one go (a lease acquired
 * and then activated, a lease broken and then destroyed): the second is `next` on the first,
 * never a `'broken+destroyed'` string that readers would have to split. The worker logs these;
 * the bench counts them (a `waited` or `stale` update is wasted work).
 */
import { z } from 'zod';
import type { WarmPoolOutcome } from './warm-pool.ts';

/** One step an update took; `detail` says where or why, for the log. */
export interface Outcome<A extends string> {
  action: A;
  detail?: string;
}

/** What an update of a lease did (lease-update.ts). */
export type LeaseOutcome =
  | Outcome<
      | 'ignored'
      | 'none'
      | 'stale'
      | 'waited'
      | 'activated'
      /** A step-based activation took a step and re-enqueued itself (lease-steps.ts). */
      | 'activating'
      /** A step-based cleanup took a step; the lease keeps its slot until it is done. */
      | 'cleaning'
      | 'waiting-for-resource'
      | 'requeued'
      | 'destroyed'
    >
  /** Acquired on a resource; `next` is the activation tried at once, if the resource allowed. */
  | (Outcome<'acquired'> & { next?: LeaseOutcome })
  /** Ended with `detail` as the reason; `next` is the teardown that followed. */
  | (Outcome<'released' | 'broken'> & { next: LeaseTeardown });

/** destroyLease: done, or another update got there first. */
export type LeaseTeardown = Outcome<'destroyed' | 'stale' | 'cleaning'>;

/** What an update of a resource did (resource-update.ts). */
export type ResourceOutcome = Outcome<
  | 'ignored'
  | 'none'
  | 'stale'
  | 'setup-pending'
  | 'setup-active'
  | 'setup-broken'
  | 'setup-workflow'
  | 'health-checked'
  | 'health-checking'
  | 'broken'
  | 'reclaimed'
  | 'waiting-for-leases'
  | 'destroyed'
>;

/** What one step of a command did (command-runner.ts, advanceCommand). */
export type CommandOutcome = Outcome<
  'ignored' | 'none' | 'stale' | 'started' | 'polled' | 'finished' | 'failed' | 'cancelled'
>;

/** processUpdate's answer: the message kind, and what the update of that object did. */
export type DispatchOutcome =
  | { kind: 'lease'; outcome: LeaseOutcome }
  | { kind: 'resource'; outcome: ResourceOutcome }
  | { kind: 'command'; outcome: CommandOutcome }
  | { kind: 'blueprint'; outcome: WarmPoolOutcome };

/** The shape every outcome has, for code that reads any of them (logs, the bench). */
export interface AnyOutcome {
  action: string;
  detail?: string;
  next?: AnyOutcome;
}

/** The steps of an outcome, in the order the update took them. */
export function outcomeSteps(o: AnyOutcome): AnyOutcome[] {
  const steps: AnyOutcome[] = [];
  for (let step: AnyOutcome | undefined = o; step; step = step.next) steps.push(step);
  return steps;
}

/** The actions of an outcome, in order: `['acquired', 'activated']`. */
export function outcomeKinds(o: AnyOutcome): string[] {
  return outcomeSteps(o).map((s) => s.action);
}

/** For logs and reports: `acquired, then activated`. */
export function describeOutcome(o: AnyOutcome): string {
  return outcomeKinds(o).join(', then ');
}

/** Every step's detail, in order, or undefined if none has one. */
export function outcomeDetail(o: AnyOutcome): string | undefined {
  const details = outcomeSteps(o).flatMap((s) => (s.detail === undefined ? [] : [s.detail]));
  return details.length > 0 ? details.join('; ') : undefined;
}

/**
 * Whether the update was wasted work, judged by the step it ended with: `waited` (nothing free,
 * re-enqueued) or `stale` (another update had already done it); undefined if it got somewhere.
 */
export function wastedAs(o: AnyOutcome): 'waited' | 'stale' | undefined {
  const last = outcomeSteps(o).at(-1)?.action;
  return last === 'waited' || last === 'stale' ? last : undefined;
}

export function isWasted(o: AnyOutcome): boolean {
  return wastedAs(o) !== undefined;
}

const outcomeSchema: z.ZodType<AnyOutcome> = z.object({
  action: z.string(),
  detail: z.string().optional(),
  get next() {
    return outcomeSchema.optional();
  },
});

/** An outcome read back from a log line, or undefined if the value is not one. */
export function parseOutcome(value: unknown): AnyOutcome | undefined {
  const parsed = outcomeSchema.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}
