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
import type { Attributes, Blueprint, Lease, Resource } from './model.ts';
import type { Clock } from './ports.ts';

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
    };

export interface CommandSpec {
  /** Program and arguments, run without a shell. Exactly one of argv / script. */
  argv?: string[];
  /** A shell script, run with `sh -c`. */
  script?: string;
  /** Default 300. Every command has a timeout. */
  timeoutSeconds?: number;
  /** Working directory relative to the resource root. */
  cwd?: string;
  env?: Record<string, string>;
}

export interface CommandResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  durationMs: number;
  /** Set when the output was cut to the size limit. */
  truncated?: boolean;
}

export interface CommandInterface {
  run(spec: CommandSpec, options?: { signal?: AbortSignal }): Promise<CommandResult>;
}

export interface FilesystemInterface {
  /** Write a file (creating directories); the path is relative and may not escape the root. */
  put(path: string, content: Uint8Array | string): Promise<void>;
  get(path: string): Promise<Uint8Array>;
}

export type HealthResult = { healthy: true } | { healthy: false; reason: string };

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
  /** Whether this resource can serve this lease, beyond attribute matching. */
  canAcquire?(blueprint: ConfiguredBlueprint<C>, resource: Resource, lease: Lease): boolean;
  /**
   * Whether activateLease has work to do for leases of this blueprint. When it returns false,
   * a lease on an already active resource is acquired and activated in one transaction (the
   * "activate immediately" mode): one DynamoDB round trip less per lease. @default true when
   * activateLease exists.
   */
  needsLeaseActivation?(blueprint: ConfiguredBlueprint<C>): boolean;
  /** Prepare the resource for this lease. Throwing breaks the lease (side effects possible). */
  activateLease?(
    ctx: BlueprintContext,
    blueprint: ConfiguredBlueprint<C>,
    resource: Resource,
    lease: Lease,
  ): Promise<void>;
  /** Clean up after a lease (e.g. `git clean -ffdx`). Called before its slot locks are freed. */
  releaseLease?(
    ctx: BlueprintContext,
    blueprint: ConfiguredBlueprint<C>,
    resource: Resource,
    lease: Lease,
  ): Promise<void>;
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
  /** Interfaces a lease offers its holder. Throw ResourceGoneError if the host is gone. */
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
