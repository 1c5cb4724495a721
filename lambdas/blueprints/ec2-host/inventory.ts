/**
 * The sweep's inventory reconciliation for ec2-host (`reconcileInventory`), two-phase and bounded:
 * one DescribeInstances page (INVENTORY_PAGE instances) per sweep, resumed from the cursor the
 * sweep keeps for us.
 *
 *  - Orphans: instances tagged with this deployment and blueprint, pending or running, whose
 *    `binding:<instanceId>` slot lock nobody holds (a crash between RunInstances and recording
 *    the id, a launch retried past its ClientToken). The first sighting is only written down; an
 *    instance seen again at least ORPHAN_GRACE_MS later, still unbound, is terminated. The grace
 *    covers the seconds between a launch and the write that takes its binding.
 *  - Vanished hosts: instances shutting-down or terminated whose binding is still held: the
 *    resource named by their `drydock:resource` tag is reported suspect, and its health check
 *    (the instance is not running) breaks it with the reason.
 *
 * Sightings go to one records scope per grace period, and a check reads the last three, so
 * nothing is ever listed in full.
 */
import { DescribeInstancesCommand, type Instance } from '@aws-sdk/client-ec2';
import type { BlueprintContext, InventoryReport } from '../../core/blueprint.ts';
import { requireClient } from '../cloud-clients.ts';
import { bindingKey } from './activation.ts';
import type { Ec2Host } from './config.ts';
import { GONE_STATES, terminate } from './instances.ts';
import { translateEc2Error } from './launch.ts';

export const ORPHAN_GRACE_MS = 5 * 60_000;
const INVENTORY_PAGE = 100;

const sightingScope = (blueprintId: string, bucket: number) =>
  `ec2-host:${blueprintId}:sightings:${bucket}`;

function tag(instance: Instance, key: string): string | undefined {
  return instance.Tags?.find((t) => t.Key === key)?.Value;
}

export async function reconcileInstances(
  ctx: BlueprintContext,
  blueprint: Ec2Host,
  state: Record<string, unknown> | undefined,
  env: Record<string, string | undefined>,
): Promise<InventoryReport> {
  const ec2 = requireClient(ctx.clients, 'ec2');
  const deployment = env.DRYDOCK_DEPLOYMENT;
  const cursor = typeof state?.cursor === 'string' ? state.cursor : undefined;
  const out = await ec2
    .send(
      new DescribeInstancesCommand({
        Filters: [
          ...(deployment ? [{ Name: 'tag:drydock:deployment', Values: [deployment] }] : []),
          { Name: 'tag:drydock:blueprint', Values: [blueprint.id] },
        ],
        MaxResults: INVENTORY_PAGE,
        ...(cursor ? { NextToken: cursor } : {}),
      }),
    )
    .catch((err) => {
      throw translateEc2Error(err, 'DescribeInstances', `blueprint ${blueprint.id}`);
    });
  const instances = (out.Reservations ?? []).flatMap((r) => r.Instances ?? []);
  const ids = instances.map((i) => i.InstanceId ?? '').filter(Boolean);
  const held = new Set(await ctx.slotLocks.held(ids.map(bindingKey)));

  const report: InventoryReport = {
    nextState: out.NextToken ? { cursor: out.NextToken } : {},
    suspects: [],
    terminated: [],
    sighted: [],
  };
  const now = ctx.clock.now();
  const bucket = Math.floor(now / ORPHAN_GRACE_MS);
  const seen = new Map<string, number>();
  for (let b = bucket - 2; b <= bucket; b++) {
    for (const r of await ctx.records.list(sightingScope(blueprint.id, b))) {
      const id = String(r.instanceId);
      seen.set(id, Math.min(seen.get(id) ?? Number.POSITIVE_INFINITY, Number(r.atMs)));
    }
  }

  const toTerminate: string[] = [];
  for (const instance of instances) {
    const id = instance.InstanceId ?? '';
    const state = instance.State?.Name ?? '';
    const bound = held.has(bindingKey(id));
    if (GONE_STATES.has(state)) {
      const resourceId = tag(instance, 'drydock:resource');
      if (bound && resourceId) {
        report.suspects.push({ resourceId, reason: `instance ${id} is ${state}` });
      }
      continue;
    }
    if (bound) continue;
    const first = seen.get(id);
    if (first !== undefined && now - first >= ORPHAN_GRACE_MS) {
      toTerminate.push(id);
    } else if (first === undefined) {
      await ctx.records.append(sightingScope(blueprint.id, bucket), { instanceId: id, atMs: now });
      report.sighted.push(id);
    }
  }
  if (toTerminate.length > 0) {
    await terminate(ec2, toTerminate);
    report.terminated.push(...toTerminate);
  }
  return report;
}
