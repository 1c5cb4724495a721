/**
 * "Update lease L": the one logical writer of a lease. Whatever the message says, the update
 * reads the lease and does the next step its status calls for, so a duplicate or a late
 * message is harmless: the conditional write of a step already taken fails and is dropped.
 */
import { allocateLease } from './allocator.ts';
import type { LeaseStep } from './blueprint.ts';
import { leaseNeedsActivation } from './eligibility.ts';
import type { Engine } from './engine.ts';
import { errorMessage, ResourceGoneError, WriteConflictError } from './errors.ts';
import { holdLapsed, lapsedReason, nextCheckAt } from './lease-hold.ts';
import { asLeaseStep, mergedLeaseData, recordPendingStep, stepLogWrites } from './lease-steps.ts';
import type { Lease, Resource, UpdateMessage } from './model.ts';
import { childLeaseEnded } from './nested-leases.ts';
import type { LeaseOutcome, LeaseTeardown } from './outcomes.ts';
import { type TxWrite, writeLabel } from './ports.ts';
import {
  breakResource,
  driveSetup,
  markSuspect,
  wakeLeasesOf,
  wakeWaitingLeases,
} from './resource-update.ts';
import { isResourceFinished } from './transitions.ts';
import {
  delayWithinDeadline,
  pastWaitDeadline,
  sweepAtWithinDeadline,
  waitDeadlineReason,
} from './wait-deadline.ts';
import { describeWaiting, sameStory, type WaitCause } from './wait-reasons.ts';

export async function updateLease(engine: Engine, msg: UpdateMessage): Promise<LeaseOutcome> {
  const lease = await engine.store.getLease(msg.id);
  if (!lease) return { action: 'ignored', detail: `lease ${msg.id} does not exist` };
  switch (lease.status) {
    case 'pending':
      return updatePendingLease(engine, lease, msg);
    case 'acquired':
      return activateLease(engine, lease);
    case 'active':
      return checkActiveLease(engine, lease);
    case 'released':
    case 'broken':
      return destroyLease(engine, lease);
    case 'destroyed':
      return { action: 'none', detail: 'lease already destroyed' };
  }
}

async function updatePendingLease(
  engine: Engine,
  lease: Lease,
  msg: UpdateMessage,
): Promise<LeaseOutcome> {
  // A delayed message from a wait chain that another delivery already continued.
  if (msg.waitSeq !== undefined && msg.waitSeq !== lease.waitSeq) {
    return { action: 'stale', detail: `wait chain ${msg.waitSeq} superseded by ${lease.waitSeq}` };
  }
  if (pastWaitDeadline(engine, lease)) return breakLease(engine, lease, waitDeadlineReason(lease));
  // Its holder stopped renewing it (a killed CLI): nobody is waiting for it any more.
  if (holdLapsed(lease, engine.now())) {
    return endLease(engine, lease, 'released', lapsedReason(lease), 'lease.expired');
  }
  const result = await allocateLease(engine, lease, msg.attempt ?? 0);
  switch (result.outcome) {
    case 'stale':
      return { action: 'stale', detail: 'lease changed under this update' };
    case 'broken':
      return breakLease(engine, lease, result.reason);
    case 'wait':
      return waitForResources(engine, lease, msg, result);
    case 'acquired': {
      const { resource } = result;
      if (result.lease.status === 'active')
        return { action: 'activated', detail: `at once on ${resource.id}` };
      if (resource.status === 'pending' && !result.allocated) {
        // Acquired on someone else's pending resource: its activation wakes this lease.
        return { action: 'acquired', detail: `on pending ${resource.id}` };
      }
      return { action: 'acquired', next: await activateLease(engine, result.lease, resource) };
    }
  }
}

/**
 * Waiting never blocks a worker: the update re-enqueues itself with a delay and records that
 * it waited. The chain message is sent *before* the wait is recorded: a crash in between leaves
 * the old message to be redelivered (its waitSeq still matches) and at worst two messages
 * with the same next waitSeq, which collapse when the first one records its wait.
 */
async function waitForResources(
  engine: Engine,
  lease: Lease,
  msg: UpdateMessage,
  { reason, causes, delaySeconds }: { reason: string; causes: WaitCause[]; delaySeconds: number },
): Promise<LeaseOutcome> {
  const attempt = msg.attempt ?? 0;
  const delay = delayWithinDeadline(
    engine,
    lease,
    delaySeconds > 0 ? delaySeconds : engine.backoffSeconds(attempt),
  );
  await engine.send({
    kind: 'lease',
    id: lease.id,
    waitSeq: lease.waitSeq + 1,
    attempt: attempt + 1,
    delaySeconds: delay,
    reason: 'wait',
  });
  const writes: TxWrite[] = [
    {
      op: 'markLeaseWaiting',
      id: lease.id,
      type: lease.type,
      expectWaitSeq: lease.waitSeq,
      set: {
        waitReason: reason,
        checkedAt: engine.iso(),
        sweepAt: sweepAtWithinDeadline(engine, lease),
      },
    },
  ];
  if (!sameStory(reason, lease.waitReason)) {
    // Only a changed reason is logged: the log reads as a story, not a heartbeat. The lease's
    // waitReason (above) is always the exact, current one; clients show it as they poll.
    const ahead = await engine.store.countWaitingAhead(lease.type, lease.requestedAt, lease.id);
    writes.push(
      engine.logWrite(lease.id, 'lease.waiting', describeWaiting(reason, ahead), {
        reason,
        causes,
        ahead,
        retryInSeconds: delay,
      }),
    );
  }
  try {
    await engine.store.transact(writes);
  } catch (err) {
    if (err instanceof WriteConflictError) {
      return { action: 'stale', detail: 'another update of this lease is under way' };
    }
    throw err;
  }
  return { action: 'waited', detail: `${reason} (retry in ${delay}s)` };
}

/** acquired -> active, once the resource is active. */
export async function activateLease(
  engine: Engine,
  lease: Lease,
  known?: Resource,
): Promise<LeaseOutcome> {
  let r =
    known ?? (lease.resourceId ? await engine.store.getResource(lease.resourceId) : undefined);
  if (!r || isResourceFinished(r.status)) {
    return requeueLease(
      engine,
      lease,
      r,
      r
        ? `${r.type} ${r.id} ${r.status === 'broken' ? `broke (${r.endReason ?? 'no reason'})` : `was ${r.status}`} before the lease activated`
        : `resource ${lease.resourceId} disappeared before the lease activated`,
    );
  }
  if (r.status === 'pending') {
    // The creator (or a re-driven lease) pushes setup along; activate-later blueprints hand it
    // to the setup workflow. The resource's activation wakes every other lease on it.
    const step = await driveSetup(engine, r, lease.id);
    if (step.state === 'pending' || step.state === 'workflow') {
      // Still being set up past the lease's deadline: the lease ends, the resource goes on.
      if (pastWaitDeadline(engine, lease)) {
        return breakLease(engine, lease, waitDeadlineReason(lease));
      }
      return { action: 'waiting-for-resource', detail: `${r.id} is still being set up` };
    }
    r = step.resource;
    if (r.status !== 'active') return activateLease(engine, lease, r);
  }

  const blueprint = await engine.blueprint(r.blueprintId);
  if (!blueprint) return breakLease(engine, lease, `blueprint '${r.blueprintId}' was deleted`);
  const { plugin, bp } = engine.configured(blueprint);
  let step: LeaseStep = { state: 'done' };
  try {
    if (leaseNeedsActivation(plugin, bp)) {
      step = asLeaseStep(await plugin.activateLease?.(engine.ctx, bp, r, lease));
    }
  } catch (err) {
    if (err instanceof ResourceGoneError) {
      // The resource itself is unusable (its host gone, a working copy's clone damaged): not
      // the lease's fault. The resource breaks, which sends this lease back to pending (its
      // update, woken by the break, finds the resource broken) to be served elsewhere.
      await breakResource(engine, r, `lease ${lease.id} found it unusable: ${errorMessage(err)}`);
      return { action: 'waiting-for-resource', detail: `${r.id} broke: ${errorMessage(err)}` };
    }
    // Activation may have had side effects on the host: the lease is broken, not retried,
    // and the resource becomes suspect until a health check clears it.
    const reason = `activation on ${r.id} failed: ${errorMessage(err)}`;
    await markSuspect(engine, r, `lease ${lease.id} activation failed: ${errorMessage(err)}`);
    return breakLease(engine, lease, reason, 'lease.activation-failed');
  }
  if (step.state === 'pending') {
    // Long work on the host (a git fetch): record the step, come back later (lease-steps.ts).
    const recorded = await recordPendingStep(engine, lease, step);
    return recorded ? { action: 'activating', detail: step.message } : { action: 'stale' };
  }

  const ttl = lease.ttlSeconds ?? engine.settings.defaultLeaseTtlSeconds;
  const expiresAt = engine.iso(ttl * 1000);
  const checkAt = nextCheckAt({ expiresAt, heldUntil: lease.heldUntil }) ?? expiresAt;
  const activation: TxWrite = {
    op: 'updateLease',
    id: lease.id,
    type: lease.type,
    expect: { status: 'acquired', version: lease.version },
    set: {
      status: 'active',
      activatedAt: engine.iso(),
      expiresAt,
      sweepAt: checkAt,
      ...(step.data ? { data: mergedLeaseData(lease, step) } : {}),
      ...(lease.stepMessage ? { stepMessage: null } : {}),
    },
  };
  try {
    await engine.store.transact([
      activation,
      // No lease is ever active on a resource that is not active.
      { op: 'checkResource', resourceId: r.id, statusIn: ['active'] },
      ...stepLogWrites(engine, lease, step, engine.leaseActivatedLog(lease, r, expiresAt)),
    ]);
  } catch (err) {
    if (!(err instanceof WriteConflictError)) throw err;
    if (err.failed(writeLabel(activation))) return { action: 'stale' };
    // The resource changed (broke, reclaimed) since we read it: look again.
    return activateLease(engine, lease);
  }
  await engine.wakeParent(lease, 'is active');
  return { action: 'activated', detail: `on ${r.id}` };
}

/**
 * acquired -> pending: the resource died before the lease activated. Not the lease's fault:
 * its slot locks are freed and it is allocated again.
 */
async function requeueLease(
  engine: Engine,
  lease: Lease,
  r: Resource | undefined,
  why: string,
): Promise<LeaseOutcome> {
  const at = engine.iso();
  const writes: TxWrite[] = [
    {
      op: 'updateLease',
      id: lease.id,
      type: lease.type,
      expect: { status: 'acquired', version: lease.version },
      set: {
        status: 'pending',
        resourceId: null,
        blueprintId: null,
        acquiredAt: null,
        slotLocks: [],
        // Steps taken on the dead resource mean nothing on the next one.
        ...(lease.data ? { data: null } : {}),
        ...(lease.stepMessage ? { stepMessage: null } : {}),
        requeues: lease.requeues + 1,
        checkedAt: at,
        sweepAt: sweepAtWithinDeadline(engine, lease),
      },
    },
    ...lease.slotLocks.map((key): TxWrite => ({ op: 'freeSlotLock', key, ownerId: lease.id })),
    ...(r ? [{ op: 'detachLease', resourceId: r.id, at } as TxWrite] : []),
    engine.logWrite(lease.id, 'lease.requeued', `${why}; allocating again`, {
      resourceId: lease.resourceId,
    }),
  ];
  try {
    await engine.store.transact(writes);
  } catch (err) {
    if (err instanceof WriteConflictError) return { action: 'stale' };
    throw err;
  }
  await engine.send(
    { kind: 'lease', id: lease.id, reason: 'requeued' },
    ...(r ? [{ kind: 'resource' as const, id: r.id, reason: `lease ${lease.id} detached` }] : []),
  );
  return { action: 'requeued', detail: why };
}

async function checkActiveLease(engine: Engine, lease: Lease): Promise<LeaseOutcome> {
  if (holdLapsed(lease, engine.now())) {
    return endLease(engine, lease, 'released', lapsedReason(lease), 'lease.expired');
  }
  if (lease.expiresAt && Date.parse(lease.expiresAt) <= engine.now()) {
    return endLease(
      engine,
      lease,
      'released',
      `expired after its TTL of ${lease.ttlSeconds ?? engine.settings.defaultLeaseTtlSeconds}s`,
      'lease.expired',
    );
  }
  const r = lease.resourceId ? await engine.store.getResource(lease.resourceId) : undefined;
  if (!r || isResourceFinished(r.status)) {
    const why = r
      ? `${r.type} ${r.id} ${r.status === 'broken' ? `broke: ${r.endReason ?? 'no reason given'}` : `was ${r.status} (${r.endReason ?? 'no reason given'})`}`
      : `resource ${lease.resourceId} disappeared`;
    return breakLease(engine, lease, why);
  }
  const checkAt = nextCheckAt(lease);
  if (lease.heldUntil && checkAt && lease.sweepAt !== checkAt) {
    // Renewed since the sweep last filed it: file it again at the new end of its hold.
    try {
      await engine.store.transact([
        {
          op: 'updateLease',
          id: lease.id,
          type: lease.type,
          expect: { status: 'active', version: lease.version },
          set: { sweepAt: checkAt },
        },
      ]);
    } catch (err) {
      if (err instanceof WriteConflictError) return { action: 'stale' };
      throw err;
    }
    return { action: 'none', detail: `lease is active and held until ${lease.heldUntil}` };
  }
  return { action: 'none', detail: 'lease is active' };
}

/** pending|acquired|active -> broken, then destroyed. The reason is what the holder reads. */
export async function breakLease(
  engine: Engine,
  lease: Lease,
  reason: string,
  logType: 'lease.broken' | 'lease.activation-failed' = 'lease.broken',
): Promise<LeaseOutcome> {
  return endLease(engine, lease, 'broken', reason, logType);
}

export async function endLease(
  engine: Engine,
  lease: Lease,
  status: 'released' | 'broken',
  reason: string,
  logType: 'lease.broken' | 'lease.activation-failed' | 'lease.released' | 'lease.expired',
): Promise<LeaseOutcome> {
  const at = engine.iso();
  try {
    await engine.store.transact([
      {
        op: 'updateLease',
        id: lease.id,
        type: lease.type,
        expect: { status: lease.status, version: lease.version },
        set: {
          status,
          endReason: reason,
          endedAs: status,
          releasedAt: at,
          sweepAt: engine.iso(engine.settings.strandAfterSeconds * 1000),
        },
      },
      engine.logWrite(
        lease.id,
        logType,
        status === 'broken' ? `broken: ${reason}` : `released: ${reason}`,
        {
          reason,
        },
      ),
    ]);
  } catch (err) {
    if (err instanceof WriteConflictError) return { action: 'stale' };
    throw err;
  }
  const destroyed = await destroyLease(engine, {
    ...lease,
    status,
    version: lease.version + 1,
    endReason: reason,
    releasedAt: at,
  });
  return { action: status, detail: reason, next: destroyed };
}

/**
 * released|broken -> destroyed: clean up on the resource, free the lease's slot locks and
 * detach from the resource, in one transaction; then wake whoever can use the freed slot.
 */
export async function destroyLease(engine: Engine, lease: Lease): Promise<LeaseTeardown> {
  const r = lease.resourceId ? await engine.store.getResource(lease.resourceId) : undefined;
  const blueprint = r ? await engine.blueprint(r.blueprintId) : undefined;
  let cleaned: LeaseStep = { state: 'done' };
  // Cleanup runs after an activation, and after the steps of one that never finished (the
  // holder gave up during a git fetch): the plug-in stops what they started.
  if (r && blueprint && r.status === 'active' && (lease.activatedAt || lease.data)) {
    const { plugin, bp } = engine.configured(blueprint);
    try {
      cleaned = asLeaseStep(await plugin.releaseLease?.(engine.ctx, bp, r, lease));
    } catch (err) {
      // Cleanup failed: the next holder must not get a dirty resource.
      await markSuspect(engine, r, `cleanup after lease ${lease.id} failed: ${errorMessage(err)}`);
    }
  }
  if (cleaned.state === 'pending') {
    // Cleanup runs on the host (git clean): the slot stays held until it is done.
    const recorded = await recordPendingStep(engine, lease, cleaned);
    return recorded ? { action: 'cleaning', detail: cleaned.message } : { action: 'stale' };
  }
  const at = engine.iso();
  try {
    await engine.store.transact([
      {
        op: 'updateLease',
        id: lease.id,
        type: lease.type,
        expect: { status: lease.status, version: lease.version },
        set: { status: 'destroyed', destroyedAt: at, slotLocks: [], sweepAt: null },
      },
      ...lease.slotLocks.map((key): TxWrite => ({ op: 'freeSlotLock', key, ownerId: lease.id })),
      ...(r ? [{ op: 'detachLease', resourceId: r.id, at } as TxWrite] : []),
      ...stepLogWrites(
        engine,
        lease,
        cleaned,
        engine.logWrite(lease.id, 'lease.destroyed', 'destroyed; its slot is free', {
          resourceId: lease.resourceId,
        }),
      ),
    ]);
  } catch (err) {
    if (err instanceof WriteConflictError) return { action: 'stale' };
    throw err;
  }
  await childLeaseEnded(engine, lease);
  if (r) {
    const reclaim =
      isResourceFinished(r.status) ||
      blueprint?.limits.reclaimOnRelease ||
      blueprint?.state === 'draining';
    if (reclaim) {
      // The resource's own update decides (reclaim, or finish tearing down); its pool slot,
      // once free, wakes waiting leases.
      await engine.send({ kind: 'resource', id: r.id, reason: `lease ${lease.id} destroyed` });
    } else {
      await wakeWaitingLeases(engine, r.type, `lease slot on ${r.id} freed`);
    }
  }
  return { action: 'destroyed' };
}

export { wakeLeasesOf };
