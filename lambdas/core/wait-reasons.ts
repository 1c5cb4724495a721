/**
 * Why a lease waits, as data first and words second. The allocator records what it actually
 * saw in one attempt (a race lost to a named lease, a pool at its cap with so many hosts
 * booting, leased or being torn down, a breaker open until a time) as WaitCauses; this module
 * is the one place that turns them into the sentences people read — the lease's `waitReason`,
 * its `lease.waiting` log line, and the CLI's and console's progress lines all come from here,
 * so they can never disagree.
 *
 * No imports from the engine: the CLI and the console render with these functions too.
 */

/** What one blueprint's pool looked like to the allocator, counted by what each resource was doing. */
export interface PoolCount {
  /** Pending: allocated, still being set up. */
  booting: number;
  /** Active with no room for another lease (or just taken by one in a race). */
  leased: number;
  /** Active with room, but not usable by this lease (other attributes, suspect, used up). */
  unsuitable: number;
  /** Released or broken, still holding its pool slot until its teardown finishes. */
  tearingDown: number;
}

export type WaitCause =
  /** The pool is full: every slot is held, counted by what its holder is doing. */
  | ({ kind: 'at-limit'; blueprintId: string; type: string; limit: number } & PoolCount)
  /**
   * A conditional write lost to another writer. `slot` is the pool slot or the resource raced
   * for; `winnerLease` / `winnerResource` name who got it when the store said so.
   */
  | {
      kind: 'lost-race';
      slot: string;
      winnerLease?: string;
      winnerResource?: string;
      /** The raced-for resource's status afterwards, when it changed (reclaimed, broke). */
      nowStatus?: string;
    }
  /** The blueprint's circuit breaker is open. */
  | {
      kind: 'backing-off';
      blueprintId: string;
      failures: number;
      until: string;
      lastFailure?: string;
    }
  /** The plug-in said it cannot allocate right now, and why. */
  | { kind: 'plugin-refused'; blueprintId: string; reason: string }
  /** The plug-in failed to choose a resource; counted for the breaker. */
  | { kind: 'allocation-failed'; blueprintId: string; type: string; message: string }
  /** The plug-in's own locks (a static host's binding) were taken at every choice it made. */
  | { kind: 'locks-taken'; blueprintId: string; locks: string[]; choices: number }
  /** An idle resource that cannot serve this lease is being reclaimed to make room. */
  | { kind: 'reclaiming'; blueprintId: string; type: string; resourceId: string }
  /**
   * Joined the line at request time (line.ts): `rivals` older leases wanting the same are served
   * first. `behind` names the youngest of them that saw the pool full, with its reason; else,
   * with `slots`, they alone fill all slots of `blueprintIds`, even of an empty pool; else they
   * joined the line themselves.
   */
  | {
      kind: 'in-line';
      type: string;
      behind?: string;
      theirReason?: string;
      rivals?: number;
      slots?: number;
      blueprintIds?: string[];
    };

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function describePool(c: Extract<WaitCause, { kind: 'at-limit' }>): string {
  const head = `blueprint '${c.blueprintId}' is at its limit of ${plural(c.limit, c.type)}`;
  const held = c.booting + c.leased + c.unsuitable + c.tearingDown;
  if (c.leased > 0 && c.leased === held) return `${head}, all leased`;
  const parts = [
    c.booting > 0 ? `${c.booting} booting` : '',
    c.leased > 0 ? `${c.leased} leased` : '',
    c.unsuitable > 0 ? `${c.unsuitable} not suitable for this lease` : '',
    c.tearingDown > 0 ? `${c.tearingDown} being torn down` : '',
  ].filter(Boolean);
  return parts.length > 0 ? `${head}: ${parts.join(', ')}` : head;
}

function describeRace(c: Extract<WaitCause, { kind: 'lost-race' }>): string {
  if (c.nowStatus) return `${c.slot} was ${c.nowStatus} meanwhile`;
  const winner =
    c.winnerLease && c.winnerResource
      ? ` to lease ${c.winnerLease} (its new host ${c.winnerResource})`
      : c.winnerLease
        ? ` to lease ${c.winnerLease}`
        : c.winnerResource
          ? ` to ${c.winnerResource}`
          : ' to another lease';
  return `lost the race for ${c.slot}${winner}`;
}

function describeLine(c: Extract<WaitCause, { kind: 'in-line' }>): string {
  if (c.behind) {
    return `${c.theirReason ?? 'the pool is full'} (as lease ${c.behind}, ahead in line, last saw it)`;
  }
  const rivals = c.rivals ?? 0;
  const head = `${plural(rivals, 'older lease')} that want${rivals === 1 ? 's' : ''} the same`;
  if (c.slots === undefined) return `in line behind ${head}`;
  const ids = c.blueprintIds ?? [];
  return `${head} ${rivals === 1 ? 'fills' : 'fill'} all ${plural(c.slots, `${c.type} slot`)} of blueprint${ids.length === 1 ? '' : 's'} ${ids.map((id) => `'${id}'`).join(', ')}`;
}

/** One cause in words. */
export function describeWaitCause(c: WaitCause): string {
  switch (c.kind) {
    case 'at-limit':
      return describePool(c);
    case 'lost-race':
      return describeRace(c);
    case 'backing-off':
      return `blueprint '${c.blueprintId}' is backing off after ${plural(c.failures, 'failed allocation')} until ${c.until} (last: ${c.lastFailure ?? 'unknown'})`;
    case 'plugin-refused':
      return `blueprint '${c.blueprintId}': ${c.reason}`;
    case 'allocation-failed':
      return `blueprint '${c.blueprintId}' failed to allocate a ${c.type} (${c.message}); will retry`;
    case 'locks-taken':
      return `blueprint '${c.blueprintId}': ${c.locks.join(', ')} was taken by another lease meanwhile (after ${plural(c.choices, 'choice')} of its plug-in); will retry`;
    case 'reclaiming':
      return `reclaiming idle ${c.type} ${c.resourceId} of blueprint '${c.blueprintId}' to make room`;
    case 'in-line':
      return describeLine(c);
  }
}

/** Several causes (one per blueprint tried, races first), each once, in order. */
export function describeWaitCauses(causes: readonly WaitCause[]): string {
  return [...new Set(causes.map(describeWaitCause))].join('; ');
}

/** A wait on what the allocator saw, its causes rendered once, here (an AllocationOutcome). */
export function waitOn(
  causes: WaitCause[],
  delaySeconds = 0,
): { outcome: 'wait'; reason: string; causes: WaitCause[]; delaySeconds: number } {
  return { outcome: 'wait', reason: describeWaitCauses(causes), causes, delaySeconds };
}

/**
 * Whether two reasons tell the same story, differing only in their numbers (how many hosts
 * boot, until when a breaker is open): such a change updates the lease's waitReason but is not
 * a new log line, so a pool moving under a waiting lease costs no extra writes or queries.
 */
export function sameStory(a: string, b: string | undefined): boolean {
  if (b === undefined) return false;
  const shape = (s: string) => s.replace(/\d+/g, '#');
  return a === b || shape(a) === shape(b);
}

/** The place in line, in words: `no leases ahead of this one`. */
export function describePlace(ahead: number): string {
  return `${ahead === 0 ? 'no leases' : plural(ahead, 'lease')} ahead of this one`;
}

/** The `lease.waiting` log line: `waiting: <reason>; 2 leases ahead of this one`. */
export function describeWaiting(reason: string, ahead: number): string {
  return `waiting: ${reason}; ${describePlace(ahead)}`;
}

/**
 * The progress line a client prints while a lease waits (CLI, console): status, time waited,
 * place in line when known, and the current reason.
 */
export function describeWaitProgress(p: {
  leaseId: string;
  status: string;
  elapsedSeconds: number;
  ahead?: number;
  reason?: string;
}): string {
  const place = p.ahead === undefined ? '' : `, ${describePlace(p.ahead)}`;
  return `${p.leaseId} ${p.status} for ${Math.round(p.elapsedSeconds)}s${place}${p.reason ? `: ${p.reason}` : ''}`;
}
