/**
 * What every use case needs: the ports, the blueprint registry and the tunables, plus the small
 * helpers they share (ids, slot-lock keys, log events, backoff, the blueprint catalog).
 */
import { randomBytes } from 'node:crypto';
import type {
  BlueprintContext,
  BlueprintRegistry,
  BlueprintType,
  CloudClients,
  ConfiguredBlueprint,
} from './blueprint.ts';
import type { DeadLetterQueue } from './dead-letters.ts';
import { ValidationError, WriteConflictError } from './errors.ts';
import { metricsOnCommit } from './metric-events.ts';
import { type Metrics, noMetrics } from './metrics.ts';
import type { Blueprint, Lease, LogEvent, LogType, Resource, UpdateMessage } from './model.ts';
import { commandsOn, leasePort, parentResourceOf } from './plugin-ports.ts';
import type { Clock, Store, TxWrite, WorkQueue } from './ports.ts';
import { transitionCheckedStore } from './transitions.ts';
import { formatZodIssues } from './validation.ts';

export interface EngineSettings {
  /** Wait backoff: first delay, growth factor 2, cap; full jitter in [delay/2, delay]. */
  backoffBaseSeconds: number;
  backoffCapSeconds: number;
  /**
   * A lease or resource in a transitional state that nobody touched for this long is
   * re-driven by the sweep (its message was lost). Must exceed backoffCapSeconds.
   */
  strandAfterSeconds: number;
  /** Lease TTL when the request names none, and the largest allowed. */
  defaultLeaseTtlSeconds: number;
  maxLeaseTtlSeconds: number;
  /** How long the blueprint list may be served from memory (0 = always read). */
  blueprintCacheMs: number;
  /** Failed allocations in a row before a blueprint's circuit breaker opens. */
  breakerThreshold: number;
  /** Breaker open time: base * 2^(failures - threshold), capped. */
  breakerBaseSeconds: number;
  breakerCapSeconds: number;
  /** Waiting leases to wake per freed slot (oldest that waited first; wake.ts). */
  wakeBatch: number;
  /** Default command timeout. */
  commandTimeoutSeconds: number;
  /**
   * A command no step touched for this long past its next poll is re-driven by the sweep (its
   * message was lost, or the local runtime restarted). Must exceed the longest poll delay.
   */
  commandStrandSeconds: number;
  /** A new log line for an unchanged wait reason at most this often (progress on long waits). */
  waitLogEverySeconds: number;
  /**
   * A new lease that can only wait behind older ones is written as waiting at request time
   * instead of getting a first attempt (line.ts).
   */
  joinLine: boolean;
  /**
   * The holder's release of an active lease with nothing to clean destroys it in the release's
   * own transaction (destroy-at-once.ts) instead of leaving the teardown to a worker.
   */
  releaseAtOnce: boolean;
}

export const DEFAULT_SETTINGS: EngineSettings = {
  backoffBaseSeconds: 1,
  backoffCapSeconds: 60,
  strandAfterSeconds: 300,
  defaultLeaseTtlSeconds: 3600,
  maxLeaseTtlSeconds: 7 * 24 * 3600,
  blueprintCacheMs: 5000,
  breakerThreshold: 3,
  breakerBaseSeconds: 15,
  breakerCapSeconds: 600,
  wakeBatch: 1,
  commandTimeoutSeconds: 300,
  commandStrandSeconds: 30,
  waitLogEverySeconds: 30,
  joinLine: true,
  releaseAtOnce: true,
};

export interface EngineDeps {
  store: Store;
  queue: WorkQueue;
  clock: Clock;
  registry: BlueprintRegistry;
  /** Directory local plug-ins may use (local-host roots). */
  dataDir: string;
  settings: EngineSettings;
  /** Randomness for jitter (tests may pin it). */
  random?: () => number;
  /** Workflow starter for resources that activate later (Step Functions on AWS). */
  startSetup?: (resourceId: string) => Promise<void>;
  /** Cloud SDK clients for plug-ins, created once per process by the composition root. */
  clients?: CloudClients;
  /** Where the engine's metrics go (EMF on Lambda). @default noMetrics */
  metrics?: Metrics;
  /** The work queue's dead-letter queue, for operators (the api function only). */
  deadLetters?: DeadLetterQueue;
}

export function makeEngine(
  deps: Omit<EngineDeps, 'settings'> & { settings?: Partial<EngineSettings> },
): Engine {
  const settings = { ...DEFAULT_SETTINGS, ...deps.settings };
  if (settings.strandAfterSeconds <= settings.backoffCapSeconds) {
    throw new ValidationError(
      `strandAfterSeconds (${settings.strandAfterSeconds}) must exceed backoffCapSeconds (${settings.backoffCapSeconds}), or the sweep re-drives leases that are merely waiting`,
    );
  }
  return new Engine({ ...deps, settings });
}

/** The assembled engine: deps plus per-process caches. Use cases take it as first argument. */
export class Engine {
  readonly store: Store;
  readonly queue: WorkQueue;
  readonly clock: Clock;
  readonly registry: BlueprintRegistry;
  readonly settings: EngineSettings;
  readonly random: () => number;
  readonly startSetup?: (resourceId: string) => Promise<void>;
  readonly metrics: Metrics;
  readonly deadLetters?: DeadLetterQueue;
  readonly ctx: BlueprintContext;
  #catalog?: { at: number; blueprints: Blueprint[] };
  /** The catalog read under way, which concurrent callers share (see blueprints()). */
  #catalogLoading?: Promise<Blueprint[]>;
  /** Log events this engine made: orders its events within one millisecond (see log). */
  #logCount = 0;
  /**
   * Per lease type, until when (epoch ms) a request skips looking for a line to join: the last
   * look found no pending lease at all (line.ts). A hint only: skipping is always correct.
   */
  readonly noLineUntil = new Map<string, number>();
  readonly #configCache = new Map<string, ConfiguredBlueprint<unknown>>();

  constructor(deps: EngineDeps) {
    this.metrics = deps.metrics ?? noMetrics;
    this.deadLetters = deps.deadLetters;
    // Every status change any use case writes is checked against the lifecycle tables; every
    // transaction that commits is measured by the log events it appends.
    this.store = metricsOnCommit(transitionCheckedStore(deps.store), this.metrics);
    this.queue = deps.queue;
    this.clock = deps.clock;
    this.registry = deps.registry;
    this.settings = deps.settings;
    this.random = deps.random ?? Math.random;
    this.startSetup = deps.startSetup;
    const store = deps.store;
    this.ctx = {
      clock: deps.clock,
      dataDir: deps.dataDir,
      records: {
        append: (scope, record) => store.appendRecord(scope, record),
        list: (scope) => store.listRecords(scope),
      },
      clients: deps.clients ?? {},
      leases: leasePort(this),
      slotLocks: {
        held: async (keys) => (await store.getSlotLocks(keys)).map((lock) => lock.key),
      },
      commandsOn: (leaseId) => commandsOn(this, leaseId),
    };
  }

  now(): number {
    return this.clock.now();
  }

  iso(offsetMs = 0): string {
    return new Date(this.clock.now() + offsetMs).toISOString();
  }

  /**
   * Blueprints, served from memory for `blueprintCacheMs`. Planning may use a stale list (it is
   * only a plan); permanent decisions ("no blueprint can ever serve this") pass `fresh`.
   */
  async blueprints(options: { fresh?: boolean } = {}): Promise<Blueprint[]> {
    const now = this.clock.now();
    const cached = this.#catalog;
    if (!options.fresh && cached && now - cached.at < this.settings.blueprintCacheMs) {
      return cached.blueprints;
    }
    // Concurrent callers of an expired cache (a burst of requests, the workers of one process)
    // share one read instead of each reading the catalog. Not a fresh read: it must start after
    // its caller asked, so a permanent decision never rests on a read begun before.
    if (!options.fresh && this.#catalogLoading && this.settings.blueprintCacheMs > 0) {
      return this.#catalogLoading;
    }
    const loading = this.store.listBlueprints();
    this.#catalogLoading = loading;
    try {
      const blueprints = await loading;
      this.#catalog = { at: now, blueprints };
      return blueprints;
    } finally {
      if (this.#catalogLoading === loading) this.#catalogLoading = undefined;
    }
  }

  forgetBlueprints(): void {
    this.#catalog = undefined;
  }

  async blueprint(id: string): Promise<Blueprint | undefined> {
    const cached = (await this.blueprints()).find((b) => b.id === id);
    return cached ?? this.store.getBlueprint(id);
  }

  /** The blueprint's plug-in and its parsed config (cached per blueprint version). */
  configured(blueprint: Blueprint): {
    plugin: BlueprintType<unknown>;
    bp: ConfiguredBlueprint<unknown>;
  } {
    const plugin = this.registry.require(blueprint.type);
    const cacheKey = `${blueprint.id}@${blueprint.version}`;
    let bp = this.#configCache.get(cacheKey);
    if (!bp) {
      const parsed = plugin.configSchema.safeParse(blueprint.config ?? {});
      if (!parsed.success) {
        throw new ValidationError(
          `blueprint '${blueprint.id}' has an invalid ${blueprint.type} config: ${formatZodIssues(parsed.error)}`,
        );
      }
      bp = { ...blueprint, config: parsed.data };
      this.#configCache.set(cacheKey, bp);
    }
    return { plugin, bp };
  }

  /** Exponential backoff with full jitter in [d/2, d], whole seconds (SQS DelaySeconds). */
  backoffSeconds(attempt: number): number {
    const { backoffBaseSeconds: base, backoffCapSeconds: cap } = this.settings;
    const d = Math.min(cap, base * 2 ** Math.min(attempt, 20));
    return Math.max(1, Math.round(d / 2 + (this.random() * d) / 2));
  }

  /**
   * A log event. Its seq sorts events in the order they happened: the time, then this engine's
   * running count (two events of one transaction, e.g. "acquired" and "active", share a
   * millisecond), then a random tail that keeps seqs of different workers unique. `notBefore`
   * (the time of the step this one follows, possibly written by another worker whose clock
   * runs ahead) sorts it at least a millisecond after that step; `at` stays the true time.
   */
  log(
    objectId: string,
    type: LogType,
    message: string,
    data?: Record<string, unknown>,
    notBefore?: string,
  ): LogEvent {
    const at = this.iso();
    const after = notBefore === undefined ? Number.NaN : Date.parse(notBefore);
    const sortAt = after >= Date.parse(at) ? new Date(after + 1).toISOString() : at;
    const count = (this.#logCount++ % 36 ** 6).toString(36).padStart(6, '0');
    const seq = `${sortAt}#${count}${randomBytes(2).toString('hex')}`;
    return { objectId, seq, at, type, message, data };
  }

  logWrite(
    objectId: string,
    type: LogType,
    message: string,
    data?: Record<string, unknown>,
    notBefore?: string,
  ): TxWrite {
    return { op: 'appendLog', event: this.log(objectId, type, message, data, notBefore) };
  }

  /** A conditional write that may lose to another worker: false if it did. */
  async tryTransact(writes: TxWrite[]): Promise<boolean> {
    try {
      await this.store.transact(writes);
      return true;
    } catch (err) {
      if (err instanceof WriteConflictError) return false;
      throw err;
    }
  }

  /** The log line of a lease becoming active on a resource. */
  leaseActivatedLog(lease: Lease, r: Resource, expiresAt: string): TxWrite {
    return this.logWrite(
      lease.id,
      'lease.activated',
      `active on ${r.type} ${r.id} until ${expiresAt}`,
      {
        resourceId: r.id,
        blueprintId: r.blueprintId,
        expiresAt,
        // For the time-to-active metric (metric-events.ts): request -> active.
        requestedAt: lease.requestedAt,
        resourceType: r.type,
      },
      // Never before "acquired", whichever worker's clock wrote that.
      lease.acquiredAt,
    );
  }

  /**
   * Wake the resource that holds this lease, if it is a child lease (a working copy's host):
   * called after the lease became active or ended, so the parent's activation never sleeps.
   */
  async wakeParent(lease: Pick<Lease, 'id' | 'owner'>, what: string): Promise<void> {
    const parent = parentResourceOf(lease);
    if (parent)
      await this.send({ kind: 'resource', id: parent, reason: `wake: lease ${lease.id} ${what}` });
  }

  async send(...messages: UpdateMessage[]): Promise<void> {
    if (messages.length > 0) await this.queue.send(messages);
  }
}

/** Sortable, unique ids: `lease-<time36><random>`. */
export function newId(prefix: 'lease' | 'res' | 'cmd'): string {
  return `${prefix}-${Date.now().toString(36)}${randomBytes(5).toString('hex')}`;
}

/**
 * Slot lock keys. A pool slot caps a blueprint's resources: slot n of blueprint B is held by
 * at most one resource, so at most maxResources resources exist. A lease slot caps leases per
 * resource the same way.
 */
export const slotKeys = {
  pool: (blueprintId: string, n: number) => `blueprint:${blueprintId}:slot:${n}`,
  lease: (resourceId: string, n: number) => `resource:${resourceId}:lease-slot:${n}`,
  allPool: (blueprintId: string, max: number) =>
    Array.from({ length: max }, (_, n) => slotKeys.pool(blueprintId, n)),
  allLease: (resourceId: string, capacity: number) =>
    Array.from({ length: capacity }, (_, n) => slotKeys.lease(resourceId, n)),
};

/** Every lease attribute equals the resource's (a lease asks; a resource offers). */
export function attributesMatch(
  wanted: Record<string, string>,
  offered: Record<string, string>,
): boolean {
  return Object.entries(wanted).every(([k, v]) => offered[k] === v);
}

export function describeAttributes(attributes: Record<string, string>): string {
  const entries = Object.entries(attributes);
  return entries.length === 0 ? 'no attributes' : entries.map(([k, v]) => `${k}=${v}`).join(',');
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

export type { Lease, Resource };
