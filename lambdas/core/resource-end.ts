/**
 * How a resource leaves service: broken (its leases are woken to move on), destroyed (the
 * plug-in tears it down, then its slot locks are freed and waiting leases woken), or marked
 * suspect (no new leases until a health check passes). Used by every writer that finds a
 * resource gone or failing: the resource's own update, leases, commands, host events, sweeps.
 */
import type { Engine } from './engine.ts';
import { slotKeys } from './engine.ts';
import { topUpMessage } from './min-idle.ts';
import type { Resource } from './model.ts';
import type { ResourceOutcome } from './outcomes.ts';
import type { TxWrite } from './ports.ts';
import type { SetupStep } from './resource-update.ts';
import { isResourceFinished } from './transitions.ts';
import { wakeWaitingLeases } from './wake.ts';

export async function breakResource(
  engine: Engine,
  r: Resource,
  reason: string,
  logType: 'resource.broken' | 'resource.activation-failed' = 'resource.broken',
): Promise<SetupStep & { state: 'broken'; brokeNow?: true }> {
  const ok = await engine.tryTransact([
    {
      op: 'updateResource',
      id: r.id,
      type: r.type,
      expect: { status: r.status, version: r.version },
      set: {
        status: 'broken',
        endReason: reason,
        releasedAt: engine.iso(),
        sweepAt: engine.iso(engine.settings.strandAfterSeconds * 1000),
      },
    },
    engine.logWrite(r.id, logType, `broken: ${reason}`, { reason, blueprintId: r.blueprintId }),
  ]);
  if (!ok) {
    const now = await engine.store.getResource(r.id);
    if (now && !isResourceFinished(now.status)) return breakResource(engine, now, reason, logType);
    return { state: 'broken', resource: now ?? r };
  }
  const broken: Resource = { ...r, status: 'broken', endReason: reason, version: r.version + 1 };
  if (r.leaseCount > 0) await wakeLeasesOf(engine, broken, `${r.id} broke`);
  else await destroyResource(engine, broken);
  return { state: 'broken', resource: broken, brokeNow: true };
}

/** released|broken -> destroyed, once no lease is attached: tear down, free the pool slot. */
export async function destroyResource(engine: Engine, r: Resource): Promise<ResourceOutcome> {
  if (r.leaseCount > 0) {
    // Its leases detach themselves (each detach re-sends this update).
    await wakeLeasesOf(engine, r, `${r.id} ${r.status}`);
    return { action: 'waiting-for-leases', detail: `${r.leaseCount} attached` };
  }
  const blueprint = await engine.blueprint(r.blueprintId);
  if (blueprint) {
    const { plugin, bp } = engine.configured(blueprint);
    // Idempotent; a failure throws and the message is retried (the slot stays held, so the
    // pool never over-allocates while a host may still exist).
    await plugin.destroyResource(engine.ctx, bp, r);
  }
  const ok = await engine.tryTransact([
    {
      op: 'updateResource',
      id: r.id,
      type: r.type,
      expect: { status: r.status, version: r.version },
      requireNoLeases: true,
      set: { status: 'destroyed', destroyedAt: engine.iso(), slotLocks: [], sweepAt: null },
    },
    ...r.slotLocks.map((key): TxWrite => ({ op: 'freeSlotLock', key, ownerId: r.id })),
    engine.logWrite(
      r.id,
      'resource.destroyed',
      `destroyed (${r.endReason ?? r.status}); pool slot freed`,
    ),
  ]);
  if (!ok) return { action: 'stale' };
  await wakeWaitingLeases(engine, r.type, `pool slot of ${r.id} freed`);
  // Waiting leases first (above), then the warm pool: a pre-warm that wins the freed slot is
  // itself a free resource those leases acquire on.
  if (blueprint) await engine.send(...topUpMessage(blueprint, `${r.id} destroyed`));
  return { action: 'destroyed' };
}

/** Mark a resource suspect: no new leases until a health check (sent now) passes. */
export async function markSuspect(engine: Engine, r: Resource, reason: string): Promise<void> {
  let current: Resource | undefined = r;
  for (let i = 0; i < 3 && current && !current.suspectSince && current.status === 'active'; i++) {
    const ok = await engine.tryTransact([
      {
        op: 'updateResource',
        id: current.id,
        type: current.type,
        expect: { status: current.status, version: current.version },
        set: { suspectSince: engine.iso(), suspectReason: reason },
      },
      engine.logWrite(current.id, 'resource.suspect', `suspect: ${reason}; health check queued`),
    ]);
    if (ok) break;
    current = await engine.store.getResource(r.id);
  }
  await engine.send({ kind: 'resource', id: r.id, reason: 'health check' });
}

/** Send an update to every lease holding a lease slot on this resource. */
export async function wakeLeasesOf(
  engine: Engine,
  r: Resource,
  why: string,
  skip?: string,
): Promise<void> {
  const locks = await engine.store.getSlotLocks(slotKeys.allLease(r.id, r.capacity));
  await engine.send(
    ...locks
      .filter((l) => l.ownerKind === 'lease' && l.ownerId !== skip)
      .map((l) => ({ kind: 'lease' as const, id: l.ownerId, reason: `wake: ${why}` })),
  );
}
