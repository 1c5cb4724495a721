/**
 * The sweep's inventory step: every blueprint whose plug-in keeps hosts outside Drydock's records
 * (`reconcileInventory`, e.g. ec2-host's instances) is asked once per sweep to reconcile one
 * bounded batch, resuming from the state (a cursor) its previous call returned. Orphans are the
 * plug-in's to terminate (it knows the cloud); resources whose host vanished are marked suspect
 * here, so their own update decides (the health check breaks them with the reason).
 *
 * The state is kept in the store's append-only records, one scope per ten minutes
 * (`inventory:<blueprintId>:<bucket>`): a sweep reads the last two small scopes, never a history.
 * A lost state only restarts the listing from its beginning.
 */
import type { Engine } from './engine.ts';
import { errorMessage } from './errors.ts';
import type { Blueprint } from './model.ts';
import { markSuspect } from './resource-end.ts';

const STATE_BUCKET_MS = 10 * 60_000;
const scope = (blueprintId: string, bucket: number) => `inventory:${blueprintId}:${bucket}`;

export interface InventoryTotals {
  orphansTerminated: number;
  vanishedHosts: number;
}

export async function reconcileInventories(
  engine: Engine,
  blueprints: Blueprint[],
): Promise<InventoryTotals> {
  const totals: InventoryTotals = { orphansTerminated: 0, vanishedHosts: 0 };
  for (const blueprint of blueprints) {
    const plugin = engine.registry.get(blueprint.type);
    if (!plugin?.reconcileInventory) continue;
    const { bp } = engine.configured(blueprint);
    const bucket = Math.floor(engine.now() / STATE_BUCKET_MS);
    const kept = [
      ...(await engine.store.listRecords(scope(blueprint.id, bucket - 1))),
      ...(await engine.store.listRecords(scope(blueprint.id, bucket))),
    ].sort((a, b) => Number(a.atMs) - Number(b.atMs));
    const last = kept[kept.length - 1];
    try {
      const report = await plugin.reconcileInventory(
        engine.ctx,
        bp,
        last?.state as Record<string, unknown> | undefined,
      );
      // Written only when it changes (a listing in progress): one page per sweep is the usual
      // case, and then nothing accumulates.
      const before = JSON.stringify(last?.state ?? {});
      if (JSON.stringify(report.nextState) !== before) {
        await engine.store.appendRecord(scope(blueprint.id, bucket), {
          atMs: engine.now(),
          state: report.nextState,
        });
      }
      totals.orphansTerminated += report.terminated.length;
      for (const { resourceId, reason } of report.suspects) {
        const r = await engine.store.getResource(resourceId);
        if (r?.status !== 'active') continue;
        totals.vanishedHosts++;
        await markSuspect(engine, r, `inventory: ${reason}`);
      }
      if (report.terminated.length > 0) {
        await engine.store.transact([
          engine.logWrite(
            blueprint.id,
            'sweep.orphans-terminated',
            `terminated ${report.terminated.length} host(s) bound to no resource, seen unbound twice: ${report.terminated.join(', ')}`,
            { hosts: report.terminated },
          ),
        ]);
      }
    } catch (err) {
      // One blueprint's cloud trouble (throttling, permissions) must not stop the sweep.
      // Written to the blueprint's log, where operators look; the next sweep tries again.
      await engine.store.transact([
        engine.logWrite(
          blueprint.id,
          'sweep.inventory-failed',
          `inventory reconciliation failed: ${errorMessage(err)}`,
        ),
      ]);
    }
  }
  return totals;
}
