/**
 * Blueprints as operators manage them: create, update (with an optional expected version), and
 * read one. The definition's schema and checks are in blueprint-schema.ts; a blueprint's
 * health (failures, backoff) is in blueprint-health.ts.
 */
import { parseBlueprint } from './blueprint-schema.ts';
import type { Engine } from './engine.ts';
import {
  NotFoundError,
  StateConflictError,
  ValidationError,
  WriteConflictError,
} from './errors.ts';
import { topUpMessage } from './min-idle.ts';
import type { Blueprint } from './model.ts';

export async function createBlueprint(engine: Engine, input: unknown): Promise<Blueprint> {
  const data = parseBlueprint(engine, input);
  const at = engine.iso();
  const blueprint: Blueprint = {
    ...data,
    version: 1,
    createdAt: at,
    updatedAt: at,
    health: { failureCount: 0 },
  };
  try {
    await engine.store.createBlueprint(blueprint);
  } catch (err) {
    if (err instanceof WriteConflictError) {
      throw new StateConflictError(`blueprint '${blueprint.id}' already exists; update it instead`);
    }
    throw err;
  }
  await engine.store.transact([
    engine.logWrite(
      blueprint.id,
      'blueprint.created',
      `created (${blueprint.type}, ${blueprint.resourceType}, max ${blueprint.limits.maxResources})`,
    ),
  ]);
  engine.forgetBlueprints();
  // A warm pool starts filling now rather than at the next sweep.
  await engine.send(...topUpMessage(blueprint, 'blueprint created'));
  return blueprint;
}

/** Replace parts of a blueprint's definition (its id and type are fixed). */
export async function updateBlueprint(
  engine: Engine,
  id: string,
  patch: Record<string, unknown>,
  expectVersion?: number,
): Promise<Blueprint> {
  const current = await engine.store.getBlueprint(id);
  if (!current) throw new NotFoundError('blueprint', id);
  if (expectVersion !== undefined && expectVersion !== current.version) {
    throw new StateConflictError(
      `blueprint '${id}' is at version ${current.version}, not ${expectVersion}; reload and retry`,
    );
  }
  for (const fixed of ['id', 'type'] as const) {
    if (fixed in patch && patch[fixed] !== current[fixed]) {
      throw new ValidationError(
        `a blueprint's ${fixed} cannot change; create a new blueprint instead`,
      );
    }
  }
  const data = parseBlueprint(engine, {
    id: current.id,
    type: current.type,
    resourceType: current.resourceType,
    description: current.description,
    attributes: current.attributes,
    state: current.state,
    config: current.config,
    ...patch,
    limits: { ...current.limits, ...(patch.limits as object | undefined) },
  });
  const updated: Blueprint = {
    ...current,
    ...data,
    version: current.version + 1,
    updatedAt: engine.iso(),
  };
  try {
    await engine.store.updateBlueprint(updated, current.version);
  } catch (err) {
    if (err instanceof WriteConflictError) {
      throw new StateConflictError(`blueprint '${id}' changed meanwhile; reload and retry`);
    }
    throw err;
  }
  const changes = Object.keys(patch).join(', ');
  await engine.store.transact([
    engine.logWrite(id, 'blueprint.updated', `updated (${changes}); now ${updated.state}`),
  ]);
  engine.forgetBlueprints();
  if (updated.state === 'draining' && current.state !== 'draining') {
    // Draining reclaims resources as their leases end: check the idle ones now.
    // The larger of the old and new maximum: lowering it leaves resources above the new one.
    const live = await engine.store.listLiveResources(
      updated.resourceType,
      Math.max(current.limits.maxResources, updated.limits.maxResources),
    );
    await engine.send(
      ...live
        .filter((r) => r.blueprintId === id && r.status === 'active' && r.leaseCount === 0)
        .map((r) => ({ kind: 'resource' as const, id: r.id, reason: 'blueprint draining' })),
    );
  }
  await engine.send(...topUpMessage(updated, 'blueprint updated'));
  return updated;
}

export async function getBlueprint(engine: Engine, id: string): Promise<Blueprint> {
  const b = await engine.store.getBlueprint(id);
  if (!b) throw new NotFoundError('blueprint', id);
  return b;
}
