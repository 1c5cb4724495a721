/**
 * The blueprint contract suite: one set of expectations run over every registered type.
 * A new type must add a fixture below (the suite fails for a type without one).
 */
import { access } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { resourceDir } from '../../lambdas/blueprints/local-host/index.ts';
import { defaultRegistry } from '../../lambdas/blueprints/registry.ts';
import { hostTimeline, syntheticScopes } from '../../lambdas/blueprints/synthetic/index.ts';
import type {
  BlueprintType,
  ConfiguredBlueprint,
  ResourceTemplate,
} from '../../lambdas/core/blueprint.ts';
import type { Resource } from '../../lambdas/core/model.ts';
import {
  configuredBlueprint,
  makeLease,
  makeResource,
  type TestContext,
  testContext,
} from './support.ts';

interface Fixture {
  /** A config exercising the type's normal path (may rely on defaults for everything else). */
  config: unknown;
  /** How many live things (hosts, directories) exist for this resource right now. */
  liveCount(
    ctx: TestContext,
    blueprint: ConfiguredBlueprint<unknown>,
    resource: Resource,
  ): Promise<number>;
}

const fixtures: Record<string, Fixture> = {
  synthetic: {
    // A boot delay, so "eventually active" goes through pending.
    config: { activation: { delaySeconds: 30 } },
    async liveCount(ctx, blueprint, resource) {
      const bill = hostTimeline(await ctx.records.list(syntheticScopes.hosts(blueprint.id)));
      const created = bill.events.filter(
        (e) => e.event === 'created' && e.resourceId === resource.id,
      );
      expect(created.length).toBeLessThanOrEqual(1);
      return bill.alive.filter((h) => created.some((e) => e.hostId === h)).length;
    },
  },
  'local-host': {
    config: {},
    async liveCount(ctx, blueprint, resource) {
      const dir = resourceDir(ctx, blueprint as never, resource);
      return access(dir).then(
        () => 1,
        () => 0,
      );
    },
  },
};

const registry = defaultRegistry();

describe.each(registry.types())('blueprint contract: %s', (type) => {
  const plugin = registry.require(type) as BlueprintType<unknown>;
  const fixture = fixtures[type];
  let ctx: TestContext;
  let blueprint: ConfiguredBlueprint<unknown>;
  let resource: Resource;
  const lease = makeLease();

  beforeEach(async () => {
    ctx = await testContext();
    if (!fixture) return;
    blueprint = configuredBlueprint(plugin, fixture.config, { attributes: { pool: 'contract' } });
    resource = makeResource(blueprint, { id: `res-${type}` });
  });
  afterEach(async () => {
    await ctx.cleanup();
  });

  /** Call activateResource until it is active (bounded), as the workflow would. */
  async function activate(): Promise<Resource> {
    for (let attempt = 0; attempt < 100; attempt++) {
      const step = await plugin.activateResource(ctx, blueprint, resource);
      resource = { ...resource, data: { ...resource.data, ...step.data } };
      if (step.state === 'active') {
        resource = { ...resource, status: 'active' };
        return resource;
      }
      expect(step.checkAgainSeconds).toBeGreaterThan(0);
      expect(step.message).not.toBe('');
      ctx.clock.advance(step.checkAgainSeconds * 1000);
    }
    throw new Error(`${type}: resource still pending after 100 activation steps`);
  }

  it('has a contract fixture and describes itself', () => {
    expect(fixture, `add a fixture for '${type}' to contract.test.ts`).toBeDefined();
    expect(plugin.type).toBe(type);
    expect(plugin.description).not.toBe('');
    expect(plugin.resourceTypes.length).toBeGreaterThan(0);
  });

  it('config schema fills defaults from {} and refuses unknown keys by name', () => {
    expect(plugin.configSchema.safeParse({}).success).toBe(true);
    expect(plugin.configSchema.safeParse(fixture?.config).success).toBe(true);
    const bad = plugin.configSchema.safeParse({ surpriseKey: 1 });
    expect(bad.success).toBe(false);
    expect(z.prettifyError(bad.error as z.ZodError)).toContain('surpriseKey');
  });

  it('allocateResource returns a template without creating anything', async () => {
    const template: ResourceTemplate = await plugin.allocateResource(ctx, blueprint, lease);
    expect(template).toBeTypeOf('object');
    for (const value of Object.values(template.attributes ?? {}))
      expect(value).toBeTypeOf('string');
    for (const key of template.slotLocks ?? []) expect(key).toBeTypeOf('string');
    expect(await fixture!.liveCount(ctx, blueprint, resource)).toBe(0);
  });

  it('activateResource is idempotent and eventually active', async () => {
    const first = await plugin.activateResource(ctx, blueprint, resource);
    const again = await plugin.activateResource(ctx, blueprint, resource);
    expect(again.state).toBe(first.state);
    expect(await fixture!.liveCount(ctx, blueprint, resource)).toBe(1);
    await activate();
    await activate();
    expect(await fixture!.liveCount(ctx, blueprint, resource)).toBe(1);
  });

  it('runs `echo hello` through the command interface', async () => {
    await activate();
    await plugin.activateLease?.(ctx, blueprint, resource, lease);
    const command = plugin.command?.(ctx, blueprint, resource, lease);
    expect(command, `${type} offers a command interface`).toBeDefined();
    const result = await command!.run({ argv: ['echo', 'hello'], timeoutSeconds: 10 });
    expect(result).toMatchObject({ exitCode: 0, timedOut: false });
    expect(result.stdout).toContain('hello');
    expect(result.durationMs).toBeGreaterThanOrEqual(0);
    await plugin.releaseLease?.(ctx, blueprint, resource, lease);
  });

  it('round-trips a file through the filesystem interface', async () => {
    await activate();
    const fs = plugin.filesystem?.(ctx, blueprint, resource, lease);
    if (!fs) return;
    await fs.put('nested/dir/note.txt', 'first');
    await fs.put('nested/dir/note.txt', 'second');
    expect(Buffer.from(await fs.get('nested/dir/note.txt')).toString()).toBe('second');
    await expect(fs.get('nope.txt')).rejects.toMatchObject({ name: 'NotFoundError' });
  });

  it('is healthy after activation', async () => {
    await activate();
    expect(await plugin.healthCheck(ctx, blueprint, resource)).toEqual({ healthy: true });
  });

  it('destroyResource is idempotent; afterwards the resource is unhealthy and gone', async () => {
    await activate();
    await plugin.destroyResource(ctx, blueprint, resource);
    await plugin.destroyResource(ctx, blueprint, resource);
    expect(await fixture!.liveCount(ctx, blueprint, resource)).toBe(0);
    const health = await plugin.healthCheck(ctx, blueprint, resource);
    expect(health.healthy).toBe(false);
    if (!health.healthy) expect(health.reason).not.toBe('');
    const command = plugin.command?.(ctx, blueprint, resource, lease);
    await expect(command!.run({ argv: ['echo', 'late'] })).rejects.toMatchObject({
      name: 'ResourceGoneError',
    });
  });

  it('destroying a resource that never activated is a no-op', async () => {
    await plugin.destroyResource(ctx, blueprint, resource);
    expect(await fixture!.liveCount(ctx, blueprint, resource)).toBe(0);
  });

  it('refuses a malformed command spec with a ValidationError', async () => {
    await activate();
    const command = plugin.command!(ctx, blueprint, resource, lease);
    await expect(command.run({ argv: ['echo'], script: 'echo' })).rejects.toMatchObject({
      name: 'ValidationError',
    });
    await expect(command.run({})).rejects.toMatchObject({ name: 'ValidationError' });
  });
});
