/**
 * Where the synthetic blueprint keeps its state: ctx.records (append-only, shared by every worker
 * process), never memory, so a test with many concurrent workers sees one consistent world:
 *
 *   synthetic:<blueprintId>:hosts                the "bill": created / destroyed / vanished events
 *   synthetic:<blueprintId>:allocations          allocateResource calls while failTimes is active
 *   synthetic:<blueprintId>:activation-failures  resources chosen to fail activation
 *   synthetic:<blueprintId>:lease-activations    activateLease calls while failTimes is active
 *   synthetic:<blueprintId>:commands:<hostId>    commands started (and cancelled) on a host
 *   synthetic:<blueprintId>:files:<hostId>       files written to a host (last write wins)
 *
 * Order: every record carries `writtenAt`, the real time of the write (sub-millisecond,
 * increasing within a process), and is read back in that order. The store lists by its own key
 * (`<clock ms>#<random>`), so same-millisecond appends — every append under a frozen test clock
 * — would otherwise come back shuffled. `at` is the blueprint context's (injectable) clock.
 *
 * Counting "the first N calls" across processes: a call appends a ticket, lists the scope and
 * takes its ticket's position in write order as its number. Sequential calls are numbered
 * exactly; racing calls get distinct numbers unless a ticket written earlier becomes visible
 * only after a later one was listed (records have no conditional write to rule that out), so
 * under a true race "the first N" may be N plus a few. A caller whose ticket is not visible yet
 * counts itself last.
 */
import { randomUUID } from 'node:crypto';
import type { BlueprintContext } from '../../core/blueprint.ts';
import type { Resource } from '../../core/model.ts';
import { isoAt } from '../../core/ports.ts';
import type { Synthetic } from './config.ts';

export const syntheticScopes = {
  hosts: (blueprintId: string) => `synthetic:${blueprintId}:hosts`,
  allocations: (blueprintId: string) => `synthetic:${blueprintId}:allocations`,
  activationFailures: (blueprintId: string) => `synthetic:${blueprintId}:activation-failures`,
  leaseActivations: (blueprintId: string) => `synthetic:${blueprintId}:lease-activations`,
  commands: (blueprintId: string, hostId: string) => `synthetic:${blueprintId}:commands:${hostId}`,
  files: (blueprintId: string, hostId: string) => `synthetic:${blueprintId}:files:${hostId}`,
};

/** Real time of a write: the injected clock may stand still, this never does within a process. */
function writeStamp(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * Records of a synthetic scope in the order they were written (records without a stamp keep
 * their list order). Use it to read any synthetic scope; list order is the store's, not time's.
 */
export function inWriteOrder<T extends Record<string, unknown>>(records: ReadonlyArray<T>): T[] {
  const stamp = (r: T) => (typeof r.writtenAt === 'number' ? r.writtenAt : 0);
  return records
    .map((record, index) => ({ record, index }))
    .sort((a, b) => stamp(a.record) - stamp(b.record) || a.index - b.index)
    .map(({ record }) => record);
}

/** Append a record stamped with the context clock (`at`) and the real write time. */
export async function appendRecord(
  ctx: BlueprintContext,
  scope: string,
  fields: Record<string, unknown>,
): Promise<void> {
  await ctx.records.append(scope, { at: isoAt(ctx.clock), ...fields, writtenAt: writeStamp() });
}

export async function listInWriteOrder(ctx: BlueprintContext, scope: string) {
  return inWriteOrder(await ctx.records.list(scope));
}

/** Append a ticket to `scope`; return its 1-based position among the tickets, in write order. */
async function takeTicket(
  ctx: BlueprintContext,
  scope: string,
  fields: Record<string, unknown>,
): Promise<number> {
  const ticket = randomUUID();
  await appendRecord(ctx, scope, { ...fields, ticket });
  const all = await listInWriteOrder(ctx, scope);
  const position = all.findIndex((r) => r.ticket === ticket);
  return position < 0 ? all.length + 1 : position + 1;
}

/**
 * Which of the first `limit` calls this is, or undefined once the failing phase is over (then
 * nothing is written: a healthy blueprint costs one read per call).
 */
export async function callNumberWhileFailing(
  ctx: BlueprintContext,
  scope: string,
  limit: number,
  fields: Record<string, unknown>,
): Promise<number | undefined> {
  if (limit <= 0) return undefined;
  if ((await ctx.records.list(scope)).length >= limit) return undefined;
  const n = await takeTicket(ctx, scope, fields);
  return n <= limit ? n : undefined;
}

/**
 * 1-based position of `value` among the distinct values of `field` in `records` (in write order),
 * by each value's first record: a value recorded twice (a retried call) keeps its first place.
 */
export function rankAmong(
  records: ReadonlyArray<Record<string, unknown>>,
  field: string,
  value: string,
): { rank: number | undefined; distinct: number } {
  const seen: unknown[] = [];
  for (const r of records) if (!seen.includes(r[field])) seen.push(r[field]);
  const i = seen.indexOf(value);
  return { rank: i < 0 ? undefined : i + 1, distinct: seen.length };
}

/**
 * Where an id falls in [0, 1): FNV-1a of its text, so every worker (and every retry) decides the
 * same for it without writing anything down.
 */
export function shareOf(id: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    hash ^= id.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) / 2 ** 32;
}

/**
 * Whether this resource is one of the first `failTimes` resources chosen to fail activation, or
 * falls in the `failShare` of resources that always fail.
 * Decided once per resource and kept: a retried activation fails again, deterministically.
 */
export async function activationFails(
  ctx: BlueprintContext,
  blueprint: Synthetic,
  resource: Resource,
): Promise<boolean> {
  const { failTimes: limit, failShare } = blueprint.config.activation;
  if (failShare !== undefined && shareOf(resource.id) < failShare) return true;
  if (limit <= 0) return false;
  const scope = syntheticScopes.activationFailures(blueprint.id);
  let { rank, distinct } = rankAmong(await listInWriteOrder(ctx, scope), 'resourceId', resource.id);
  if (rank === undefined) {
    if (distinct >= limit) return false;
    await appendRecord(ctx, scope, { resourceId: resource.id });
    ({ rank } = rankAmong(await listInWriteOrder(ctx, scope), 'resourceId', resource.id));
  }
  return rank !== undefined && rank <= limit;
}
