/**
 * The use cases the handlers and the CLI call. Each validates what only the domain can know
 * (ownership, state), does one thing, and returns domain objects or throws a typed error whose
 * message says what to do.
 */
import { z } from 'zod';
import type { CommandResult, CommandSpec } from './blueprint.ts';
import { type Engine, newId } from './engine.ts';
import {
  DrydockError,
  errorMessage,
  ForbiddenError,
  NotFoundError,
  ResourceGoneError,
  StateConflictError,
  ValidationError,
  WriteConflictError,
} from './errors.ts';
import { type UpdateResult, updateLease } from './lease-update.ts';
import {
  BLUEPRINT_STATES,
  type Blueprint,
  type Lease,
  type LogEvent,
  type Resource,
  type UpdateMessage,
} from './model.ts';
import { markSuspect, updateResource } from './resource-update.ts';

// ---- leases ---------------------------------------------------------------------------------

export interface LeaseRequest {
  type: string;
  attributes?: Record<string, string>;
  blueprintIds?: string[];
  ttlSeconds?: number;
  owner: string;
}

/** Create a pending lease and queue its first update. */
export async function requestLease(engine: Engine, request: LeaseRequest): Promise<Lease> {
  const { maxLeaseTtlSeconds, defaultLeaseTtlSeconds, strandAfterSeconds } = engine.settings;
  const ttlSeconds = request.ttlSeconds ?? defaultLeaseTtlSeconds;
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > maxLeaseTtlSeconds) {
    throw new ValidationError(
      `ttlSeconds must be a whole number from 1 to ${maxLeaseTtlSeconds}, got ${request.ttlSeconds}`,
    );
  }
  if (!request.type) throw new ValidationError('type is required, e.g. "host"');
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
  await engine.store.transact([
    { op: 'createLease', lease },
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
  await engine.send({ kind: 'lease', id: lease.id, reason: 'requested' });
  return lease;
}

function describe(attributes: Record<string, string>): string {
  const entries = Object.entries(attributes);
  return entries.length ? ` (${entries.map(([k, v]) => `${k}=${v}`).join(', ')})` : '';
}

export interface Caller {
  principal: string;
  admin?: boolean;
}

export async function getLease(engine: Engine, id: string, caller?: Caller): Promise<Lease> {
  const lease = await engine.store.getLease(id);
  if (!lease) throw new NotFoundError('lease', id);
  if (caller && !caller.admin && lease.owner !== caller.principal) {
    // Same answer as a missing lease: do not reveal other principals' lease ids.
    throw new NotFoundError('lease', id);
  }
  return lease;
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
    return { ...lease, status: 'released', version: lease.version + 1, releasedAt: at };
  }
  throw new DrydockError('busy', `lease ${id} is changing too fast to release; try again`);
}

/**
 * Run a command through the lease's command interface. A failure of the resource itself (not a
 * non-zero exit) marks it suspect; a vanished host breaks it and, through it, the lease — with
 * the reason the caller is told here.
 */
export async function runCommand(
  engine: Engine,
  leaseId: string,
  spec: CommandSpec,
  caller: Caller,
  options: { signal?: AbortSignal } = {},
): Promise<CommandResult> {
  if ((spec.argv?.length ? 1 : 0) + (spec.script ? 1 : 0) !== 1) {
    throw new ValidationError('give exactly one of argv (a non-empty list) or script');
  }
  const lease = await getLease(engine, leaseId, caller);
  if (lease.status !== 'active') {
    throw new StateConflictError(
      `lease ${leaseId} is ${lease.status}, not active${lease.endReason ? ` (${lease.endReason})` : ''}; commands run only on active leases`,
      { status: lease.status },
    );
  }
  const resource = await engine.store.getResource(lease.resourceId ?? '');
  if (resource?.status !== 'active') {
    throw new StateConflictError(
      `the resource behind lease ${leaseId} is ${resource?.status ?? 'gone'}${resource?.endReason ? ` (${resource.endReason})` : ''}`,
    );
  }
  const blueprint = await engine.blueprint(resource.blueprintId);
  if (!blueprint) throw new NotFoundError('blueprint', resource.blueprintId);
  const { plugin, bp } = engine.configured(blueprint);
  if (!plugin.command) {
    throw new ValidationError(`blueprint type '${blueprint.type}' offers no command interface`);
  }
  const timeoutSeconds = spec.timeoutSeconds ?? engine.settings.commandTimeoutSeconds;
  const shown = spec.argv ? spec.argv.join(' ') : (spec.script ?? '');
  let result: CommandResult;
  try {
    result = await plugin
      .command(engine.ctx, bp, resource, lease)
      .run({ ...spec, timeoutSeconds }, options);
  } catch (err) {
    await markSuspect(engine, resource, `command failed on it: ${errorMessage(err)}`);
    await engine.store.transact([
      engine.logWrite(
        leaseId,
        'lease.command',
        `command \`${shown}\` could not run: ${errorMessage(err)}`,
      ),
    ]);
    if (err instanceof ResourceGoneError) {
      throw new StateConflictError(
        `${errorMessage(err)}; ${resource.id} is being health-checked and the lease will break if it is gone`,
      );
    }
    throw err;
  }
  await engine.store.transact([
    engine.logWrite(
      leaseId,
      'lease.command',
      result.timedOut
        ? `command \`${shown}\` timed out after ${timeoutSeconds}s and was killed`
        : `command \`${shown}\` exited ${result.exitCode} in ${result.durationMs}ms`,
      { exitCode: result.exitCode, timedOut: result.timedOut, durationMs: result.durationMs },
    ),
  ]);
  return result;
}

export async function readLogs(
  engine: Engine,
  objectId: string,
  options: { after?: string; limit?: number } = {},
): Promise<LogEvent[]> {
  return engine.store.listLogs(objectId, options);
}

// ---- queue and sweep ------------------------------------------------------------------------

/** Process one queued update message. */
export async function processUpdate(engine: Engine, msg: UpdateMessage): Promise<UpdateResult> {
  return msg.kind === 'lease' ? updateLease(engine, msg) : updateResource(engine, msg);
}

export { runSweep } from './sweep.ts';

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

export async function getBlueprint(engine: Engine, id: string): Promise<Blueprint> {
  const b = await engine.store.getBlueprint(id);
  if (!b) throw new NotFoundError('blueprint', id);
  return b;
}

export { ForbiddenError };
