/**
 * Leases from the holder's side: request one (with an optional Idempotency-Key, so a retried
 * request never creates a second lease) and release it. What happens to a lease afterwards is
 * the lease update's business (lease-update.ts).
 */
import { createHash } from 'node:crypto';
import { type Caller, describeCaller, getLease } from './access.ts';
import { releaseAtOnce } from './destroy-at-once.ts';
import { type Engine, newId } from './engine.ts';
import { DrydockError, StateConflictError, ValidationError, WriteConflictError } from './errors.ts';
import { checkHoldSeconds } from './lease-hold.ts';
import { joinLine, placeInLine } from './line.ts';
import type { Lease } from './model.ts';
import { checkBlueprintId, checkName } from './names.ts';
import { type IdempotencyClaim, type TxWrite, writeLabel } from './ports.ts';
import { MAX_WAIT_TIMEOUT_SECONDS, sweepAtWithinDeadline } from './wait-deadline.ts';
import { parseWorkingCopySpec } from './working-copy-spec.ts';

export interface LeaseRequest {
  type: string;
  attributes?: Record<string, string>;
  blueprintIds?: string[];
  ttlSeconds?: number;
  /** Break the lease if it is not active this long after the request (no limit if absent). */
  waitTimeoutSeconds?: number;
  /** What a `working-copy` lease checks out (see working-copy-spec.ts). */
  workingCopy?: unknown;
  owner: string;
  /** The caller's session, kept on the lease for display (core/identity.ts). */
  ownerSession?: string;
  /** Held lease: it ends this long after its last renewal (lease-hold.ts). */
  holdSeconds?: number;
  /**
   * The caller's Idempotency-Key: a retry of the same request with the same key (by the same
   * owner, within IDEMPOTENCY_KEY_TTL_SECONDS) returns the lease the first one created.
   */
  idempotencyKey?: string;
}

export interface LeaseRequestOutcome {
  lease: Lease;
  /** False when an earlier request with the same Idempotency-Key created the lease. */
  created: boolean;
}

/** How long an Idempotency-Key names its lease; afterwards the key may be used again. */
export const IDEMPOTENCY_KEY_TTL_SECONDS = 24 * 3600;
const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

/** Create a pending lease and queue its first update. */
export async function requestLease(engine: Engine, request: LeaseRequest): Promise<Lease> {
  return (await submitLeaseRequest(engine, request)).lease;
}

/**
 * requestLease that also says whether this call created the lease. With an idempotencyKey the
 * lease and the key's claim are written in one transaction, so a retry (a lost response, a
 * client timeout) either finds the claim or wins it; it never creates a second lease.
 *
 *   first:  transact[createLease L1, takeIdempotencyKey K→L1, log] ─ ok ─ send ─ 201 L1
 *   retry:  transact[createLease L2, takeIdempotencyKey K→L2, log] ─ cancelled (write 1) ─
 *           read claim K → L1 ─ 200 L1   (nothing of L2 was written)
 */
export async function submitLeaseRequest(
  engine: Engine,
  request: LeaseRequest,
): Promise<LeaseRequestOutcome> {
  const { maxLeaseTtlSeconds, defaultLeaseTtlSeconds, strandAfterSeconds } = engine.settings;
  const ttlSeconds = request.ttlSeconds ?? defaultLeaseTtlSeconds;
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > maxLeaseTtlSeconds) {
    throw new ValidationError(
      `ttlSeconds must be a whole number from 1 to ${maxLeaseTtlSeconds}, got ${request.ttlSeconds}`,
    );
  }
  const wait = request.waitTimeoutSeconds;
  if (
    wait !== undefined &&
    (!Number.isInteger(wait) || wait < 1 || wait > MAX_WAIT_TIMEOUT_SECONDS)
  ) {
    throw new ValidationError(
      `waitTimeoutSeconds must be a whole number from 1 to ${MAX_WAIT_TIMEOUT_SECONDS}, got ${wait}`,
    );
  }
  if (!request.type) throw new ValidationError('type is required, e.g. "host"');
  checkName('type', request.type);
  for (const key of Object.keys(request.attributes ?? {})) checkName('attribute name', key);
  for (const id of request.blueprintIds ?? []) checkBlueprintId(id);
  checkHoldSeconds(request.holdSeconds);
  const key = request.idempotencyKey;
  if (key !== undefined && !IDEMPOTENCY_KEY_PATTERN.test(key)) {
    throw new ValidationError(
      'Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID is a good choice)',
    );
  }
  const at = engine.iso();
  const lease: Lease = {
    id: newId('lease'),
    type: request.type,
    attributes: request.attributes ?? {},
    ...(request.blueprintIds?.length ? { blueprintIds: request.blueprintIds } : {}),
    ...(request.workingCopy === undefined
      ? {}
      : { workingCopy: parseWorkingCopySpec(request.workingCopy) }),
    owner: request.owner,
    ...(request.ownerSession === undefined ? {} : { ownerSession: request.ownerSession }),
    status: 'pending',
    version: 0,
    slotLocks: [],
    ttlSeconds,
    ...(request.holdSeconds === undefined
      ? {}
      : { holdSeconds: request.holdSeconds, heldUntil: engine.iso(request.holdSeconds * 1000) }),
    ...(wait === undefined ? {} : { waitTimeoutSeconds: wait }),
    requestedAt: at,
    updatedAt: at,
    waitSeq: 0,
    requeues: 0,
    checkedAt: at,
    // If the first message is lost, the sweep re-drives the lease after this.
    sweepAt: engine.iso(strandAfterSeconds * 1000),
  };
  // ... or at its wait deadline, if that comes first.
  lease.sweepAt = sweepAtWithinDeadline(engine, lease);
  const requestHash = leaseRequestHash(lease);
  const claimWrites: TxWrite[] =
    key === undefined
      ? []
      : [
          {
            op: 'takeIdempotencyKey',
            claim: {
              owner: lease.owner,
              key,
              leaseId: lease.id,
              requestHash,
              expiresAt: engine.iso(IDEMPOTENCY_KEY_TTL_SECONDS * 1000),
            },
          },
        ];
  try {
    await engine.store.transact([
      { op: 'createLease', lease },
      ...claimWrites,
      engine.logWrite(
        lease.id,
        'lease.queued',
        `requested a ${lease.type}${describe(lease.attributes)} by ${lease.owner}; queued for allocation`,
        {
          type: lease.type,
          attributes: lease.attributes,
          ttlSeconds,
        },
      ),
    ]);
  } catch (err) {
    if (key !== undefined && err instanceof WriteConflictError) {
      if (claimWrites.some((claim) => err.failed(writeLabel(claim)))) {
        const claim = await engine.store.getIdempotencyClaim(lease.owner, key);
        if (claim) return replayLeaseRequest(engine, claim, requestHash);
      }
      // The claim expired or was contended at the same instant: the caller may simply retry.
      throw new DrydockError(
        'busy',
        'another request with this Idempotency-Key is being written; retry it',
        { cause: err },
      );
    }
    throw err;
  }
  // Behind older leases that want the same, it waits its turn instead of a first attempt.
  const inLine = engine.settings.joinLine ? await tryJoinLine(engine, lease) : undefined;
  if (inLine) return { lease: inLine, created: true };
  // The lease travels with its first message: its first update plans without reading it.
  await engine.send({ kind: 'lease', id: lease.id, reason: 'requested', ...snapshotOf(lease) });
  return { lease, created: true };
}

/**
 * The lease written as waiting in line (line.ts), or undefined: it gets its first attempt. The
 * lease is already stored, so a failed look at the line must not fail the request: the first
 * attempt is always correct, only sometimes wasted.
 */
async function tryJoinLine(engine: Engine, lease: Lease): Promise<Lease | undefined> {
  try {
    const place = await placeInLine(engine, lease);
    return place ? await joinLine(engine, lease, place) : undefined;
  } catch {
    // Nothing is lost by not joining (the store already retried its own faults): the lease's
    // first attempt follows, and its update reports any fault that persists.
    return undefined;
  }
}

/**
 * Largest lease carried in its own message (JSON characters). A lease with a large `data` (a
 * working copy's step records) is read by its update instead: SQS messages are small.
 */
const MAX_SNAPSHOT_CHARS = 16_000;

/** `{ lease }` for an UpdateMessage, when the lease is small enough to travel. */
export function snapshotOf(lease: Lease): { lease?: Lease } {
  return JSON.stringify(lease).length <= MAX_SNAPSHOT_CHARS ? { lease } : {};
}

/** The answer to a retried request: the lease its key names, if the request is the same. */
async function replayLeaseRequest(
  engine: Engine,
  claim: IdempotencyClaim,
  requestHash: string,
): Promise<LeaseRequestOutcome> {
  if (claim.requestHash !== requestHash) {
    throw new StateConflictError(
      `this Idempotency-Key was already used for a different request (lease ${claim.leaseId}); use a new key for a new request`,
      { leaseId: claim.leaseId },
    );
  }
  const lease = await engine.store.getLease(claim.leaseId);
  if (!lease) {
    throw new StateConflictError(
      `this Idempotency-Key names lease ${claim.leaseId}, which no longer exists; use a new key`,
    );
  }
  if (lease.status === 'pending') {
    // The first request may have died between its write and its send: queueing the lease's
    // update again is harmless (updates are idempotent) and saves a wait for the sweep.
    await engine.send({ kind: 'lease', id: lease.id, reason: 'requested again (same key)' });
  }
  return { lease, created: false };
}

/** What a retry must repeat: the request as the lease records it (defaults applied). */
function leaseRequestHash(lease: Lease): string {
  const canonical = JSON.stringify([
    lease.type,
    Object.entries(lease.attributes).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    [...(lease.blueprintIds ?? [])].sort(),
    lease.ttlSeconds,
    ...(lease.workingCopy ? [lease.workingCopy] : []),
  ]);
  return createHash('sha256').update(canonical).digest('base64url');
}

function describe(attributes: Record<string, string>): string {
  const entries = Object.entries(attributes);
  return entries.length ? ` (${entries.map(([k, v]) => `${k}=${v}`).join(', ')})` : '';
}

/**
 * Release a lease. Idempotent: releasing an already ended lease returns it unchanged. A lease
 * still waiting or acquired is released too (the holder gave up).
 */
export async function releaseLease(engine: Engine, id: string, caller: Caller): Promise<Lease> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const lease = await getLease(engine, id, caller);
    if (lease.status === 'released' || lease.status === 'broken' || lease.status === 'destroyed') {
      return lease;
    }
    const at = engine.iso();
    const endReason = `released by ${describeCaller(caller)}`;
    // Nothing to clean and the resource stays: release and teardown are one transaction.
    const atOnce = await releaseAtOnce(
      engine,
      lease,
      { releasedAt: at, endReason, endedAs: 'released' },
      engine.logWrite(id, 'lease.released', endReason),
    );
    if (atOnce === 'stale') continue; // a worker moved it meanwhile: look again
    if (atOnce) return atOnce;
    const sweepAt = engine.iso(engine.settings.strandAfterSeconds * 1000);
    try {
      await engine.store.transact([
        {
          op: 'updateLease',
          id,
          type: lease.type,
          expect: { status: lease.status, version: lease.version },
          set: {
            status: 'released',
            releasedAt: at,
            endReason: `released by ${describeCaller(caller)}`,
            endedAs: 'released',
            sweepAt,
          },
        },
        engine.logWrite(id, 'lease.released', `released by ${describeCaller(caller)}`),
      ]);
    } catch (err) {
      if (err instanceof WriteConflictError) continue; // a worker moved it meanwhile: look again
      throw err;
    }
    const released: Lease = {
      ...lease,
      status: 'released',
      version: lease.version + 1,
      releasedAt: at,
      endReason: `released by ${describeCaller(caller)}`,
      endedAs: 'released',
      sweepAt,
    };
    // The released lease travels with the message: its teardown then need not read it
    // (destroy-at-once.ts says when that is safe).
    await engine.send({ kind: 'lease', id, reason: 'released', ...snapshotOf(released) });
    return released;
  }
  throw new DrydockError('busy', `lease ${id} is changing too fast to release; try again`);
}
