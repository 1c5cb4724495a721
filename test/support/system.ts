/**
 * Builds an engine for tests: the real DynamoDB store (DynamoDB Local, a fresh table), the
 * real blueprint plug-ins, and the deterministic ManualQueue on a virtual clock.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { localRegistry } from '../../lambdas/blueprints/registry.ts';
import type {
  BlueprintRegistry,
  BlueprintType,
  CloudClients,
} from '../../lambdas/core/blueprint.ts';
import { type Engine, type EngineSettings, makeEngine } from '../../lambdas/core/engine.ts';
import type { Lease, LogEvent } from '../../lambdas/core/model.ts';
import type { Store, WorkQueue } from '../../lambdas/core/ports.ts';
import { type BlueprintInput, createBlueprint } from '../../lambdas/core/use-cases.ts';
import type { DynamoStore } from '../../lambdas/store/dynamo-store.ts';
import { makeStore } from './env.ts';
import { ManualQueue, TestClock } from './manual-queue.ts';

/** Fast, test-sized settings: no caching (tests change blueprints), short backoff. */
export const TEST_SETTINGS: Partial<EngineSettings> = {
  blueprintCacheMs: 0,
  backoffBaseSeconds: 1,
  backoffCapSeconds: 8,
  strandAfterSeconds: 60,
};

export interface TestSystem {
  store: DynamoStore;
  clock: TestClock;
  queue: ManualQueue;
  engine: Engine;
  dataDir: string;
  /** Another engine over the same clock and queue but a different store/queue wrapper. */
  engineWith(parts: { store?: Store; queue?: WorkQueue }): Engine;
}

export async function testSystem(
  settings: Partial<EngineSettings> = {},
  options: {
    // biome-ignore lint/suspicious/noExplicitAny: plug-ins of any config type, as the registry takes them.
    plugins?: ReadonlyArray<BlueprintType<any>>;
    /** Instead of the local registry (e.g. a plug-in built with test dependencies). */
    registry?: BlueprintRegistry;
    /** Cloud clients for plug-ins (the shared AWS fake's). */
    clients?: CloudClients;
    /**
     * Where setups of blueprints that activate later go (the setup workflow's StartExecution on
     * AWS). Without it the queue drives setup itself.
     */
    startSetup?: (resourceId: string) => Promise<void>;
  } = {},
): Promise<TestSystem> {
  const clock = new TestClock();
  const store = await makeStore({ clock });
  const queue = new ManualQueue(clock);
  const dataDir = mkdtempSync(join(tmpdir(), 'drydock-test-'));
  const registry = options.registry ?? localRegistry();
  for (const plugin of options.plugins ?? []) registry.register(plugin);
  const build = (parts: { store?: Store; queue?: WorkQueue }) =>
    makeEngine({
      store: parts.store ?? store,
      queue: parts.queue ?? queue,
      clock,
      registry,
      dataDir,
      settings: { ...TEST_SETTINGS, ...settings },
      random: () => 0.5,
      ...(options.clients ? { clients: options.clients } : {}),
      ...(options.startSetup ? { startSetup: options.startSetup } : {}),
    });
  return { store, clock, queue, engine: build({}), dataDir, engineWith: build };
}

export function syntheticPool(
  engine: Engine,
  overrides: Partial<BlueprintInput> & {
    limits?: Record<string, unknown>;
    config?: Record<string, unknown>;
  } = {},
) {
  return createBlueprint(engine, {
    id: 'pool',
    type: 'synthetic',
    resourceType: 'host',
    attributes: { platform: 'linux' },
    ...overrides,
    limits: { maxResources: 2, leasesPerResource: 1, idleGraceSeconds: 0, ...overrides.limits },
  });
}

export async function leaseNow(store: Store, id: string): Promise<Lease> {
  const lease = await store.getLease(id);
  if (!lease) throw new Error(`lease ${id} is missing`);
  return lease;
}

export async function logTypes(store: Store, id: string): Promise<string[]> {
  return (await store.listLogs(id, { limit: 1000 })).map((e: LogEvent) => e.type);
}
