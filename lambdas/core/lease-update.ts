/**
 * "Update lease L": the one logical writer of a lease. Whatever the message says, the update
 * reads the lease and does the next step its status calls for, so a duplicate or a late
 * message is harmless: the conditional write of a step already taken fails and is dropped.
 */
import { allocateLease, waitsForWake } from './allocator.ts';
import type { LeaseStep } from './blueprint.ts';
import { destroyAtOnce } from './destroy-at-once.ts';
import { leaseNeedsActivation } from './eligibility.ts';
import type { Engine } from './engine.ts';
import { errorMessage, ResourceGoneError, WriteConflictError } from './errors.ts';
import { mayBeFreedByDetach } from './free.ts';
import { breakLease, destroyLease, endLease } from './lease-end.ts';
import { holdLapsed, lapsedReason, nextCheckAt } from './lease-hold.ts';
import { asLeaseStep, mergedLeaseData, recordPendingStep, stepLogWrites } from './lease-steps.ts';
import { AT_THE_CAP, waitingAhead } from './line.ts';
import type { Lease, Resource, UpdateMessage, WaitingFor } from './model.ts';
import type { LeaseOutcome } from './outcomes.ts';
import { type TxWrite, writeLabel } from './ports.ts';
import { breakResource, markSuspect } from './resource-end.ts';
import { driveSetup } from './resource-update.ts';
import { isResourceFinished } from './transitions.ts';
import {
  delayWithinDeadline,
  pastWaitDeadline,
  sweepAtWithinDeadline,
  waitDeadlineReason,
} from './wait-deadline.ts';
import { describeWaiting, sameStory, type WaitCause } from './wait-reasons.ts';
import { passWakeOn } from './wake.ts';

export async function updateLease(engine: Engine, msg: UpdateMessage): Promise<LeaseOutcome> {
  const outcome = await updateLeaseOnce(engine, msg);
  if (msg.wake && outcome.action === 'stale') {
    // Two slots freed at once woke the same oldest lease: the other update took one slot, this
    // wake-up's slot goes to the next waiter (once: the passed-on wake-up is not passed on).
    const lease = await engine.store.getLease(msg.id);
    if (lease) await passWakeOn(engine, lease, msg);
  }
  return outcome;
}

async function updateLeaseOnce(engine: Engine, msg: UpdateMessage): Promise<LeaseOutcome> {
  if (msg.lease && msg.lease.id === msg.id) {
    const outcome = await updateFromSnapshot(engine, msg.lease, msg);
    if (outcome) return outcome;
    // The snapshot was stale (or the short way did not apply): read the lease after all.
    const { lease: _snapshot, ...rest } = msg;
    return updateLeaseOnce(engine, rest);
  }
  const lease = await engine.store.getLease(msg.id);
  if (!lease) return { action: 'ignored', detail: `lease ${msg.id} does not exist` };
  if (lease.status !== 'pending') await passWakeOn(engine, lease, msg);
  if (msg.waitSeq !== undefined && (lease.status === 'active' || lease.status === 'destroyed')) {
    // A wait chain's delayed message outlived the wait (a wake-up served the lease): it has
    // nothing to do. Expiry and a dead resource are the sweep's and the resource's business,
    // not this leftover's, so it reads nothing more.
    return { action: 'none', detail: `wait chain ${msg.waitSeq} ended: lease is ${lease.status}` };
  }
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

/**
 * The update from the lease its sender just wrote (UpdateMessage.lease), without reading it:
 * only steps whose first effect is a write conditional on the lease's (status, version), so a
 * stale snapshot changes nothing. Undefined: read the lease and run the update the usual way.
 *  - pending (the request's first message): planning reads nothing of the lease that a
 *    conditional write does not check again;
 *  - released (the holder's release): destroy-at-once.ts, only when nothing needs cleaning (a
 *    cleanup on the host must never run from a stale snapshot).
 */
async function updateFromSnapshot(
  engine: Engine,
  lease: Lease,
  msg: UpdateMessage,
): Promise<LeaseOutcome | undefined> {
  if (lease.status === 'pending') {
    // A renewal writes heldUntil without a version bump (lease-hold.ts), so no condition would
    // catch a snapshot that missed one: a hold that looks lapsed is judged on the stored lease.
    if (holdLapsed(lease, engine.now())) return undefined;
    const outcome = await updatePendingLease(engine, lease, msg);
    return outcome.action === 'stale' ? undefined : outcome;
  }
  if (lease.status === 'released') {
    const outcome = await destroyAtOnce(engine, lease);
    if (outcome.action === 'not-at-once') return undefined;
    if (outcome.action !== 'from-snapshot') return outcome;
    const teardown = await destroyLease(engine, lease);
    return teardown.action === 'stale' ? undefined : teardown;
  }
  return undefined;
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
  if (msg.waitSeq !== undefined && !msg.wake && waitsItsTurn(lease)) {
    // The wait chain's safety net, for a lease that waits its turn (line.ts, waitingAhead):
    // behind an older lease wanting the same, it keeps waiting without an attempt.
    const ahead = await waitingAhead(engine, lease);
    if (ahead) {
      return waitForResources(engine, lease, msg, {
        // Unchanged, so nothing is logged: the line moved, the story did not.
        reason: lease.waitReason ?? `waiting behind lease ${ahead.id}`,
        causes: [{ kind: 'in-line', type: lease.type, behind: ahead.id }],
        delaySeconds: engine.backoffSeconds(AT_THE_CAP),
      });
    }
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
        // Acquired on someone else's pending resource: its activation wakes this lease, by the
        // slot locks it reads (wakeLeasesOf). This lease's lock may have been written just after
        // that read, the plan's copy of the resource being older than the activation: then no
        // wake-up comes (until the sweep's strand, minutes later). One read now, after the lock
        // is written, tells which: still pending, the activation is yet to read the locks.
        const now = await engine.store.getResource(resource.id);
        if (now?.status === 'pending') {
          return { action: 'acquired', detail: `on pending ${resource.id}` };
        }
        return { action: 'acquired', next: await activateLease(engine, result.lease, now) };
      }
      return { action: 'acquired', next: await activateLease(engine, result.lease, resource) };
    }
  }
}

/** What a wait on these causes ends with (Lease.waitingFor). */
function waitingForOf(causes: readonly WaitCause[]): WaitingFor {
  // Still behind the line it joined: its reason is the line's, not what it saw of the pool.
  if (causes.length > 0 && causes.every((c) => c.kind === 'in-line')) return 'line';
  return waitsForWake(causes) ? 'slot' : 'other';
}

/** Whether the lease waits for a slot that a wake-up hands it (wake.ts), in its turn. */
function waitsItsTurn(lease: Lease): boolean {
  return lease.waitSeq > 0 && (lease.waitingFor === 'slot' || lease.waitingFor === 'line');
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
        // What a new lease wanting the same looks for to join the line behind this one (line.ts).
        waitingFor: waitingForOf(causes),
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
        // It gets an attempt at once: nobody should join a line behind it meanwhile.
        ...(lease.waitingFor ? { waitingFor: null } : {}),
        checkedAt: at,
        sweepAt: sweepAtWithinDeadline(engine, lease),
      },
    },
    ...lease.slotLocks.map((key): TxWrite => ({ op: 'freeSlotLock', key, ownerId: lease.id })),
    ...(r
      ? [{ op: 'detachLease', resourceId: r.id, at, mayFree: mayBeFreedByDetach(r) } as TxWrite]
      : []),
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
