/**
 * "Update resource R": the one logical writer of a resource. Drives setup (activate now, or
 * activate later through the setup workflow), health checks of suspects, reclaim of idle
 * resources, and teardown. Like lease updates, every step re-reads and writes conditionally,
 * so duplicates and late messages are harmless.
 */
import { reclaimResource } from './allocator.ts';
import type { HealthPending, HealthResult } from './blueprint.ts';
import { recordBlueprintFailure, recordBlueprintSuccess } from './blueprint-health.ts';
import { idleSinceMs, periodicHealthCheckDue } from './eligibility.ts';
import type { Engine } from './engine.ts';
import { errorMessage, TemporaryError, WriteConflictError } from './errors.ts';
import { countWarmIdle, keepsIdle } from './min-idle.ts';
import type { Blueprint, Resource, UpdateMessage } from './model.ts';
import type { ResourceOutcome } from './outcomes.ts';
import { type TxWrite, writeLabel } from './ports.ts';
import { breakResource, destroyResource, wakeLeasesOf } from './resource-end.ts';
import { wakeWaitingLeases } from './wake.ts';

export type SetupStep =
  | { state: 'pending'; waitSeconds: number; resource: Resource }
  | { state: 'active'; resource: Resource }
  | { state: 'broken'; resource: Resource }
  /** Setup is driven elsewhere (the setup workflow or the resource's own updates). */
  | { state: 'workflow' };

export async function updateResource(engine: Engine, msg: UpdateMessage): Promise<ResourceOutcome> {
  const r = await engine.store.getResource(msg.id);
  if (!r) return { action: 'ignored', detail: `resource ${msg.id} does not exist` };
  switch (r.status) {
    case 'pending': {
      const step = await driveSetup(engine, r);
      return { action: `setup-${step.state}` };
    }
    case 'active':
      return checkActiveResource(engine, r);
    case 'released':
    case 'broken':
      return destroyResource(engine, r);
    case 'destroyed':
      return { action: 'none', detail: 'resource already destroyed' };
  }
}

/**
 * Drive a pending resource's setup from the queue: start the setup workflow if the blueprint
 * activates later and a workflow exists (Step Functions), otherwise take one step here and,
 * if setup is still under way, re-enqueue this update with the blueprint's delay.
 */
export async function driveSetup(
  engine: Engine,
  r: Resource,
  skipWake?: string,
): Promise<SetupStep> {
  const blueprint = await engine.blueprint(r.blueprintId);
  // Past its deadline the resource breaks here, whoever drives setup: a workflow that timed out
  // cannot be restarted under the same name, so it must not be trusted to finish the job.
  const overdue = r.setupDeadline !== undefined && Date.parse(r.setupDeadline) <= engine.now();
  if (blueprint && !overdue) {
    const { plugin, bp } = engine.configured(blueprint);
    if (plugin.activatesLater?.(bp) && engine.startSetup) {
      await engine.startSetup(r.id);
      return { state: 'workflow' };
    }
  }
  const step = await advanceResourceSetup(engine, r, { skipWake });
  if (step.state === 'pending') {
    await engine.send({
      kind: 'resource',
      id: r.id,
      delaySeconds: step.waitSeconds,
      reason: 'setup under way',
    });
  }
  return step;
}

/** Leases known to wait on this resource's setup without a read: its creator and the driver. */
function setupWatchers(r: Resource, driver: string | undefined): string[] {
  return [...new Set([r.createdFor, driver].filter((id): id is string => id !== undefined))];
}

/**
 * One step of resource setup (DESIGN §4, "activate later"): call the blueprint's idempotent
 * activateResource; active -> write it and wake the resource's leases; failure or the setup
 * deadline -> break it (its leases go back to pending). The setup workflow's Lambda step
 * calls exactly this.
 */
export async function advanceResourceSetup(
  engine: Engine,
  r: Resource,
  options: { skipWake?: string } = {},
): Promise<SetupStep> {
  if (r.status === 'active') return { state: 'active', resource: r };
  if (r.status !== 'pending') return { state: 'broken', resource: r };
  const blueprint = await engine.blueprint(r.blueprintId);
  if (!blueprint) return breakResource(engine, r, `blueprint '${r.blueprintId}' was deleted`);
  if (r.setupDeadline && Date.parse(r.setupDeadline) <= engine.now()) {
    const reason = `setup did not finish within ${blueprint.limits.setupTimeoutSeconds}s`;
    const broken = await breakResource(engine, r, reason);
    // Counted once, by the update that broke it (two drivers of one setup may both get here).
    if (broken.brokeNow) {
      await recordBlueprintFailure(
        engine,
        blueprint,
        `activation of ${r.id} failed: ${reason}`,
        r.id,
      );
    }
    return broken;
  }
  const { plugin, bp } = engine.configured(blueprint);
  let step: Awaited<ReturnType<typeof plugin.activateResource>>;
  try {
    step = await plugin.activateResource(engine.ctx, bp, r);
  } catch (err) {
    const reason = `activation failed: ${errorMessage(err)}`;
    const broken = await breakResource(engine, r, reason, 'resource.activation-failed');
    // One failure, one event: only the update whose break took effect counts it.
    if (broken.brokeNow) {
      await recordBlueprintFailure(
        engine,
        blueprint,
        `activation of ${r.id} failed: ${errorMessage(err)}`,
        r.id,
      );
    }
    return broken;
  }

  if (step.state === 'pending') {
    const waitSeconds = Math.max(1, Math.min(900, Math.ceil(step.checkAgainSeconds)));
    const newLocks = (step.slotLocks ?? []).filter((key) => !r.slotLocks.includes(key));
    if (
      step.data ||
      step.attributes ||
      newLocks.length > 0 ||
      r.data.setupMessage !== step.message
    ) {
      const data = { ...r.data, ...step.data, setupMessage: step.message };
      const attributes = { ...r.attributes, ...step.attributes };
      const slotLocks = [...r.slotLocks, ...newLocks];
      const at = engine.iso();
      const takeLock = (key: string): TxWrite => ({
        op: 'takeSlotLock',
        lock: { key, ownerKind: 'resource', ownerId: r.id, createdAt: at },
      });
      const writes: TxWrite[] = [
        {
          op: 'updateResource',
          id: r.id,
          type: r.type,
          expect: { status: 'pending', version: r.version },
          set: {
            data,
            ...(step.attributes ? { attributes } : {}),
            ...(newLocks.length > 0 ? { slotLocks } : {}),
          },
        },
        // Taken with the write that records what they bind (e.g. an instance id), never apart.
        ...newLocks.map(takeLock),
        // A new line only for a new message: steps that only record data are not news.
        ...(r.data.setupMessage === step.message
          ? []
          : [
              engine.logWrite(r.id, 'resource.setup-waiting', `setting up: ${step.message}`),
              // The leases waiting on it hear it too: between "acquired" and "active" a holder
              // otherwise sees nothing while the host boots (same transaction, no extra call).
              ...setupWatchers(r, options.skipWake).map((leaseId) =>
                engine.logWrite(
                  leaseId,
                  'lease.setup-progress',
                  `setting up ${r.type} ${r.id}: ${step.message}`,
                  { resourceId: r.id },
                ),
              ),
            ]),
      ];
      let written = true;
      try {
        await engine.store.transact(writes);
      } catch (err) {
        if (!(err instanceof WriteConflictError)) throw err;
        const taken = newLocks.filter((key) => err.failed(writeLabel(takeLock(key))));
        // The resource changed meanwhile (a concurrent step): it decides; nothing was written.
        written = false;
        if (taken.length > 0 && !err.failed(writeLabel(writes[0] as TxWrite), 'condition')) {
          const reason = `activation failed: slot lock ${taken.join(', ')} is held by another owner`;
          await recordBlueprintFailure(engine, blueprint, `activation of ${r.id}: ${reason}`, r.id);
          return breakResource(engine, r, reason, 'resource.activation-failed');
        }
      }
      if (written) r = { ...r, data, attributes, slotLocks, version: r.version + 1 };
    }
    return { state: 'pending', waitSeconds, resource: r };
  }

  const at = engine.iso();
  const data = { ...r.data, ...step.data };
  delete data.setupMessage;
  const ok = await engine.tryTransact([
    {
      op: 'updateResource',
      id: r.id,
      type: r.type,
      expect: { status: 'pending', version: r.version },
      set: { status: 'active', activatedAt: at, data, sweepAt: at },
    },
    engine.logWrite(r.id, 'resource.activated', `active (blueprint '${r.blueprintId}')`, {
      blueprintId: r.blueprintId,
      createdAt: r.createdAt,
    }),
  ]);
  if (!ok) {
    // Another update got there first; report whatever it did.
    const now = await engine.store.getResource(r.id);
    if (!now) return breakResource(engine, r, 'resource disappeared during setup');
    if (now.status === 'pending') return { state: 'pending', waitSeconds: 1, resource: now };
    return now.status === 'active'
      ? { state: 'active', resource: now }
      : { state: 'broken', resource: now };
  }
  const active: Resource = {
    ...r,
    status: 'active',
    activatedAt: at,
    data,
    version: r.version + 1,
  };
  await recordBlueprintSuccess(engine, blueprint);
  await wakeLeasesOf(engine, active, `${r.id} active`, options.skipWake);
  // Room on it (a warm pool's pre-warm, a shared host): waiting leases sleep until woken.
  const room = active.capacity - active.leaseCount;
  if (room > 0) await wakeWaitingLeases(engine, r.type, `${r.id} active with room`, room);
  return { state: 'active', resource: active };
}

async function checkActiveResource(engine: Engine, r: Resource): Promise<ResourceOutcome> {
  const blueprint = await engine.blueprint(r.blueprintId);
  if (!blueprint) {
    await breakResource(engine, r, `blueprint '${r.blueprintId}' was deleted`);
    return { action: 'broken' };
  }
  if (r.suspectSince) {
    const { plugin, bp } = engine.configured(blueprint);
    let health: HealthResult | HealthPending;
    try {
      health = plugin.suspectHealthCheck
        ? await plugin.suspectHealthCheck(engine.ctx, bp, r)
        : await plugin.healthCheck(engine.ctx, bp, r);
    } catch (err) {
      health = { healthy: false, reason: `health check failed: ${errorMessage(err)}` };
    }
    if ('state' in health) {
      // The check runs commands on the host (git fsck): ask again later, never wait here.
      await engine.send({
        kind: 'resource',
        id: r.id,
        delaySeconds: Math.max(1, Math.min(900, Math.ceil(health.checkAgainSeconds))),
        reason: 'health check under way',
      });
      return { action: 'health-checking', detail: health.message };
    }
    if (!health.healthy) {
      await breakResource(engine, r, healthFailure(health.reason, r.suspectReason));
      return { action: 'broken', detail: health.reason };
    }
    const cleared = await engine.tryTransact([
      {
        op: 'updateResource',
        id: r.id,
        type: r.type,
        expect: { status: 'active', version: r.version },
        set: { suspectSince: null, suspectReason: null },
      },
      engine.logWrite(
        r.id,
        'resource.healthy',
        `passed its health check; serving leases again (was suspect: ${r.suspectReason ?? 'unknown'})`,
      ),
    ]);
    if (cleared) await wakeWaitingLeases(engine, r.type, `${r.id} healthy again`);
    return { action: 'health-checked', detail: 'healthy' };
  }

  // A duplicate or late activation message: make sure the leases waiting on it were woken
  // (a crash between activation and the wake-up would otherwise strand them until the sweep).
  if (
    r.activatedAt &&
    engine.now() - Date.parse(r.activatedAt) < engine.settings.strandAfterSeconds * 1000 &&
    r.leaseCount > 0
  ) {
    await wakeLeasesOf(engine, r, `${r.id} active`);
  }

  if (periodicHealthCheckDue(engine, r, blueprint)) {
    const checked = await periodicHealthCheck(engine, r, blueprint);
    if ('outcome' in checked) return checked.outcome;
    r = checked.resource;
  }

  const why = await reclaimReasonNow(engine, r, blueprint);
  if (why) {
    const reclaimed = await reclaimResource(engine, r, why);
    return { action: reclaimed ? 'reclaimed' : 'none', detail: why };
  }
  return { action: 'none' };
}

/**
 * The periodic health check of an active resource nobody reported a problem with (the plug-in's
 * `healthCheckEverySeconds`; the sweep sends this update when it is due). Unhealthy breaks it
 * with the plug-in's reason, and its active leases break with it; healthy records the time, so
 * the sweep asks again only after the interval. A TemporaryError (throttling) decides nothing:
 * the next sweep asks again.
 */
async function periodicHealthCheck(
  engine: Engine,
  r: Resource,
  blueprint: Blueprint,
): Promise<{ outcome: ResourceOutcome } | { resource: Resource }> {
  const { plugin, bp } = engine.configured(blueprint);
  let health: HealthResult;
  try {
    health = await plugin.healthCheck(engine.ctx, bp, r);
  } catch (err) {
    if (err instanceof TemporaryError) {
      return { outcome: { action: 'none', detail: `health check deferred: ${errorMessage(err)}` } };
    }
    health = { healthy: false, reason: `health check failed: ${errorMessage(err)}` };
  }
  if (!health.healthy) {
    await breakResource(engine, r, `failed its periodic health check: ${health.reason}`);
    return { outcome: { action: 'broken', detail: health.reason } };
  }
  const at = engine.iso();
  const recorded = await engine.tryTransact([
    {
      op: 'updateResource',
      id: r.id,
      type: r.type,
      expect: { status: 'active', version: r.version },
      set: { lastHealthCheckAt: at },
    },
  ]);
  // Changed meanwhile: whoever changed it decides; an unrecorded pass is asked again next sweep.
  if (!recorded) return { outcome: { action: 'stale', detail: 'changed during its health check' } };
  return { resource: { ...r, lastHealthCheckAt: at, version: r.version + 1 } };
}

/**
 * reclaimReason with the warm pool counted. Only when idleness alone speaks for the reclaim and
 * the blueprint keeps idle resources now does this read the pool (one index Query): a resource
 * that must go anyway (draining, used up, too old) needs no count.
 */
async function reclaimReasonNow(
  engine: Engine,
  r: Resource,
  blueprint: Blueprint,
): Promise<string | undefined> {
  const why = reclaimReason(engine, r, blueprint);
  // With a count of 0, only a reason that holds whatever the pool looks like remains.
  if (why === undefined || reclaimReason(engine, r, blueprint, 0) !== undefined) return why;
  // Only this blueprint's resources are counted: its pool's blocks are enough.
  const live = await engine.store.listLiveResources(r.type, blueprint.limits.maxResources);
  return reclaimReason(engine, r, blueprint, countWarmIdle(live, blueprint, engine.now()));
}

/**
 * Why an idle active resource should be reclaimed now, if it should. `idleInPool` is the
 * blueprint's count of idle, ready resources (min-idle.ts, isWarmIdle) including this one: with
 * it, idleness alone never reclaims below the blueprint's minIdle. A resource that must go
 * (draining, one use spent, used up, too old) goes regardless. Without it (unknown), idleness
 * reclaims as if there were no warm pool: callers that act on the answer must pass it when the
 * blueprint keeps one.
 */
export function reclaimReason(
  engine: Engine,
  r: Resource,
  blueprint: Blueprint,
  idleInPool?: number,
): string | undefined {
  if (r.status !== 'active' || r.leaseCount > 0) return undefined;
  const { limits } = blueprint;
  const now = engine.now();
  if (blueprint.state === 'draining') return `blueprint '${blueprint.id}' is draining`;
  if (typeof r.data.retiring === 'string') return r.data.retiring;
  if (limits.reclaimOnRelease && r.uses > 0) return 'reclaimed on release (one use per resource)';
  if (limits.maxUses !== undefined && r.uses >= limits.maxUses)
    return `used ${r.uses} times (max ${limits.maxUses})`;
  if (
    limits.maxAgeSeconds !== undefined &&
    now - Date.parse(r.createdAt) >= limits.maxAgeSeconds * 1000
  ) {
    return `older than its max age of ${limits.maxAgeSeconds}s`;
  }
  const idleMs = now - idleSinceMs(r);
  if (idleMs >= limits.idleTtlSeconds * 1000) {
    const keep = keepsIdle(blueprint, now);
    if (keep > 0 && idleInPool !== undefined && idleInPool <= keep) return undefined;
    return `idle for ${Math.round(idleMs / 1000)}s (idle TTL ${limits.idleTtlSeconds}s)`;
  }
  return undefined;
}

/**
 * pending|active -> broken. A resource that breaks releases its leases: each lease's own update
 * sees the broken resource and goes back to pending (not yet active) or breaks with this
 * reason (active). Teardown waits until they have detached.
 */
/**
 * Why a suspect resource broke, naming the root cause once: the health check's finding, and
 * why it was suspect only when that says something the finding does not.
 */
export function healthFailure(found: string, suspectReason: string | undefined): string {
  const head = `failed its health check: ${found}`;
  if (!suspectReason || suspectReason.includes(found) || found.includes(suspectReason)) {
    return head;
  }
  return `${head} (suspect since: ${suspectReason})`;
}
