/**
 * The soak's world outside the engine (soak-run.ts): its blueprints as the API creates them, and
 * the stand-in inventory that notices vanished hosts.
 */
import type { Engine } from '../../lambdas/core/engine.ts';
import { markSuspect } from '../../lambdas/core/resource-end.ts';
import type { DynamoStore } from '../../lambdas/store/dynamo-store.ts';
import type { SoakBlueprint } from './soak-invariants.ts';

export function blueprintInput(b: SoakBlueprint) {
  return {
    id: b.id,
    type: 'synthetic',
    resourceType: 'host',
    attributes: b.attributes,
    limits: {
      maxResources: b.cap,
      leasesPerResource: b.perHost,
      reclaimOnRelease: b.reclaimOnRelease,
      idleTtlSeconds: 5,
      idleGraceSeconds: 0,
      ...(b.minIdle ? { minIdle: b.minIdle } : {}),
    },
    config: {
      activation: {
        ...(b.activationFailures ? { failTimes: b.activationFailures } : {}),
        ...(b.activationFailShare ? { failShare: b.activationFailShare } : {}),
      },
      ...(b.vanishAfterSeconds ? { vanish: { afterSeconds: b.vanishAfterSeconds } } : {}),
    },
  };
}

/**
 * The stand-in inventory: an active host of a blueprint whose hosts vanish, older than that,
 * is marked suspect, as ec2-host's inventory marks one whose instance is gone; its health check
 * (the synthetic host says it vanished) then breaks it and its leases.
 */
export async function vanishInventory(
  engine: Engine,
  audit: DynamoStore,
  blueprints: SoakBlueprint[],
): Promise<void> {
  for (const b of blueprints) {
    if (!b.vanishAfterSeconds) continue;
    const cutoff = Date.now() - b.vanishAfterSeconds * 1000;
    let cursor: string | undefined;
    do {
      const page = await audit.listResourcesByType('host', 'active', {
        limit: 100,
        ...(cursor ? { cursor } : {}),
      });
      for (const r of page.items) {
        if (r.blueprintId !== b.id || r.suspectSince || Date.parse(r.createdAt) > cutoff) continue;
        await markSuspect(engine, r, 'soak inventory: the host is gone');
      }
      cursor = page.cursor;
    } while (cursor);
  }
}
