/**
 * Which blueprints and resources may serve a lease, as rules without I/O: the allocator's
 * planning phase asks here before it contends for any slot lock, and the lease and resource
 * updates use the same rules (activation per lease, idle time, use limits).
 */
import type { BlueprintType, ConfiguredBlueprint } from './blueprint.ts';
import type { Engine } from './engine.ts';
import { errorMessage } from './errors.ts';
import type { Blueprint, Lease, Resource } from './model.ts';

/** Why a blueprint can never serve a lease, or undefined if it can. */
export function cannotEverServe(
  engine: Engine,
  blueprint: Blueprint,
  lease: Lease,
): string | undefined {
  if (lease.blueprintIds && !lease.blueprintIds.includes(blueprint.id)) {
    return "not in the lease's allowed blueprint list";
  }
  if (blueprint.resourceType !== lease.type) {
    return `builds '${blueprint.resourceType}', not '${lease.type}'`;
  }
  if (blueprint.state !== 'enabled') return `is ${blueprint.state}`;
  const mismatched = Object.entries(lease.attributes).filter(
    ([k, v]) => k in blueprint.attributes && blueprint.attributes[k] !== v,
  );
  if (mismatched.length > 0) {
    return `has ${mismatched.map(([k]) => `${k}=${blueprint.attributes[k]}`).join(',')}, lease wants ${mismatched
      .map(([k, v]) => `${k}=${v}`)
      .join(',')}`;
  }
  const plugin = engine.registry.get(blueprint.type);
  if (!plugin) return `has unknown type '${blueprint.type}'`;
  let configured: ConfiguredBlueprint<unknown>;
  try {
    configured = engine.configured(blueprint).bp;
  } catch (err) {
    return errorMessage(err);
  }
  if (!plugin.resourceTypes.includes(lease.type)) {
    return `type '${blueprint.type}' cannot build '${lease.type}'`;
  }
  const produced = new Set(plugin.producesAttributes?.(configured) ?? []);
  const neverSet = Object.entries(lease.attributes).filter(
    ([k]) => !(k in blueprint.attributes) && !produced.has(k),
  );
  if (neverSet.length > 0) {
    // Without this, such a lease would be served on a new resource that lacks the attribute,
    // and each such lease would allocate yet another one.
    return `never sets ${neverSet.map(([k]) => `'${k}'`).join(', ')} on its resources, lease wants ${neverSet
      .map(([k, v]) => `${k}=${v}`)
      .join(',')}`;
  }
  return plugin.cannotEverServe?.(configured, lease);
}

/**
 * Why a new resource with these attributes (the blueprint's merged with the plug-in's template)
 * would not satisfy the lease, or undefined if it would. The allocator asks this before the
 * allocation transaction, so a resource is acquired for a lease only if it has every attribute
 * the lease asked for: the API contract says each must equal the resource's.
 */
export function templateMismatch(
  lease: Lease,
  attributes: Record<string, string>,
): string | undefined {
  const wrong = Object.entries(lease.attributes).filter(([k, v]) => attributes[k] !== v);
  if (wrong.length === 0) return undefined;
  const has = wrong.map(([k]) => (k in attributes ? `${k}=${attributes[k]}` : `no '${k}'`));
  return `its new resource would have ${has.join(', ')}, lease wants ${wrong
    .map(([k, v]) => `${k}=${v}`)
    .join(',')}`;
}

/**
 * How many leases a resource of this blueprint may ever serve: 1 when it is reclaimed on
 * release (a fresh host per lease), else the blueprint's maxUses. Enforced exactly by the
 * attach condition, because between a lease's release and the reclaim the resource looks free.
 */
export function usesLimit(blueprint: Blueprint): number | undefined {
  return blueprint.limits.reclaimOnRelease ? 1 : blueprint.limits.maxUses;
}

/** Whether leases of this blueprint need the plug-in's activateLease step. */
export function leaseNeedsActivation(
  plugin: BlueprintType<unknown>,
  bp: ConfiguredBlueprint<unknown>,
): boolean {
  if (!plugin.activateLease) return false;
  return plugin.needsLeaseActivation?.(bp) ?? true;
}

/**
 * Whether an active resource is due for its blueprint's periodic health check
 * (`healthCheckEverySeconds`): its last passed check, or else its activation, is older than the
 * interval. No I/O, so the sweep can ask it of every resource it lists anyway.
 */
export function periodicHealthCheckDue(engine: Engine, r: Resource, blueprint: Blueprint): boolean {
  if (r.status !== 'active' || r.suspectSince) return false;
  const plugin = engine.registry.get(blueprint.type);
  if (!plugin?.healthCheckEverySeconds) return false;
  let everySeconds: number | undefined;
  try {
    everySeconds = plugin.healthCheckEverySeconds(engine.configured(blueprint).bp);
  } catch {
    return false; // an invalid config: the resource update says so when it runs
  }
  if (everySeconds === undefined) return false;
  const last = Date.parse(r.lastHealthCheckAt ?? r.activatedAt ?? r.createdAt);
  return engine.now() - last >= everySeconds * 1000;
}

export function idleSinceMs(r: Resource): number {
  return Date.parse(r.lastDetachedAt ?? r.activatedAt ?? r.createdAt);
}
