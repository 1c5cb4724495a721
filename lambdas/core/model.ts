/**
 * The domain objects of the lease engine. Plain data: every field is what the store persists,
 * so a crash between two writes can never leave state that only lived in memory.
 *
 * Timestamps are ISO-8601 strings with milliseconds (they sort lexically, read well in logs).
 */

export type Attributes = Record<string, string>;

export const LEASE_STATUSES = [
  'pending',
  'acquired',
  'active',
  'released',
  'broken',
  'destroyed',
] as const;
export type LeaseStatus = (typeof LEASE_STATUSES)[number];

export const RESOURCE_STATUSES = ['pending', 'active', 'released', 'broken', 'destroyed'] as const;
export type ResourceStatus = (typeof RESOURCE_STATUSES)[number];

export const BLUEPRINT_STATES = ['enabled', 'draining', 'disabled'] as const;
export type BlueprintState = (typeof BLUEPRINT_STATES)[number];

export interface Lease {
  id: string;
  /** The resource type asked for, e.g. `host`. */
  type: string;
  /** Every attribute must equal the resource's attribute of the same name. */
  attributes: Attributes;
  /** If set, only these blueprints may serve the lease. */
  blueprintIds?: string[];
  /**
   * The owner that requested the lease (core/identity.ts: a role, not its session); only it
   * may release it or run commands.
   */
  owner: string;
  /** The assumed-role session that requested it: shown, never compared. */
  ownerSession?: string;
  status: LeaseStatus;
  /** Bumped by every status transition; writes are conditional on (status, version). */
  version: number;
  resourceId?: string;
  blueprintId?: string;
  /** Slot lock keys this lease holds (freed when the lease is destroyed or sent back). */
  slotLocks: string[];
  /** How long the lease may stay active; the sweep releases it afterwards. */
  ttlSeconds?: number;
  /** Break the lease if it is not active this long after its request (wait-deadline.ts). */
  waitTimeoutSeconds?: number;
  expiresAt?: string;
  /**
   * A held lease (lease-hold.ts) lives only while its holder renews it: it ends holdSeconds
   * after the last renewal (heldUntil), whatever its TTL. Unset: it lives to its TTL.
   */
  holdSeconds?: number;
  heldUntil?: string;
  requestedAt: string;
  acquiredAt?: string;
  activatedAt?: string;
  releasedAt?: string;
  destroyedAt?: string;
  updatedAt: string;
  /**
   * Wait chain sequence. A waiting lease re-enqueues itself with a delay; the message carries
   * this number and the wait write increments it conditionally, so duplicate deliveries
   * collapse into one chain instead of multiplying (see allocator.ts, "waiting").
   */
  waitSeq: number;
  /** Why the lease waits, as last logged (a new log line is written only when it changes). */
  waitReason?: string;
  /**
   * What its current wait ends with. `slot`: its last attempt found every slot held by someone
   * else (a full pool, a race lost), and a freed slot's wake-up ends it (wake.ts); `line`: it
   * joined the line behind such leases at request time (line.ts), and is woken the same way;
   * `other`: something no wake-up announces (a breaker, a plug-in's refusal, a failure). A new
   * lease wanting the same joins the line only behind `slot` and `line`.
   */
  waitingFor?: WaitingFor;
  /**
   * The waitSeq of the wait a freed slot's wake-up was last handed to (wake.ts): one wake-up per
   * wait, so a second slot freed before the woken lease ran wakes the next lease in line instead
   * of the same one (which would only race its own update).
   */
  wokenSeq?: number;
  /** Last time a worker looked at this waiting lease. */
  checkedAt?: string;
  /** How many times this lease was sent back to pending because its resource died. */
  requeues: number;
  /** Why the lease ended: released by its holder, expired, broken. Shown to the holder. */
  endReason?: string;
  /** How it ended; kept once it is destroyed, so listings can still say released or broken. */
  endedAs?: 'released' | 'broken';
  /** When the sweep should next look at this lease (TTL expiry, or a stranded-state bound). */
  sweepAt?: string;
  /** What a `working-copy` lease checks out (validated at the edge and by the plug-in). */
  workingCopy?: WorkingCopySpec;
  /**
   * Plug-in-private state of a step-based activation or cleanup (lease-steps.ts): which
   * commands were started, which finished. Never shown as the holder's business.
   */
  data?: Record<string, unknown>;
  /** What the activation or cleanup under way is doing, as last logged. */
  stepMessage?: string;
}

/** One repository of a working-copy lease: where from, what to check out, what to merge. */
export type WaitingFor = 'slot' | 'line' | 'other';

export interface WorkingCopyRepository {
  url: string;
  /** Branch, tag, commit or full ref (`refs/changes/…`); default: the remote's HEAD. */
  ref?: string;
  /** Refs merged on top, in order (the staging area of a merge queue). */
  merge?: string[];
  /** Directory of the clone inside the working copy; default: the URL's last segment. */
  directory?: string;
}

export interface WorkingCopySpec {
  repositories: WorkingCopyRepository[];
}

export interface Resource {
  id: string;
  blueprintId: string;
  type: string;
  attributes: Attributes;
  status: ResourceStatus;
  version: number;
  /** Slot locks this resource holds, e.g. `blueprint:B:slot:3`. Freed on destroy. */
  slotLocks: string[];
  /** How many leases may hold this resource at once (copied from the blueprint at allocation). */
  capacity: number;
  /**
   * Leases currently attached (acquired or active, not yet destroyed). Maintained only by the
   * lease transactions (attach/detach), never by resource transitions, so the two writers never
   * overwrite each other. Reclaim is conditional on `leaseCount = 0`.
   */
  leaseCount: number;
  /** Total leases ever attached (for max-uses). */
  uses: number;
  createdAt: string;
  activatedAt?: string;
  releasedAt?: string;
  destroyedAt?: string;
  updatedAt: string;
  /** Last time a lease detached; with leaseCount = 0, the start of the idle period. */
  lastDetachedAt?: string;
  /** Set after a failed command or lease activation: no new leases until a health check passes. */
  suspectSince?: string;
  suspectReason?: string;
  /** Last periodic health check that passed (blueprints with `healthCheckEverySeconds`). */
  lastHealthCheckAt?: string;
  /** Why the resource ended (reclaimed idle, broken: reason). */
  endReason?: string;
  /** When setup (activate-later) must have finished; past it the resource is broken. */
  setupDeadline?: string;
  /** Blueprint-private state (instance id, directory, synthetic host id). */
  data: Record<string, unknown>;
  sweepAt?: string;
  /** The lease it was allocated for: its log carries this resource's setup progress. */
  createdFor?: string;
}

export interface BlueprintLimits {
  /** Resources of this blueprint alive at once (pending + active + released-not-destroyed). */
  maxResources: number;
  /** Leases per resource; 1 means one lease per host. */
  leasesPerResource: number;
  /** Reclaim the resource as soon as its last lease is released. */
  reclaimOnRelease: boolean;
  /** Reclaim a resource idle (no leases) this long. */
  idleTtlSeconds: number;
  /** A resource idle less than this is never reclaimed to make room for another lease. */
  idleGraceSeconds: number;
  /** Reclaim resources older than this once idle. */
  maxAgeSeconds?: number;
  /** Reclaim resources after this many leases, once idle. */
  maxUses?: number;
  /** Setup (activate-later) deadline. */
  setupTimeoutSeconds: number;
  /**
   * Warm pool: idle, ready resources kept at all times (within maxResources), pre-warmed with no
   * lease on them and reclaimed by the idle rules only above this number. @default 0
   */
  minIdle?: number;
  /** Time windows with another minIdle (the first window containing now wins; min-idle.ts). */
  minIdleSchedule?: MinIdleWindow[];
}

/** A time window of a warm-pool schedule: local `from`-`to` on `days` in `timezone`. */
export interface MinIdleWindow {
  /** Weekdays, e.g. `mon-fri` or `sat,sun`; every day when absent. */
  days?: string;
  /** Local time HH:MM, inclusive. */
  from: string;
  /** Local time HH:MM, exclusive; `24:00` for the end of the day. */
  to: string;
  minIdle: number;
  /** IANA time zone. @default UTC */
  timezone?: string;
}

export interface BlueprintHealth {
  /** Consecutive allocation/activation failures (reset by a success). */
  failureCount: number;
  lastFailureAt?: string;
  lastFailure?: string;
  /** Circuit breaker: no allocation from this blueprint before this time. */
  backoffUntil?: string;
}

export interface Blueprint {
  /** Operator-chosen, immutable slug, e.g. `linux-pool`. */
  id: string;
  /** Plug-in type, e.g. `synthetic`, `local-host`. */
  type: string;
  /** Resource type served, e.g. `host`. */
  resourceType: string;
  description?: string;
  /** Attributes every resource of this blueprint has. */
  attributes: Attributes;
  state: BlueprintState;
  limits: BlueprintLimits;
  /** Plug-in configuration, validated by the plug-in's schema. */
  config: unknown;
  version: number;
  createdAt: string;
  updatedAt: string;
  health: BlueprintHealth;
}

export interface SlotLock {
  key: string;
  ownerKind: 'lease' | 'resource';
  ownerId: string;
  createdAt: string;
  /** A pool slot's lease: the one its resource was allocated for (named in others' wait reasons). */
  forLeaseId?: string;
}

/** Typed log events; `type` is a stable machine name, `message` a sentence for people. */
export const LOG_TYPES = [
  'lease.queued',
  'lease.waiting',
  'lease.acquired',
  'lease.setup-progress',
  'lease.activated',
  'lease.activation-failed',
  'lease.step',
  'lease.requeued',
  'lease.released',
  'lease.expired',
  'lease.broken',
  'lease.destroyed',
  'lease.command',
  'lease.command-queued',
  'lease.command-cancelling',
  'resource.allocated',
  'resource.setup-waiting',
  'resource.activated',
  'resource.activation-failed',
  'resource.suspect',
  'resource.healthy',
  'resource.reclaimed',
  'resource.released',
  'resource.broken',
  'resource.destroyed',
  'blueprint.created',
  'blueprint.updated',
  'blueprint.allocation-failed',
  'blueprint.backing-off',
  'blueprint.recovered',
  'blueprint.pre-warmed',
  'sweep.redriven',
  'sweep.lock-freed',
  'sweep.orphans-terminated',
  'sweep.inventory-failed',
] as const;
export type LogType = (typeof LOG_TYPES)[number];

export interface LogEvent {
  /** The lease, resource or blueprint the event is about. */
  objectId: string;
  /** Sortable id unique within the object: `<at>#<random>`. */
  seq: string;
  at: string;
  type: LogType;
  message: string;
  data?: Record<string, unknown>;
}

/** What a lease holder asks to run (DESIGN §2, the command interface). */
export interface CommandSpec {
  /** Program and arguments, run without a shell. Exactly one of argv / script. */
  argv?: string[];
  /** A shell script, run with `sh -c`. */
  script?: string;
  /** Default 300. Every command has a timeout, enforced by the engine. */
  timeoutSeconds?: number;
  /** Working directory relative to the resource root. */
  cwd?: string;
  env?: Record<string, string>;
}

/** How a command ended, as the holder reads it (`result` of a finished command). */
export interface CommandResult {
  exitCode: number | null;
  /** The kept tail of each stream (see CommandRecord.output for offsets). */
  stdout: string;
  stderr: string;
  timedOut: boolean;
  durationMs: number;
  /** Set when earlier output was cut from the record (only the tail is kept). */
  truncated?: boolean;
}

/**
 * The output of one stream as kept on the command record: bytes [start, end) of everything the
 * command wrote to it. `end` is the total seen so far (the next poll reads from there); `start`
 * is above 0 once older output was cut to respect DynamoDB's 400 KB item limit.
 */
export interface StreamTail {
  text: string;
  start: number;
  end: number;
}

export const COMMAND_STATUSES = [
  'queued',
  'running',
  'cancelling',
  'finished',
  'failed',
  'cancelled',
] as const;
export type CommandStatus = (typeof COMMAND_STATUSES)[number];
/** Statuses a command never leaves. */
export const ENDED_COMMAND_STATUSES: readonly CommandStatus[] = ['finished', 'failed', 'cancelled'];
/**
 * Statuses in which a worker still has a step to take: the ones the store indexes by sweepAt,
 * and the sweep re-drives when a step's message was lost.
 */
export const LIVE_COMMAND_STATUSES = [
  'queued',
  'running',
  'cancelling',
] as const satisfies readonly CommandStatus[];

/**
 * A command a lease holder asked to run (DESIGN §2, the command interface). The API answers at
 * once with the queued record; workers start it through the plug-in, then poll it with
 * "command C" messages re-enqueued with a delay (no worker ever waits on a host), appending
 * output here, where the holder reads it from an offset. Kept (TTL) for the retention period.
 *
 *   queued -> running -> finished     (it ran: any exit code, or timed out)
 *                     -> cancelling -> cancelled   (the holder cancelled it)
 *          -> failed                  (it could not run: lease ended, host gone; `error` says why)
 */
export interface CommandRecord {
  id: string;
  leaseId: string;
  /** Principal that started it (the lease's holder). */
  owner: string;
  status: CommandStatus;
  argv?: string[];
  script?: string;
  timeoutSeconds: number;
  cwd?: string;
  /** Removed once the command has ended: values may be secrets and are only needed to run it. */
  env?: Record<string, string>;
  /**
   * Starts of the command on its host (1 once started). A start that crashed before its handle
   * was recorded is repeated with the same command id, which plug-ins treat idempotently.
   */
  attempt: number;
  /** The plug-in's handle of the running command (JSON); any worker can poll it. */
  handle?: Record<string, unknown>;
  /** Polls recorded; each poll's write is conditional on it, so two pollers never both append. */
  polls?: number;
  /** Output seen so far, a bounded tail per stream. */
  output?: { stdout: StreamTail; stderr: StreamTail };
  createdAt: string;
  startedAt?: string;
  /** When the holder asked to cancel it. */
  cancelRequestedAt?: string;
  finishedAt?: string;
  updatedAt: string;
  result?: CommandResult;
  /** Why it failed to run, or how it was cancelled, in words for the holder. */
  error?: string;
  /** When the sweep should look at it if no poll came (a lost message); queued/running only. */
  sweepAt?: string;
}

/** `blueprint`: top up the blueprint's warm pool (warm-pool.ts); the others update the object. */
export type ObjectKind = 'lease' | 'resource' | 'command' | 'blueprint';

/** A queued "update X" message (for `command`: "run command X of lease leaseId"). */
export interface UpdateMessage {
  kind: ObjectKind;
  id: string;
  /** The lease a command belongs to (kind `command` only). */
  leaseId?: string;
  /** Lease wait chain this message belongs to (see Lease.waitSeq); absent for a wake-up. */
  waitSeq?: number;
  /** Consecutive waits in this chain; drives the backoff. */
  attempt?: number;
  /** Why it was sent (for logs and debugging): `requested`, `wake: resource R active`, ... */
  reason?: string;
  delaySeconds?: number;
  /**
   * A wake-up for a freed slot (wake.ts): if the lease no longer waits for it, the update
   * passes the wake on to the next waiting lease instead of dropping it.
   */
  wake?: boolean;
  /**
   * The lease as its sender just wrote it (kind `lease`; status `pending` from the request,
   * `released` from the holder's release): the update starts from it instead of reading the
   * lease again, only for steps that change nothing before a write conditional on the lease's
   * (status, version); a stale snapshot fails that condition and the update reads the lease
   * after all (lease-update.ts, updateFromSnapshot).
   */
  lease?: Lease;
}
