/**
 * The blueprint contract (DESIGN §7). Every blueprint type is a plug-in implementing
 * `BlueprintType`; the allocator only ever talks to this interface. One contract suite
 * (test/blueprints/contract.test.ts) runs over every registered type.
 *
 * Side effects and the lock timeline: the allocator takes slot locks and writes the pending
 * resource *before* any cloud side effect happens (allocateResource must not create anything
 * that would be orphaned if the transaction fails). The side effect — launching a host,
 * creating a directory — happens in activateResource, which is idempotent by resource id, so a
 * crash and redelivery finds and reuses what the first attempt created.
 */
import type { z } from 'zod';
import type { Attributes, Blueprint, Lease, LeaseStatus, Resource } from './model.ts';

export type { CommandResult, CommandSpec } from './model.ts';

import type { Clock } from './ports.ts';

/**
 * Cloud SDK clients for plug-ins, created once per process by the composition root. Empty in
 * the core (which imports no AWS SDK); `lambdas/blueprints/cloud-clients.ts` adds the typed
 * members by declaration merging, so plug-ins get typed clients and tests pass fakes.
 */
// biome-ignore lint/suspicious/noEmptyInterface: filled by declaration merging in lambdas/blueprints/cloud-clients.ts.
export interface CloudClients {}

/** A lease a resource holds for itself (a working copy's host), as its plug-in sees it. */
export interface ChildLease {
  id: string;
  status: LeaseStatus;
  resourceId?: string;
  /** Why it ended (broken, expired), for the parent's own log and reason. */
  endReason?: string;
}

/** What a resource asks for when it needs a lease of its own. */
export interface ChildLeaseRequest {
  /**
   * Names the child within its parent: the same key always means the same lease, so a retried
   * activation finds the lease it requested before instead of requesting another.
   */
  key: string;
  type: string;
  attributes?: Attributes;
  blueprintIds?: string[];
  /** @default the largest lease TTL: the child lives as long as its parent needs it */
  ttlSeconds?: number;
}

/**
 * Leases held by resources. The parent resource is woken (an "update resource" message) whenever
 * a child lease becomes active or ends, so activation returns `pending` and never sleeps.
 */
export interface LeasePort {
  /** Request the child lease (idempotent by `key`); returns its current state. */
  request(parent: Resource, request: ChildLeaseRequest): Promise<ChildLease>;
  get(leaseId: string): Promise<ChildLease | undefined>;
  /** Give it back (a no-op if it already ended); its log says the parent released it. */
  release(leaseId: string): Promise<void>;
}

/** What a plug-in may use. Kept small so plug-ins stay testable without the whole system. */
export interface BlueprintContext {
  clock: Clock;
  /** Append-only records kept by the plug-in (e.g. the synthetic blueprint's host bill). */
  records: {
    append(scope: string, record: Record<string, unknown>): Promise<void>;
    list(scope: string): Promise<Array<Record<string, unknown>>>;
  };
  /** Where local plug-ins may create files (local-host roots live below it). */
  dataDir: string;
  /** Cloud SDK clients (EC2, SSM, CloudWatch Logs), created once per process. */
  clients: CloudClients;
  /** Leases of the resource being activated (a working copy's host lease). */
  leases: LeasePort;
  /**
   * Which of these slot lock keys are held right now (a read, no lock taken): how a plug-in
   * whose resources hold extra locks (`binding:<instance>` of a static host) picks a free one.
   * Only a hint: the allocation transaction takes the locks and fails if one was taken meanwhile.
   */
  slotLocks: { held(keys: string[]): Promise<string[]> };
  /**
   * The command interface of an active lease a resource holds (e.g. to run `git` on its host
   * lease). Throws StateConflictError if the lease is not active.
   */
  commandsOn(leaseId: string): Promise<CommandInterface>;
}

/** A blueprint whose config has been validated by its plug-in's schema. */
export type ConfiguredBlueprint<C> = Omit<Blueprint, 'config'> & { config: C };

/** What allocateResource decides about the new resource, before it is written. */
export interface ResourceTemplate {
  /** Attributes beyond the blueprint's own (they are merged over them). */
  attributes?: Attributes;
  /** Blueprint-private state to store on the resource. */
  data?: Record<string, unknown>;
  /**
   * Extra slot locks the resource must hold besides the pool slot (e.g. `binding:i-0abc`
   * for a static host). Taken in the allocation transaction; freed on destroy.
   */
  slotLocks?: string[];
}

export type ActivationStep =
  /** The resource is ready; leases on it may activate. */
  | { state: 'active'; data?: Record<string, unknown> }
  /** Setup is under way; call activateResource again after this many seconds. */
  | {
      state: 'pending';
      checkAgainSeconds: number;
      message: string;
      data?: Record<string, unknown>;
      /**
       * Extra slot locks the resource takes now, for what activation learnt (ec2-host: the
       * `binding:<instanceId>` of the instance it just launched, unknown at allocation). Taken
       * in the same conditional transaction that records `data`, so the id is never recorded
       * without its lock; a lock another owner holds fails the step (the resource breaks with
       * that reason). Added to `resource.slotLocks`, so they are freed on destroy like the
       * template's. Keys the resource already holds are ignored.
       */
      slotLocks?: string[];
      /**
       * Attributes the resource turned out to have (ec2-host: `capacity` is `on-demand` after a
       * spot-then-on-demand fallback), merged over its attributes in the same write.
       */
      attributes?: Attributes;
    };

/** What one inventory reconciliation found (see BlueprintType.reconcileInventory). */
export interface InventoryReport {
  /** Kept by the sweep and passed to the next call (e.g. a listing cursor). */
  nextState: Record<string, unknown>;
  /** Live resources whose host vanished: the sweep marks them suspect (their health check decides). */
  suspects: Array<{ resourceId: string; reason: string }>;
  /** Hosts bound to no resource that the plug-in terminated (orphans), for the sweep's report. */
  terminated: string[];
  /** Unbound hosts seen for the first time (terminated on a later sighting if still unbound). */
  sighted: string[];
}

/**
 * A command as a plug-in receives it: checked once by the engine (parseCommandSpec), with its
 * timeout resolved. `text` is what people (and the synthetic blueprint's scripted matches) see.
 */
export type ParsedCommand = (
  | { kind: 'argv'; argv: [string, ...string[]] }
  | { kind: 'script'; script: string }
) & {
  text: string;
  timeoutSeconds: number;
  cwd?: string;
  env?: Record<string, string>;
};

/** A plug-in's handle of a started command: plain JSON, persisted on the command record. */
export type CommandHandle = Record<string, unknown>;

/** Bytes of each stream the engine has already recorded; a poll returns what follows. */
export interface OutputOffsets {
  stdout: number;
  stderr: number;
}

/**
 * What a poll saw. `stdout`/`stderr` are the output since the offsets asked for, as whole UTF-8
 * characters (never half of one), so the engine's byte offsets stay exact.
 */
export type CommandProgress =
  | { state: 'running'; stdout: string; stderr: string }
  | {
      state: 'finished';
      stdout: string;
      stderr: string;
      /** null when it was killed by a signal (a timeout, a cancel). */
      exitCode: number | null;
      /** The plug-in killed it at its timeout. */
      timedOut: boolean;
      /** It was stopped by cancel(). */
      cancelled?: boolean;
      /** The plug-in itself dropped output past its own cap. */
      truncated?: boolean;
      durationMs: number;
    };

/**
 * The command interface of a lease (DESIGN §2): asynchronous, because a command may run for an
 * hour and no worker waits on a host. The engine starts a command, records the handle, and polls
 * it with delayed "command C" messages; any worker can poll after a crash or a redeploy.
 *
 *  - `start` must be idempotent by `commandId`: a worker that crashed after starting but before
 *    recording the handle calls it again, and the command must not run twice.
 *  - `poll` never blocks for longer than a quick look (it reads what is there and returns).
 *  - `cancel` stops the command (its whole process tree); polling afterwards reports it
 *    finished with `cancelled: true`. Cancelling a finished command does nothing.
 *  - The plug-in should enforce `timeoutSeconds` itself; the engine enforces it regardless
 *    (cancel, then record it as timed out) if the plug-in never reports.
 *  - A vanished host: throw ResourceGoneError.
 */
export interface CommandInterface {
  start(commandId: string, command: ParsedCommand): Promise<CommandHandle>;
  poll(handle: CommandHandle, from: OutputOffsets): Promise<CommandProgress>;
  cancel(handle: CommandHandle): Promise<void>;
}

export interface FilesystemInterface {
  /** Write a file (creating directories); the path is relative and may not escape the root. */
  put(path: string, content: Uint8Array | string): Promise<void>;
  get(path: string): Promise<Uint8Array>;
}

export type HealthResult = { healthy: true } | { healthy: false; reason: string };

/**
 * A health check that runs commands on a host cannot answer at once (no worker waits on a
 * host): it starts them and asks to be called again. The engine re-enqueues the resource's
 * update after `checkAgainSeconds`; the next call continues where this one left off (commands
 * started with deterministic ids are found again, not started twice).
 */
export interface HealthPending {
  state: 'pending';
  checkAgainSeconds: number;
  message: string;
}

/**
 * One step of a lease's activation or cleanup (see lease-steps.ts for the engine's timeline).
 * `void` or `{ state: 'done' }` ends the step chain; `pending` asks the engine to record `data`
 * on the lease (lease-private, handed back as `lease.data` on the next call) and call again.
 * `log` lines are appended to the lease's log (e.g. each finished git call with its duration).
 */
export type LeaseStep =
  | { state: 'done'; data?: Record<string, unknown>; log?: string[] }
  | {
      state: 'pending';
      checkAgainSeconds: number;
      message: string;
      data?: Record<string, unknown>;
      log?: string[];
    };

export interface BlueprintType<C = unknown> {
  /** Registry key, e.g. `synthetic`. */
  readonly type: string;
  readonly description: string;
  /** Resource types this plug-in can build, e.g. `['host']`. */
  readonly resourceTypes: readonly string[];
  /** zod schema of the plug-in's config, with defaults. */
  readonly configSchema: z.ZodType<C>;
  /**
   * Whether `activateResource` should be driven by the setup workflow (Step Functions on AWS,
   * re-enqueued updates locally) rather than inline. Resources that boot in seconds: false.
   */
  readonly activatesLater?: (blueprint: ConfiguredBlueprint<C>) => boolean;
  /**
   * Attribute keys its new resources may get beyond the blueprint's own (from allocateResource's
   * template or an activation step), e.g. `['platform']`. A lease wanting an attribute that is
   * neither declared on the blueprint nor listed here can never be served by it: the allocator
   * refuses the blueprint instead of allocating a resource without that attribute. @default []
   */
  producesAttributes?(blueprint: ConfiguredBlueprint<C>): readonly string[];
  /** If the blueprint can never serve this lease, the reason; beyond the generic checks. */
  cannotEverServe?(blueprint: ConfiguredBlueprint<C>, lease: Lease): string | undefined;
  /** Cheap check of outside limits (cloud quotas); the pool limit is the allocator's job. */
  canAllocateNow?(
    ctx: BlueprintContext,
    blueprint: ConfiguredBlueprint<C>,
    lease: Lease,
  ): Promise<{ ok: true } | { ok: false; reason: string }>;
  /**
   * Decide the new resource (no side effects that outlive a failed transaction). May throw
   * TemporaryError: logged on the blueprint, counted by its circuit breaker, lease waits.
   */
  allocateResource(
    ctx: BlueprintContext,
    blueprint: ConfiguredBlueprint<C>,
    lease: Lease,
  ): Promise<ResourceTemplate>;
  /**
   * Bring the resource up. Idempotent by resource id. Throwing breaks the resource (its
   * not-yet-active leases go back to pending and are allocated elsewhere).
   */
  activateResource(
    ctx: BlueprintContext,
    blueprint: ConfiguredBlueprint<C>,
    resource: Resource,
  ): Promise<ActivationStep>;
  /**
   * Whether this resource can serve this lease, beyond attribute matching. Gets the whole
   * resource (its `data` included) whether the allocator planned from every live resource or
   * from a page of the free index (which projects whole items).
   */
  canAcquire?(blueprint: ConfiguredBlueprint<C>, resource: Resource, lease: Lease): boolean;
  /**
   * Whether activateLease has work to do for leases of this blueprint. When it returns false,
   * a lease on an already active resource is acquired and activated in one transaction (the
   * "activate immediately" mode): one DynamoDB round trip less per lease. @default true when
   * activateLease exists.
   */
  needsLeaseActivation?(blueprint: ConfiguredBlueprint<C>): boolean;
  /**
   * Prepare the resource for this lease. Throwing breaks the lease (side effects possible);
   * ResourceGoneError instead breaks the resource and sends the lease back to pending.
   * Work that takes longer than a quick look (a `git fetch`) returns a pending LeaseStep and is
   * called again; `void` means done, as before.
   */
  activateLease?(
    ctx: BlueprintContext,
    blueprint: ConfiguredBlueprint<C>,
    resource: Resource,
    lease: Lease,
    // biome-ignore lint/suspicious/noConfusingVoidType: plug-ins written before steps return Promise<void>, which must stay valid.
  ): Promise<void | LeaseStep>;
  /**
   * Clean up after a lease (e.g. `git clean -ffdx`). Called before its slot locks are freed;
   * a pending LeaseStep keeps them held until a later call says done. Throwing makes the
   * resource suspect (health-checked before it serves again).
   */
  releaseLease?(
    ctx: BlueprintContext,
    blueprint: ConfiguredBlueprint<C>,
    resource: Resource,
    lease: Lease,
    // biome-ignore lint/suspicious/noConfusingVoidType: plug-ins written before steps return Promise<void>, which must stay valid.
  ): Promise<void | LeaseStep>;
  /** Tear the resource down. Idempotent; called before its slot locks are freed. */
  destroyResource(
    ctx: BlueprintContext,
    blueprint: ConfiguredBlueprint<C>,
    resource: Resource,
  ): Promise<void>;
  healthCheck(
    ctx: BlueprintContext,
    blueprint: ConfiguredBlueprint<C>,
    resource: Resource,
  ): Promise<HealthResult>;
  /**
   * The health check of a suspect resource, when it runs commands on a host (`git fsck`): used
   * instead of healthCheck for suspects. A pending answer (HealthPending) is asked again later.
   */
  suspectHealthCheck?(
    ctx: BlueprintContext,
    blueprint: ConfiguredBlueprint<C>,
    resource: Resource,
  ): Promise<HealthResult | HealthPending>;
  /**
   * How often the sweep should health-check this blueprint's active resources even when nobody
   * reports a problem (leased or not): for hosts that can go away behind Drydock's back (a
   * static host deregistered, offline, or taken out of its pool). An unhealthy result breaks
   * the resource with its reason. @default undefined: only suspect resources are checked
   */
  healthCheckEverySeconds?(blueprint: ConfiguredBlueprint<C>): number | undefined;
  /**
   * The sweep's inventory reconciliation, for plug-ins whose hosts exist outside Drydock's
   * records (cloud instances): find hosts bound to no resource (orphans after a crash between
   * launch and record) and resources whose host vanished. Bounded work per call: `state` is
   * what the previous call returned as `nextState` (a cursor), kept by the sweep per blueprint.
   * Side effects allowed: terminating orphans (idempotent). @default undefined: no inventory
   */
  reconcileInventory?(
    ctx: BlueprintContext,
    blueprint: ConfiguredBlueprint<C>,
    state: Record<string, unknown> | undefined,
  ): Promise<InventoryReport>;
  /**
   * Interfaces a lease offers its holder (the command interface is asynchronous: see
   * CommandInterface). Throw ResourceGoneError if the host is gone.
   */
  command?(
    ctx: BlueprintContext,
    blueprint: ConfiguredBlueprint<C>,
    resource: Resource,
    lease: Lease,
  ): CommandInterface;
  filesystem?(
    ctx: BlueprintContext,
    blueprint: ConfiguredBlueprint<C>,
    resource: Resource,
    lease: Lease,
  ): FilesystemInterface;
}

/**
 * Typed registry of blueprint plug-ins. Plug-ins receive `ConfiguredBlueprint<C>` whose config
 * the engine has already parsed with the plug-in's own schema.
 */
export class BlueprintRegistry {
  readonly #types = new Map<string, BlueprintType<unknown>>();

  // biome-ignore lint/suspicious/noExplicitAny: each plug-in has its own config type; the registry erases it (configs are parsed by the plug-in's own schema before use).
  constructor(types: ReadonlyArray<BlueprintType<any>> = []) {
    for (const t of types) this.register(t);
  }

  register<C>(type: BlueprintType<C>): this {
    if (this.#types.has(type.type)) {
      throw new Error(`blueprint type '${type.type}' is registered twice`);
    }
    this.#types.set(type.type, type as BlueprintType<unknown>);
    return this;
  }

  get(type: string): BlueprintType<unknown> | undefined {
    return this.#types.get(type);
  }

  require(type: string): BlueprintType<unknown> {
    const t = this.#types.get(type);
    if (!t) {
      throw new Error(
        `unknown blueprint type '${type}'; registered types: ${[...this.#types.keys()].join(', ')}`,
      );
    }
    return t;
  }

  types(): string[] {
    return [...this.#types.keys()];
  }
}
