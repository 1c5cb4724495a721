/**
 * The use cases the handlers and the CLI call. Each validates what only the domain can know
 * (ownership, state), does one thing, and returns domain objects or throws a typed error whose
 * message says what to do.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { type Caller, getLease, requireAdmin } from './access.ts';
import { reclaimResource } from './allocator.ts';
import { recordBlueprintFailure } from './blueprint-health.ts';
import { runQueuedCommand } from './commands.ts';
import { type Engine, newId } from './engine.ts';
import {
  DrydockError,
  ForbiddenError,
  NotFoundError,
  StateConflictError,
  ValidationError,
  WriteConflictError,
} from './errors.ts';
import { type UpdateResult, updateLease } from './lease-update.ts';
import {
  BLUEPRINT_STATES,
  type Blueprint,
  type Lease,
  type LeaseStatus,
  type LogEvent,
  type Resource,
  type ResourceStatus,
  type UpdateMessage,
} from './model.ts';
import {
  type IdempotencyClaim,
  type Page,
  type PageOptions,
  type TxWrite,
  writeLabel,
} from './ports.ts';
import { advanceResourceSetup, breakResource, updateResource } from './resource-update.ts';
import { isResourceFinished } from './transitions.ts';

export { type Caller, getLease } from './access.ts';
export {
  getCommand,
  MAX_COMMAND_TIMEOUT_SECONDS,
  runCommand,
  startCommand,
} from './commands.ts';

// ---- leases ---------------------------------------------------------------------------------

export interface LeaseRequest {
  type: string;
  attributes?: Record<string, string>;
  blueprintIds?: string[];
  ttlSeconds?: number;
  owner: string;
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
  if (!request.type) throw new ValidationError('type is required, e.g. "host"');
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
    owner: request.owner,
    status: 'pending',
    version: 0,
    slotLocks: [],
    ttlSeconds,
    requestedAt: at,
    updatedAt: at,
    waitSeq: 0,
    requeues: 0,
    checkedAt: at,
    // If the first message is lost, the sweep re-drives the lease after this.
    sweepAt: engine.iso(strandAfterSeconds * 1000),
  };
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
  await engine.send({ kind: 'lease', id: lease.id, reason: 'requested' });
  return { lease, created: true };
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
            endReason: `released by ${caller.principal}`,
            endedAs: 'released',
            sweepAt: engine.iso(engine.settings.strandAfterSeconds * 1000),
          },
        },
        engine.logWrite(id, 'lease.released', `released by ${caller.principal}`),
      ]);
    } catch (err) {
      if (err instanceof WriteConflictError) continue; // a worker moved it meanwhile: look again
      throw err;
    }
    await engine.send({ kind: 'lease', id, reason: 'released' });
    return {
      ...lease,
      status: 'released',
      version: lease.version + 1,
      releasedAt: at,
      endReason: `released by ${caller.principal}`,
    };
  }
  throw new DrydockError('busy', `lease ${id} is changing too fast to release; try again`);
}

export async function readLogs(
  engine: Engine,
  objectId: string,
  options: { after?: string; limit?: number } = {},
): Promise<LogEvent[]> {
  return engine.store.listLogs(objectId, options);
}

export interface LogQuery {
  /** Events after this seq (exclusive): the last seq a reader saw. */
  after?: string;
  limit?: number;
}

/** The log of a lease the caller may see. */
export async function readLeaseLogs(
  engine: Engine,
  leaseId: string,
  caller: Caller,
  query: LogQuery = {},
): Promise<LogEvent[]> {
  await getLease(engine, leaseId, caller);
  return readLogs(engine, leaseId, query);
}

/** The log of a resource (admin). */
export async function readResourceLogs(
  engine: Engine,
  resourceId: string,
  caller: Caller,
  query: LogQuery = {},
): Promise<LogEvent[]> {
  requireAdmin(caller, 'reading resource logs');
  await getResource(engine, resourceId);
  return readLogs(engine, resourceId, query);
}

/** The log of a blueprint (anyone: it says why leases wait). */
export async function readBlueprintLogs(
  engine: Engine,
  blueprintId: string,
  query: LogQuery = {},
): Promise<LogEvent[]> {
  await getBlueprint(engine, blueprintId);
  return readLogs(engine, blueprintId, query);
}

// ---- queue and sweep ------------------------------------------------------------------------

/**
 * Process one queued update message. `signal` aborts a command run when the worker is about to
 * run out of time.
 */
export async function processUpdate(
  engine: Engine,
  msg: UpdateMessage,
  options: { signal?: AbortSignal } = {},
): Promise<UpdateResult> {
  switch (msg.kind) {
    case 'lease':
      return updateLease(engine, msg);
    case 'resource':
      return updateResource(engine, msg);
    case 'command':
      return runQueuedCommand(engine, msg, options);
  }
}

// ---- listings -------------------------------------------------------------------------------

export interface ListQuery<S extends string> {
  status?: S;
  type?: string;
  /** Items per page, 1..MAX_PAGE_SIZE. @default DEFAULT_PAGE_SIZE */
  limit?: number;
  cursor?: string;
  /** With `type`: newest first instead of oldest first (e.g. recently ended leases). */
  order?: 'oldest' | 'newest';
}

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 100;
/** Index queries one page may take (a filtered listing can read many items to find a few). */
const MAX_QUERIES_PER_PAGE = 10;

/** What a listing without `status` walks, in lifecycle order. Destroyed ones need asking for. */
export const LISTED_LEASE_STATUSES: readonly LeaseStatus[] = [
  'pending',
  'acquired',
  'active',
  'released',
  'broken',
];
export const LISTED_RESOURCE_STATUSES: readonly ResourceStatus[] = [
  'pending',
  'active',
  'released',
  'broken',
];

/**
 * Leases the caller may see (non-admins: their own; admins: everyone's), one status after
 * another (LISTED_LEASE_STATUSES unless `status` is given). Within a status, leases come in
 * request order when `type` is given, otherwise in the order the sweep will look at them.
 * Destroyed leases leave the status index, so `status=destroyed` needs `type` (they stay in
 * the type index until they expire). A page may hold fewer than `limit` items and still have
 * a cursor: follow it until there is none.
 */
export async function listLeases(
  engine: Engine,
  query: ListQuery<LeaseStatus>,
  caller: Caller,
): Promise<Page<Lease>> {
  const owner = caller.admin ? undefined : caller.principal;
  const { type } = query;
  if (query.status === 'destroyed' && type === undefined) {
    throw new ValidationError(
      'listing destroyed leases needs type=<resource type> (destroyed leases are indexed by type only)',
    );
  }
  return walkStatuses(query.status ? [query.status] : LISTED_LEASE_STATUSES, query, (s, o) =>
    type === undefined
      ? engine.store.listLeasesByStatus(s, { ...o, ...(owner ? { owner } : {}) })
      : engine.store.listLeasesByType(type, s, { ...o, ...(owner ? { owner } : {}) }),
  );
}

/** Resources (admin), like listLeases; by blueprint and age when `type` is given. */
export async function listResources(
  engine: Engine,
  query: ListQuery<ResourceStatus>,
  caller: Caller,
): Promise<Page<Resource>> {
  requireAdmin(caller, 'listing resources');
  const { type } = query;
  if (query.status === 'destroyed' && type === undefined) {
    throw new ValidationError(
      'listing destroyed resources needs type=<resource type> (destroyed resources are indexed by type only)',
    );
  }
  return walkStatuses(query.status ? [query.status] : LISTED_RESOURCE_STATUSES, query, (s, o) =>
    type === undefined
      ? engine.store.listResourcesByStatus(s, o)
      : engine.store.listResourcesByType(type, s, o),
  );
}

/** Every blueprint, by id. */
export async function listBlueprints(engine: Engine): Promise<Blueprint[]> {
  const blueprints = await engine.store.listBlueprints();
  return blueprints.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * One page over several index partitions (one per status). The cursor names the status the
 * next page starts in and the store's cursor within it.
 */
async function walkStatuses<S extends string, T>(
  statuses: readonly S[],
  query: ListQuery<S>,
  fetch: (status: S, options: PageOptions) => Promise<Page<T>>,
): Promise<Page<T>> {
  const limit = query.limit ?? DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
    throw new ValidationError(
      `limit must be a whole number from 1 to ${MAX_PAGE_SIZE}, got ${limit}`,
    );
  }
  let index = 0;
  let inner: string | undefined;
  if (query.cursor !== undefined) {
    const position = decodeListCursor(query.cursor);
    index = statuses.indexOf(position.status as S);
    if (index < 0) {
      throw new ValidationError(
        'page cursor does not belong to this listing (were the filters changed?); list again without it',
      );
    }
    inner = position.cursor;
  }
  const items: T[] = [];
  for (
    let queries = 0;
    index < statuses.length && items.length < limit && queries < MAX_QUERIES_PER_PAGE;
    queries++
  ) {
    const page = await fetch(statuses[index] as S, {
      limit: limit - items.length,
      ...(query.order === 'newest' ? { newestFirst: true } : {}),
      ...(inner ? { cursor: inner } : {}),
    });
    items.push(...page.items);
    inner = page.cursor;
    if (!inner) index++;
  }
  if (index >= statuses.length) return { items };
  return { items, cursor: encodeListCursor({ status: statuses[index] as S, cursor: inner }) };
}

function encodeListCursor(position: { status: string; cursor?: string }): string {
  return Buffer.from(JSON.stringify(position)).toString('base64url');
}

function decodeListCursor(cursor: string): { status: string; cursor?: string } {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (
      typeof value === 'object' &&
      value !== null &&
      typeof (value as { status?: unknown }).status === 'string' &&
      ['string', 'undefined'].includes(typeof (value as { cursor?: unknown }).cursor)
    ) {
      return value as { status: string; cursor?: string };
    }
  } catch {
    // reported below
  }
  throw new ValidationError('invalid page cursor; list again without it');
}

export { runSweep } from './sweep.ts';

// ---- the setup workflow's steps -------------------------------------------------------------

/** What a setup step tells the workflow: done, broken, or come back in waitSeconds. */
export interface SetupStepOutcome {
  state: 'pending' | 'active' | 'broken';
  /** Seconds to wait before the next step (0 unless pending). */
  waitSeconds: number;
}

/**
 * One step of a resource's setup, for the setup workflow (DESIGN §6, Step Functions). A
 * resource that no longer exists counts as broken: there is nothing left to set up.
 */
export async function advanceSetup(engine: Engine, resourceId: string): Promise<SetupStepOutcome> {
  const r = await engine.store.getResource(resourceId);
  if (!r) return { state: 'broken', waitSeconds: 0 };
  const step = await advanceResourceSetup(engine, r);
  switch (step.state) {
    case 'pending':
      return { state: 'pending', waitSeconds: step.waitSeconds };
    case 'active':
      return { state: 'active', waitSeconds: 0 };
    case 'broken':
      return { state: 'broken', waitSeconds: 0 };
    case 'workflow':
      // advanceResourceSetup takes the step itself; it never hands setup to a workflow.
      return { state: 'pending', waitSeconds: 1 };
  }
}

/**
 * The setup workflow gave up (a step kept failing): break the resource with the reason, which
 * its leases pass on (not yet active ones are allocated again). Only a resource still being set
 * up is broken; one that became active before the workflow failed is left alone.
 */
export async function failSetup(
  engine: Engine,
  resourceId: string,
  reason: string,
): Promise<SetupStepOutcome> {
  const r = await engine.store.getResource(resourceId);
  if (r?.status !== 'pending') {
    return { state: r?.status === 'active' ? 'active' : 'broken', waitSeconds: 0 };
  }
  const blueprint = await engine.blueprint(r.blueprintId);
  if (blueprint) {
    await recordBlueprintFailure(engine, blueprint, `setup of ${r.id} failed: ${reason}`, r.id);
  }
  await breakResource(engine, r, reason, 'resource.activation-failed');
  return { state: 'broken', waitSeconds: 0 };
}

// ---- blueprints -----------------------------------------------------------------------------

const attributesSchema = z.record(
  z.string().regex(/^[a-zA-Z0-9_.-]{1,64}$/, 'attribute names are letters, digits, _ . -'),
  z.string().max(256),
);

export const blueprintInputSchema = z
  .object({
    id: z
      .string()
      .regex(
        /^[a-z0-9][a-z0-9-]{0,62}$/,
        'id: lowercase letters, digits and dashes, e.g. linux-pool',
      ),
    type: z.string().min(1),
    resourceType: z.string().min(1).default('host'),
    description: z.string().max(500).optional(),
    attributes: attributesSchema.default({}),
    state: z.enum(BLUEPRINT_STATES).default('enabled'),
    limits: z
      .object({
        maxResources: z.number().int().min(1).max(1000).default(5),
        leasesPerResource: z.number().int().min(1).max(100).default(1),
        reclaimOnRelease: z.boolean().default(false),
        idleTtlSeconds: z.number().int().min(0).default(600),
        idleGraceSeconds: z.number().int().min(0).default(30),
        maxAgeSeconds: z.number().int().min(1).optional(),
        maxUses: z.number().int().min(1).optional(),
        setupTimeoutSeconds: z.number().int().min(1).max(86400).default(900),
      })
      .strict()
      .default({
        maxResources: 5,
        leasesPerResource: 1,
        reclaimOnRelease: false,
        idleTtlSeconds: 600,
        idleGraceSeconds: 30,
        setupTimeoutSeconds: 900,
      }),
    config: z.unknown().default({}),
  })
  .strict();

export type BlueprintInput = z.input<typeof blueprintInputSchema>;

function parseBlueprint(engine: Engine, input: unknown): z.output<typeof blueprintInputSchema> {
  const parsed = blueprintInputSchema.safeParse(input);
  if (!parsed.success) {
    throw new ValidationError(
      `invalid blueprint: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
    );
  }
  const plugin = engine.registry.get(parsed.data.type);
  if (!plugin) {
    throw new ValidationError(
      `unknown blueprint type '${parsed.data.type}'; available: ${engine.registry.types().join(', ')}`,
    );
  }
  if (!plugin.resourceTypes.includes(parsed.data.resourceType)) {
    throw new ValidationError(
      `blueprint type '${parsed.data.type}' builds ${plugin.resourceTypes.join(', ')}, not '${parsed.data.resourceType}'`,
    );
  }
  const config = plugin.configSchema.safeParse(parsed.data.config ?? {});
  if (!config.success) {
    throw new ValidationError(
      `invalid ${parsed.data.type} config: ${config.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
    );
  }
  return parsed.data;
}

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
    const live = await engine.store.listLiveResources(updated.resourceType);
    await engine.send(
      ...live
        .filter((r) => r.blueprintId === id && r.status === 'active' && r.leaseCount === 0)
        .map((r) => ({ kind: 'resource' as const, id: r.id, reason: 'blueprint draining' })),
    );
  }
  return updated;
}

export async function getResource(engine: Engine, id: string): Promise<Resource> {
  const r = await engine.store.getResource(id);
  if (!r) throw new NotFoundError('resource', id);
  return r;
}

/**
 * An operator takes a resource out of service (admin). Idle (active, no leases): reclaimed like
 * an idle host. Otherwise broken with "released by <principal>", which its leases pass on to
 * their holders (not yet active ones go back to pending and are served elsewhere). Idempotent:
 * a resource that already ended is returned as it is.
 */
export async function releaseResource(
  engine: Engine,
  id: string,
  caller: Caller,
): Promise<Resource> {
  requireAdmin(caller, 'releasing a resource');
  const reason = `released by ${caller.principal}`;
  for (let attempt = 0; attempt < 5; attempt++) {
    const r = await getResource(engine, id);
    if (isResourceFinished(r.status)) return r;
    if (r.status === 'active' && r.leaseCount === 0) {
      // Conditional on still having no leases; a lease attaching meanwhile wins: look again.
      if (!(await reclaimResource(engine, r, reason))) continue;
    } else {
      await breakResource(engine, r, reason);
    }
    return getResource(engine, id);
  }
  throw new DrydockError('busy', `resource ${id} is changing too fast to release; try again`);
}

export async function getBlueprint(engine: Engine, id: string): Promise<Blueprint> {
  const b = await engine.store.getBlueprint(id);
  if (!b) throw new NotFoundError('blueprint', id);
  return b;
}

export { ForbiddenError };
