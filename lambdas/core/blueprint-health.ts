/**
 * A blueprint's circuit breaker. Repeated allocation or activation failures open it: the
 * blueprint allocates nothing until `backoffUntil`, and waiting leases say so. A success
 * closes it. Health is bookkeeping, not a lifecycle transition, so it is written without a
 * version condition; two failures recorded at the same instant may count once, which only
 * delays the breaker by one failure.
 */
import type { Engine } from './engine.ts';
import type { Blueprint } from './model.ts';

export async function recordBlueprintFailure(
  engine: Engine,
  blueprint: Blueprint,
  failure: string,
  subjectId: string,
): Promise<void> {
  const current = (await engine.store.getBlueprint(blueprint.id))?.health ?? blueprint.health;
  const failureCount = current.failureCount + 1;
  const { breakerThreshold, breakerBaseSeconds, breakerCapSeconds } = engine.settings;
  const open = failureCount >= breakerThreshold;
  const seconds = Math.min(
    breakerCapSeconds,
    breakerBaseSeconds * 2 ** (failureCount - breakerThreshold),
  );
  const backoffUntil = open ? engine.iso(seconds * 1000) : undefined;
  await engine.store.setBlueprintHealth(blueprint.id, {
    failureCount,
    lastFailure: failure,
    lastFailureAt: engine.iso(),
    ...(backoffUntil ? { backoffUntil } : {}),
  });
  await engine.store.transact([
    engine.logWrite(blueprint.id, 'blueprint.allocation-failed', `${failure} (for ${subjectId})`, {
      subjectId,
      failureCount,
    }),
    ...(open
      ? [
          engine.logWrite(
            blueprint.id,
            'blueprint.backing-off',
            `${failureCount} failures in a row: no new allocations until ${backoffUntil}`,
            { backoffUntil },
          ),
        ]
      : []),
  ]);
  engine.forgetBlueprints();
}

export async function recordBlueprintSuccess(engine: Engine, blueprint: Blueprint): Promise<void> {
  if (blueprint.health.failureCount === 0) return;
  await engine.store.setBlueprintHealth(blueprint.id, { failureCount: 0 });
  await engine.store.transact([
    engine.logWrite(
      blueprint.id,
      'blueprint.recovered',
      'allocation succeeded again; breaker closed',
    ),
  ]);
  engine.forgetBlueprints();
}
