/**
 * The command interface behind a lease, or why there is none: the one lookup the command
 * workers (command-runner.ts), the holder's API (commands.ts) and plug-ins (ctx.commandsOn) use,
 * so the rule "commands run only on an active lease on an active resource" and its sentences
 * live in one place.
 */
import type { CommandInterface } from './blueprint.ts';
import type { Engine } from './engine.ts';
import type { Lease, Resource } from './model.ts';

export type LeaseHost =
  | { ok: true; lease: Lease; resource: Resource; iface: CommandInterface }
  /** `iface` is still given when the resource exists: to stop or read a command that ran there. */
  | { ok: false; reason: string; iface?: CommandInterface };

/** Why commands cannot run on a lease that is not active. */
export function notActiveReason(lease: Pick<Lease, 'id' | 'status' | 'endReason'>): string {
  const why = lease.endReason ? ` (${lease.endReason})` : '';
  return `lease ${lease.id} is ${lease.status}, not active${why}; commands run only on active leases`;
}

export async function leaseHost(engine: Engine, lease: Lease): Promise<LeaseHost> {
  const resource = lease.resourceId ? await engine.store.getResource(lease.resourceId) : undefined;
  const blueprint = resource ? await engine.blueprint(resource.blueprintId) : undefined;
  let iface: CommandInterface | undefined;
  if (resource && blueprint) {
    const { plugin, bp } = engine.configured(blueprint);
    iface = plugin.command?.(engine.ctx, bp, resource, lease);
  }
  const stopOnly = iface ? { iface } : {};
  if (lease.status !== 'active') return { ok: false, reason: notActiveReason(lease), ...stopOnly };
  if (resource?.status !== 'active') {
    const why = resource?.endReason ? ` (${resource.endReason})` : '';
    return {
      ok: false,
      reason: `the resource behind lease ${lease.id} is ${resource?.status ?? 'gone'}${why}`,
      ...stopOnly,
    };
  }
  if (!iface) {
    return {
      ok: false,
      reason: `blueprint type '${blueprint?.type ?? resource.blueprintId}' offers no command interface`,
    };
  }
  return { ok: true, lease, resource, iface };
}
