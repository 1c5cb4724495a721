/**
 * `synthetic`: hosts that exist only as data. The tool for reproducing every race and failure
 * case: scripted allocation/activation/lease-activation failures, slow boots, hosts that vanish,
 * scripted command results and timeouts.
 *
 * Every piece of state lives in ctx.records (append-only, shared by every worker process), never
 * in memory, so a test with many concurrent workers sees one consistent world:
 *
 *   synthetic:<blueprintId>:hosts                the "bill": created / destroyed / vanished events
 *   synthetic:<blueprintId>:allocations          allocateResource calls while failTimes is active
 *   synthetic:<blueprintId>:activation-failures  resources chosen to fail activation
 *   synthetic:<blueprintId>:lease-activations    activateLease calls while failTimes is active
 *   synthetic:<blueprintId>:commands:<hostId>    commands run on a host (vanish.afterCommands)
 *   synthetic:<blueprintId>:files:<hostId>       files written to a host (last write wins)
 *
 * Order: every record carries `writtenAt`, the real time of the write (sub-millisecond,
 * increasing within a process), and is read back in that order. The store lists by its own key
 * (`<clock ms>#<random>`), so same-millisecond appends — every append under a frozen test clock
 * — would otherwise come back shuffled. `at` is the blueprint context's (injectable) clock.
 *
 * Counting "the first N calls" across processes: a call appends a ticket, lists the scope and
 * takes its ticket's position in write order as its number. Sequential calls are numbered
 * exactly; racing calls get distinct numbers unless a ticket written earlier becomes visible
 * only after a later one was listed (records have no conditional write to rule that out), so
 * under a true race "the first N" may be N plus a few. A caller whose ticket is not visible yet
 * counts itself last.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type {
  ActivationStep,
  BlueprintContext,
  BlueprintType,
  CommandInterface,
  CommandResult,
  ConfiguredBlueprint,
  FilesystemInterface,
  HealthResult,
} from '../../core/blueprint.ts';
import {
  DrydockError,
  NotFoundError,
  ResourceGoneError,
  TemporaryError,
} from '../../core/errors.ts';
import type { Lease, Resource } from '../../core/model.ts';
import { isoAt } from '../../core/ports.ts';
import { parseCommandSpec, relativePathInside, waitUnlessAborted } from '../shared.ts';

// ---- config ------------------------------------------------------------------------------

const failTimes = z.number().int().min(0).default(0);

const regex = z.string().superRefine((pattern, ctx) => {
  try {
    new RegExp(pattern);
  } catch (err) {
    ctx.addIssue({
      code: 'custom',
      message: `'${pattern}' is not a valid regular expression: ${(err as Error).message}`,
    });
  }
});

const commandRuleSchema = z
  .object({
    /** Regex tested against the argv joined by spaces, or the script. First match wins. */
    match: regex,
    /** @default 0 */
    exitCode: z.number().int().min(0).max(255).default(0),
    /** @default '' */
    stdout: z.string().default(''),
    /** @default '' */
    stderr: z.string().default(''),
    /** How long the command "runs"; past the spec's timeout it times out. @default 0 */
    delayMs: z.number().min(0).default(0),
  })
  .strict();

export const syntheticConfigSchema = z
  .object({
    /** allocateResource throws TemporaryError for the first `failTimes` calls of the blueprint. */
    allocation: z
      .object({ failTimes, failMessage: z.string().min(1).default('synthetic allocation failure') })
      .strict()
      .prefault({}),
    activation: z
      .object({
        /** Seconds from host creation until activateResource reports active. @default 0 */
        delaySeconds: z.number().min(0).default(0),
        /** The first `failTimes` resources of the blueprint fail activation (every attempt). */
        failTimes,
        failMessage: z.string().min(1).default('synthetic activation failure'),
      })
      .strict()
      .prefault({}),
    /** activateLease throws for the first `failTimes` calls of the blueprint. */
    leaseActivation: z
      .object({
        failTimes,
        failMessage: z.string().min(1).default('synthetic lease activation failure'),
      })
      .strict()
      .prefault({}),
    /** A host disappears after this many commands, or this many seconds after creation. */
    vanish: z
      .object({
        afterCommands: z.number().int().positive().optional(),
        afterSeconds: z.number().positive().optional(),
      })
      .strict()
      .prefault({}),
    /** Scripted command results; unmatched commands behave like `echo`. @default [] */
    commands: z.array(commandRuleSchema).default([]),
  })
  .strict();

export type SyntheticConfig = z.output<typeof syntheticConfigSchema>;
type Synthetic = ConfiguredBlueprint<SyntheticConfig>;

/** A scripted failure (not temporary): breaks what it happens to. */
export class SyntheticFailure extends DrydockError {
  constructor(message: string, context: Record<string, unknown> = {}) {
    super('synthetic_failure', message, { context });
    this.name = 'SyntheticFailure';
  }
}

// ---- records -----------------------------------------------------------------------------

export const syntheticScopes = {
  hosts: (blueprintId: string) => `synthetic:${blueprintId}:hosts`,
  allocations: (blueprintId: string) => `synthetic:${blueprintId}:allocations`,
  activationFailures: (blueprintId: string) => `synthetic:${blueprintId}:activation-failures`,
  leaseActivations: (blueprintId: string) => `synthetic:${blueprintId}:lease-activations`,
  commands: (blueprintId: string, hostId: string) => `synthetic:${blueprintId}:commands:${hostId}`,
  files: (blueprintId: string, hostId: string) => `synthetic:${blueprintId}:files:${hostId}`,
};

export type HostEventKind = 'created' | 'destroyed' | 'vanished';

export interface HostEvent {
  event: HostEventKind;
  hostId: string;
  resourceId: string;
  /** ISO-8601 with milliseconds, from the blueprint context's clock. */
  at: string;
  reason?: string;
}

export interface HostTimeline {
  /** The most hosts alive at any one time. */
  maxAlive: number;
  /** Hosts alive after the last event. */
  alive: string[];
  /** The bill's events in time order. */
  events: HostEvent[];
}

const HOST_EVENTS: readonly string[] = ['created', 'destroyed', 'vanished'];

/** Real time of a write: the injected clock may stand still, this never does within a process. */
function writeStamp(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * Records of a synthetic scope in the order they were written (records without a stamp keep
 * their list order). Use it to read any synthetic scope; list order is the store's, not time's.
 */
export function inWriteOrder<T extends Record<string, unknown>>(records: ReadonlyArray<T>): T[] {
  const stamp = (r: T) => (typeof r.writtenAt === 'number' ? r.writtenAt : 0);
  return records
    .map((record, index) => ({ record, index }))
    .sort((a, b) => stamp(a.record) - stamp(b.record) || a.index - b.index)
    .map(({ record }) => record);
}

/** Append a record stamped with the context clock (`at`) and the real write time. */
async function appendRecord(
  ctx: BlueprintContext,
  scope: string,
  fields: Record<string, unknown>,
): Promise<void> {
  await ctx.records.append(scope, { at: isoAt(ctx.clock), ...fields, writtenAt: writeStamp() });
}

async function listInWriteOrder(ctx: BlueprintContext, scope: string) {
  return inWriteOrder(await ctx.records.list(scope));
}

function toHostEvents(records: ReadonlyArray<Record<string, unknown>>): HostEvent[] {
  const events: HostEvent[] = [];
  for (const r of inWriteOrder(records)) {
    if (
      typeof r.event === 'string' &&
      HOST_EVENTS.includes(r.event) &&
      typeof r.hostId === 'string' &&
      typeof r.resourceId === 'string' &&
      typeof r.at === 'string'
    ) {
      const event: HostEvent = {
        event: r.event as HostEventKind,
        hostId: r.hostId,
        resourceId: r.resourceId,
        at: r.at,
      };
      if (typeof r.reason === 'string') event.reason = r.reason;
      events.push(event);
    }
  }
  return events;
}

/**
 * Replay the host bill (`synthetic:<blueprintId>:hosts`) in time order. Events at the same
 * millisecond (a frozen test clock, or two workers at once) are ordered destroyed/vanished
 * before created — a host torn down and another launched "at once" never count as two alive,
 * which is how a limit is meant (the slot is freed first) — except that a host's own end never
 * precedes its creation: a host created and ended within the same millisecond ends right after
 * it was created. Within a millisecond, creations keep the order they were written in.
 */
export function hostTimeline(records: ReadonlyArray<Record<string, unknown>>): HostTimeline {
  const sorted = toHostEvents(records)
    .map((event, index) => ({ event, index, ms: Date.parse(event.at) }))
    .sort((a, b) => a.ms - b.ms || a.index - b.index);

  const alive = new Set<string>();
  const events: HostEvent[] = [];
  let maxAlive = 0;
  const apply = (e: HostEvent) => {
    if (e.event === 'created') alive.add(e.hostId);
    else alive.delete(e.hostId);
    maxAlive = Math.max(maxAlive, alive.size);
    events.push(e);
  };

  for (let start = 0; start < sorted.length; ) {
    let end = start;
    while (end < sorted.length && sorted[end]?.ms === sorted[start]?.ms) end++;
    const tie = sorted.slice(start, end).map(({ event }) => event);
    start = end;
    const ends = tie.filter((e) => e.event !== 'created');
    const done = new Set<HostEvent>();
    // 1. Hosts alive before this instant end first.
    for (const e of ends) {
      if (alive.has(e.hostId)) {
        apply(e);
        done.add(e);
      }
    }
    // 2. Creations in record order, each followed at once by its own end at this instant.
    for (const created of tie) {
      if (created.event !== 'created') continue;
      apply(created);
      for (const e of ends) {
        if (!done.has(e) && e.hostId === created.hostId) {
          apply(e);
          done.add(e);
        }
      }
    }
    // 3. Ends of hosts that were not alive (a second destroy, a vanish after destroy).
    for (const e of ends) if (!done.has(e)) apply(e);
  }
  return { maxAlive, alive: [...alive], events };
}

interface Host {
  hostId: string;
  resourceId: string;
  createdAtMs: number;
  destroyed: boolean;
  /** Why the host vanished, if it did (from the bill). */
  vanished?: string;
}

async function findHost(
  ctx: BlueprintContext,
  blueprint: Synthetic,
  resourceId: string,
): Promise<Host | undefined> {
  const events = toHostEvents(await ctx.records.list(syntheticScopes.hosts(blueprint.id)));
  // The first `created` is canonical: a duplicate activation re-appends the same host id.
  const created = events
    .filter((e) => e.event === 'created' && e.resourceId === resourceId)
    .sort((a, b) => Date.parse(a.at) - Date.parse(b.at))[0];
  if (!created) return undefined;
  const host: Host = {
    hostId: created.hostId,
    resourceId,
    createdAtMs: Date.parse(created.at),
    destroyed: false,
  };
  for (const e of events) {
    if (e.hostId !== host.hostId) continue;
    if (e.event === 'destroyed') host.destroyed = true;
    if (e.event === 'vanished' && host.vanished === undefined) {
      host.vanished = e.reason ?? `host ${host.hostId} vanished`;
    }
  }
  return host;
}

async function appendHostEvent(
  ctx: BlueprintContext,
  blueprint: Synthetic,
  event: HostEvent,
): Promise<void> {
  await appendRecord(ctx, syntheticScopes.hosts(blueprint.id), { ...event });
}

async function recordVanish(
  ctx: BlueprintContext,
  blueprint: Synthetic,
  host: Host,
  reason: string,
  atMs: number,
): Promise<void> {
  if (host.vanished !== undefined) return;
  host.vanished = reason;
  await appendHostEvent(ctx, blueprint, {
    event: 'vanished',
    hostId: host.hostId,
    resourceId: host.resourceId,
    at: new Date(atMs).toISOString(),
    reason,
  });
}

/**
 * Why the host is gone, or undefined if it is alive. A host past `vanish.afterSeconds` is
 * noticed here and the vanish recorded (at the moment it happened) so the bill shows it.
 */
async function whyGone(
  ctx: BlueprintContext,
  blueprint: Synthetic,
  host: Host,
): Promise<string | undefined> {
  if (host.destroyed) return `host ${host.hostId} was destroyed`;
  if (host.vanished !== undefined) return host.vanished;
  const { afterSeconds } = blueprint.config.vanish;
  if (afterSeconds !== undefined) {
    const vanishAtMs = host.createdAtMs + afterSeconds * 1000;
    if (ctx.clock.now() >= vanishAtMs) {
      const reason = `host ${host.hostId} vanished ${afterSeconds}s after it was created`;
      await recordVanish(ctx, blueprint, host, reason, vanishAtMs);
      return reason;
    }
  }
  return undefined;
}

async function requireLiveHost(
  ctx: BlueprintContext,
  blueprint: Synthetic,
  resource: Resource,
): Promise<Host> {
  const host = await findHost(ctx, blueprint, resource.id);
  if (!host) {
    throw new ResourceGoneError(`resource ${resource.id} has no synthetic host`, {
      context: { resourceId: resource.id },
    });
  }
  const gone = await whyGone(ctx, blueprint, host);
  if (gone !== undefined) {
    throw new ResourceGoneError(gone, {
      context: { resourceId: resource.id, hostId: host.hostId },
    });
  }
  return host;
}

/** Append a ticket to `scope`; return its 1-based position among the tickets, in write order. */
async function takeTicket(
  ctx: BlueprintContext,
  scope: string,
  fields: Record<string, unknown>,
): Promise<number> {
  const ticket = randomUUID();
  await appendRecord(ctx, scope, { ...fields, ticket });
  const all = await listInWriteOrder(ctx, scope);
  const position = all.findIndex((r) => r.ticket === ticket);
  return position < 0 ? all.length + 1 : position + 1;
}

/**
 * Which of the first `limit` calls this is, or undefined once the failing phase is over (then
 * nothing is written: a healthy blueprint costs one read per call).
 */
async function callNumberWhileFailing(
  ctx: BlueprintContext,
  scope: string,
  limit: number,
  fields: Record<string, unknown>,
): Promise<number | undefined> {
  if (limit <= 0) return undefined;
  if ((await ctx.records.list(scope)).length >= limit) return undefined;
  const n = await takeTicket(ctx, scope, fields);
  return n <= limit ? n : undefined;
}

/** 1-based position of `resourceId` among the distinct resources in the scope, by first record. */
function resourceRank(
  records: ReadonlyArray<Record<string, unknown>>,
  resourceId: string,
): { rank: number | undefined; distinct: number } {
  const seen: unknown[] = [];
  for (const r of records) if (!seen.includes(r.resourceId)) seen.push(r.resourceId);
  const i = seen.indexOf(resourceId);
  return { rank: i < 0 ? undefined : i + 1, distinct: seen.length };
}

/**
 * Whether this resource is one of the first `failTimes` resources chosen to fail activation.
 * Decided once per resource and kept: a retried activation fails again, deterministically.
 */
async function activationFails(
  ctx: BlueprintContext,
  blueprint: Synthetic,
  resource: Resource,
): Promise<boolean> {
  const { failTimes: limit } = blueprint.config.activation;
  if (limit <= 0) return false;
  const scope = syntheticScopes.activationFailures(blueprint.id);
  let { rank, distinct } = resourceRank(await listInWriteOrder(ctx, scope), resource.id);
  if (rank === undefined) {
    if (distinct >= limit) return false;
    await appendRecord(ctx, scope, { resourceId: resource.id });
    ({ rank } = resourceRank(await listInWriteOrder(ctx, scope), resource.id));
  }
  return rank !== undefined && rank <= limit;
}

// ---- interfaces --------------------------------------------------------------------------

function echoOutput(text: string): string {
  return `${text.replace(/^echo(?:\s+|$)/, '')}\n`;
}

function syntheticCommand(
  ctx: BlueprintContext,
  blueprint: Synthetic,
  resource: Resource,
  lease: Lease,
): CommandInterface {
  return {
    async run(spec, options = {}): Promise<CommandResult> {
      const command = parseCommandSpec(spec);
      const host = await requireLiveHost(ctx, blueprint, resource);
      const started = performance.now();
      const { afterCommands } = blueprint.config.vanish;
      const n = await takeTicket(ctx, syntheticScopes.commands(blueprint.id, host.hostId), {
        leaseId: lease.id,
        command: command.text,
      });
      if (afterCommands !== undefined && n > afterCommands) {
        // Only reachable when commands race past the limit; the Nth command recorded the vanish.
        const reason = `host ${host.hostId} vanished after ${afterCommands} commands`;
        await recordVanish(ctx, blueprint, host, reason, ctx.clock.now());
        throw new ResourceGoneError(reason, {
          context: { hostId: host.hostId, leaseId: lease.id },
        });
      }

      const rule = blueprint.config.commands.find((r) => new RegExp(r.match).test(command.text));
      const delayMs = rule?.delayMs ?? 0;
      const waitMs = Math.min(delayMs, command.timeoutMs);
      const finished =
        (waitMs > 0 ? await waitUnlessAborted(waitMs, options.signal) : !options.signal?.aborted) &&
        delayMs <= command.timeoutMs;
      const result: CommandResult = finished
        ? {
            exitCode: rule?.exitCode ?? 0,
            stdout: rule ? rule.stdout : echoOutput(command.text),
            stderr: rule?.stderr ?? '',
            timedOut: false,
            durationMs: Math.round(performance.now() - started),
          }
        : {
            exitCode: null,
            stdout: '',
            stderr: '',
            timedOut: true,
            durationMs: Math.round(performance.now() - started),
          };

      if (afterCommands !== undefined && n === afterCommands) {
        await recordVanish(
          ctx,
          blueprint,
          host,
          `host ${host.hostId} vanished after ${afterCommands} commands`,
          ctx.clock.now(),
        );
      }
      return result;
    },
  };
}

function syntheticFilesystem(
  ctx: BlueprintContext,
  blueprint: Synthetic,
  resource: Resource,
  lease: Lease,
): FilesystemInterface {
  return {
    async put(path, content) {
      const rel = relativePathInside(path, 'path');
      const host = await requireLiveHost(ctx, blueprint, resource);
      const bytes =
        typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.from(content);
      await appendRecord(ctx, syntheticScopes.files(blueprint.id, host.hostId), {
        path: rel,
        content: bytes.toString('base64'),
        leaseId: lease.id,
      });
    },
    async get(path) {
      const rel = relativePathInside(path, 'path');
      const host = await requireLiveHost(ctx, blueprint, resource);
      const records = await listInWriteOrder(ctx, syntheticScopes.files(blueprint.id, host.hostId));
      const last = records.findLast((r) => r.path === rel && typeof r.content === 'string');
      if (!last) throw new NotFoundError('file', `${host.hostId}:${rel}`);
      return new Uint8Array(Buffer.from(last.content as string, 'base64'));
    },
  };
}

// ---- the plug-in -------------------------------------------------------------------------

export const syntheticBlueprint: BlueprintType<SyntheticConfig> = {
  type: 'synthetic',
  description:
    'Hosts that exist only as records: scripted delays, failures, vanishing, command results.',
  resourceTypes: ['host'],
  configSchema: syntheticConfigSchema,

  activatesLater: (blueprint) => blueprint.config.activation.delaySeconds > 0,

  // Lease activation only has work when failures are scripted; otherwise the allocator
  // acquires and activates in one transaction.
  needsLeaseActivation: (blueprint) => blueprint.config.leaseActivation.failTimes > 0,

  async allocateResource(ctx, blueprint, lease) {
    const { failTimes: limit, failMessage } = blueprint.config.allocation;
    const n = await callNumberWhileFailing(ctx, syntheticScopes.allocations(blueprint.id), limit, {
      leaseId: lease.id,
    });
    if (n !== undefined) {
      throw new TemporaryError(`${failMessage} (allocation ${n} of ${limit} scripted to fail)`, {
        context: { blueprintId: blueprint.id, leaseId: lease.id },
      });
    }
    // Nothing is created here: the host appears in activateResource, after the allocation
    // transaction has committed, so a failed transaction leaves no host behind.
    return {};
  },

  async activateResource(ctx, blueprint, resource): Promise<ActivationStep> {
    let host = await findHost(ctx, blueprint, resource.id);
    if (!host) {
      // Fail before creating anything: a failed activation never leaves a live host.
      if (await activationFails(ctx, blueprint, resource)) {
        throw new SyntheticFailure(blueprint.config.activation.failMessage, {
          blueprintId: blueprint.id,
          resourceId: resource.id,
        });
      }
      // The host id is derived from the resource id (like an EC2 ClientToken), so two racing
      // activations of one resource describe the same host, never two.
      await appendHostEvent(ctx, blueprint, {
        event: 'created',
        hostId: `synthetic-${resource.id}`,
        resourceId: resource.id,
        at: isoAt(ctx.clock),
      });
      host = await findHost(ctx, blueprint, resource.id);
      if (!host) {
        throw new TemporaryError(`host record for resource ${resource.id} is not visible yet`);
      }
    }
    const gone = await whyGone(ctx, blueprint, host);
    if (gone !== undefined) {
      throw new ResourceGoneError(gone, {
        context: { resourceId: resource.id, hostId: host.hostId },
      });
    }
    const readyAtMs = host.createdAtMs + blueprint.config.activation.delaySeconds * 1000;
    const remainingMs = readyAtMs - ctx.clock.now();
    if (remainingMs > 0) {
      const checkAgainSeconds = Math.max(1, Math.ceil(remainingMs / 1000));
      return {
        state: 'pending',
        checkAgainSeconds,
        message: `host ${host.hostId} is booting; ready in about ${checkAgainSeconds}s`,
        data: { hostId: host.hostId },
      };
    }
    return { state: 'active', data: { hostId: host.hostId } };
  },

  async activateLease(ctx, blueprint, resource, lease) {
    await requireLiveHost(ctx, blueprint, resource);
    const { failTimes: limit, failMessage } = blueprint.config.leaseActivation;
    const n = await callNumberWhileFailing(
      ctx,
      syntheticScopes.leaseActivations(blueprint.id),
      limit,
      { leaseId: lease.id, resourceId: resource.id },
    );
    if (n !== undefined) {
      throw new SyntheticFailure(
        `${failMessage} (lease activation ${n} of ${limit} scripted to fail)`,
        {
          blueprintId: blueprint.id,
          resourceId: resource.id,
          leaseId: lease.id,
        },
      );
    }
  },

  async releaseLease() {},

  async destroyResource(ctx, blueprint, resource) {
    const host = await findHost(ctx, blueprint, resource.id);
    if (!host || host.destroyed) return;
    await appendHostEvent(ctx, blueprint, {
      event: 'destroyed',
      hostId: host.hostId,
      resourceId: resource.id,
      at: isoAt(ctx.clock),
    });
  },

  async healthCheck(ctx, blueprint, resource): Promise<HealthResult> {
    const host = await findHost(ctx, blueprint, resource.id);
    if (!host) return { healthy: false, reason: `resource ${resource.id} has no synthetic host` };
    const gone = await whyGone(ctx, blueprint, host);
    return gone === undefined ? { healthy: true } : { healthy: false, reason: gone };
  },

  command: syntheticCommand,
  filesystem: syntheticFilesystem,
};
