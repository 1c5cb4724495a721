/**
 * What the plug-in tests need instead of the whole system: in-memory records, a clock the test
 * advances, a temp data dir, and hand-built blueprint / lease / resource objects.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type {
  BlueprintContext,
  BlueprintType,
  CommandHandle,
  CommandInterface,
  CommandProgress,
  ConfiguredBlueprint,
  ParsedCommand,
} from '../../lambdas/core/blueprint.ts';
import type { Blueprint, Lease, Resource } from '../../lambdas/core/model.ts';
import type { Clock } from '../../lambdas/core/ports.ts';
import { isAlive } from '../../lib/local/process.ts';
import { waitFor } from '../../lib/local/wait.ts';

export type Records = BlueprintContext['records'] & {
  /** Every scope and its records, for assertions. */
  dump(): Map<string, Array<Record<string, unknown>>>;
};

/**
 * Append-only records. Listed like the DynamoDB store lists them: by `<clock ms>#<random>`, so
 * records appended in the same millisecond of `clock` (every record, under a frozen test clock)
 * come back in random order — plug-ins must not rely on list order. Without a clock: insertion
 * order.
 */
export function memoryRecords(clock?: Clock): Records {
  const scopes = new Map<string, Array<{ key: string; record: Record<string, unknown> }>>();
  let appended = 0;
  return {
    async append(scope, record) {
      const list = scopes.get(scope) ?? [];
      const key = clock
        ? `${new Date(clock.now()).toISOString()}#${randomBytes(6).toString('hex')}`
        : String(appended++).padStart(12, '0');
      list.push({ key, record: structuredClone(record) });
      list.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      scopes.set(scope, list);
    },
    async list(scope) {
      return structuredClone((scopes.get(scope) ?? []).map((r) => r.record));
    },
    dump: () => new Map([...scopes].map(([scope, list]) => [scope, list.map((r) => r.record)])),
  };
}

export interface ManualClock {
  now(): number;
  advance(ms: number): void;
}

export function manualClock(start = Date.parse('2030-01-01T00:00:00.000Z')): ManualClock {
  let now = start;
  return {
    now: () => now,
    advance(ms) {
      now += ms;
    },
  };
}

export interface TestContext extends BlueprintContext {
  records: Records;
  clock: ManualClock;
  /** Remove the data dir. */
  cleanup(): Promise<void>;
}

export async function testContext(): Promise<TestContext> {
  const dataDir = await mkdtemp(join(tmpdir(), 'drydock-blueprints-'));
  const clock = manualClock();
  return {
    clock,
    records: memoryRecords(clock),
    dataDir,
    clients: {},
    leases: {
      request: async () => {
        throw new Error('leases are not available in blueprint unit tests');
      },
      get: async () => undefined,
      release: async () => {},
    },
    commandsOn: async () => {
      throw new Error('commandsOn is not available in blueprint unit tests');
    },
    // No lock is held in a plug-in unit test unless the test says so.
    slotLocks: { held: async () => [] },
    cleanup: () => rm(dataDir, { recursive: true, force: true }),
  };
}

const AT = '2030-01-01T00:00:00.000Z';

/** A blueprint of `plugin`'s type whose config went through the plug-in's schema. */
export function configuredBlueprint<C>(
  plugin: BlueprintType<C>,
  config: unknown,
  overrides: Partial<Omit<Blueprint, 'config'>> = {},
): ConfiguredBlueprint<C> {
  return {
    id: `${plugin.type}-pool`,
    type: plugin.type,
    resourceType: plugin.resourceTypes[0] ?? 'host',
    attributes: {},
    state: 'enabled',
    limits: {
      maxResources: 4,
      leasesPerResource: 1,
      reclaimOnRelease: false,
      idleTtlSeconds: 600,
      idleGraceSeconds: 60,
      setupTimeoutSeconds: 900,
    },
    version: 1,
    createdAt: AT,
    updatedAt: AT,
    health: { failureCount: 0 },
    ...overrides,
    config: plugin.configSchema.parse(config),
  };
}

export function makeLease(overrides: Partial<Lease> = {}): Lease {
  return {
    id: 'lease-1',
    type: 'host',
    attributes: {},
    owner: 'tester',
    status: 'acquired',
    version: 2,
    slotLocks: [],
    requestedAt: AT,
    updatedAt: AT,
    waitSeq: 0,
    requeues: 0,
    ...overrides,
  };
}

export function makeResource(
  blueprint: Pick<Blueprint, 'id' | 'resourceType' | 'attributes'>,
  overrides: Partial<Resource> = {},
): Resource {
  return {
    id: 'res-1',
    blueprintId: blueprint.id,
    type: blueprint.resourceType,
    attributes: { ...blueprint.attributes },
    status: 'pending',
    version: 1,
    slotLocks: [],
    capacity: 1,
    leaseCount: 1,
    uses: 1,
    createdAt: AT,
    updatedAt: AT,
    data: {},
    ...overrides,
  };
}

/** Whether `pid` is a live process (a zombie waiting for a reaper counts as dead). */
export async function processAlive(pid: number): Promise<boolean> {
  return isAlive(pid);
}

/** Poll `check` until it is true or the deadline passes (no fixed sleeps in tests). */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  { timeoutMs = 5_000, intervalMs = 20 } = {},
): Promise<boolean> {
  return waitFor(check, { timeoutMs, intervalMs }).then(
    () => true,
    () => false,
  );
}

type Finished = Extract<CommandProgress, { state: 'finished' }>;

/** A command run to its end through start/poll, with its output put back together. */
export type CommandOutcome = Omit<Finished, 'state'> & {
  handle: CommandHandle;
  /** How many polls it took (the last one reported finished). */
  polls: number;
};

/**
 * Start `command` and poll it until it reports finished, the way the engine does: each poll asks
 * for the output after the bytes already seen. Between polls `between` runs (advance a fake
 * clock; by default wait `intervalMs` of real time). Throws if it has not finished by
 * `timeoutMs` (real time), so a stuck command fails the test instead of hanging it.
 */
export async function runToEnd(
  iface: CommandInterface,
  commandId: string,
  command: ParsedCommand,
  options: {
    onPoll?: (progress: CommandProgress, handle: CommandHandle) => void | Promise<void>;
    between?: () => void | Promise<void>;
    intervalMs?: number;
    timeoutMs?: number;
  } = {},
): Promise<CommandOutcome> {
  const { intervalMs = 50, timeoutMs = 20_000 } = options;
  const between =
    options.between ?? (() => new Promise<void>((done) => setTimeout(done, intervalMs)));
  const handle = await iface.start(commandId, command);
  const deadline = performance.now() + timeoutMs;
  let stdout = '';
  let stderr = '';
  for (let polls = 1; ; polls++) {
    const progress = await iface.poll(handle, {
      stdout: Buffer.byteLength(stdout),
      stderr: Buffer.byteLength(stderr),
    });
    stdout += progress.stdout;
    stderr += progress.stderr;
    await options.onPoll?.(progress, handle);
    if (progress.state === 'finished') {
      const { state: _state, ...rest } = progress;
      return { ...rest, stdout, stderr, handle, polls };
    }
    if (performance.now() > deadline) {
      throw new Error(`command '${command.text}' did not finish within ${timeoutMs} ms`);
    }
    await between();
  }
}
