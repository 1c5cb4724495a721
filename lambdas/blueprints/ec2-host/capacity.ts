/**
 * "No capacity anywhere" remembered per blueprint, so a blueprint whose every attempt was refused
 * does not launch again for every waiting lease (a launch storm): canAllocateNow says the lease
 * waits, with what was tried, until CAPACITY_RETRY_SECONDS have passed. The broken resource also
 * counts on the blueprint's circuit breaker, which backs off further after repeated failures.
 *
 * The records go to one scope per minute (`ec2-host:<bp>:no-capacity:<minute>`), so a check reads
 * two small scopes, never the blueprint's whole history.
 */
import type { BlueprintContext } from '../../core/blueprint.ts';
import type { Ec2Host } from './config.ts';
import { describeTried, type Tried } from './launch.ts';

export const CAPACITY_RETRY_SECONDS = 60;
const BUCKET_MS = 60_000;

const scope = (blueprintId: string, bucket: number) =>
  `ec2-host:${blueprintId}:no-capacity:${bucket}`;

export async function recordNoCapacity(
  ctx: BlueprintContext,
  blueprint: Ec2Host,
  resourceId: string,
  tried: Tried[],
): Promise<void> {
  const atMs = ctx.clock.now();
  await ctx.records.append(scope(blueprint.id, Math.floor(atMs / BUCKET_MS)), {
    atMs,
    resourceId,
    tried: describeTried(tried),
  });
}

/** Why the blueprint should not launch now, if a recent launch found no capacity anywhere. */
export async function noCapacityReason(
  ctx: BlueprintContext,
  blueprint: Ec2Host,
): Promise<string | undefined> {
  const now = ctx.clock.now();
  const bucket = Math.floor(now / BUCKET_MS);
  const recent = [
    ...(await ctx.records.list(scope(blueprint.id, bucket - 1))),
    ...(await ctx.records.list(scope(blueprint.id, bucket))),
  ]
    .filter(
      (r) => typeof r.atMs === 'number' && now - (r.atMs as number) < CAPACITY_RETRY_SECONDS * 1000,
    )
    .sort((a, b) => (b.atMs as number) - (a.atMs as number));
  const last = recent[0];
  if (!last) return undefined;
  const retryAt = new Date((last.atMs as number) + CAPACITY_RETRY_SECONDS * 1000).toISOString();
  return `no EC2 capacity for its last launch (tried ${String(last.tried)}); trying again after ${retryAt}`;
}
