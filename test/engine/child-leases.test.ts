/**
 * The plug-in ports a working copy needs, on the real engine and store: a resource that holds a
 * lease of its own (`ctx.leases`), runs a command on it (`ctx.commandsOn`), is woken when that
 * lease becomes active or ends (never polled), and gives it back when it is destroyed.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { BlueprintType, CommandProgress } from '../../lambdas/core/blueprint.ts';
import { parseCommandSpec } from '../../lambdas/core/command-spec.ts';
import {
  createBlueprint,
  readLogs,
  releaseLease,
  requestLease,
} from '../../lambdas/core/use-cases.ts';
import { leaseNow, syntheticPool, testSystem } from '../support/system.ts';

/** Activation re-checks only after 15 minutes (the longest delay): sooner was a wake-up. */
const RECHECK_SECONDS = 900;

/** A test-only type: each resource leases a host and runs `hostname` on it before it is active. */
const nestedType: BlueprintType<Record<string, never>> = {
  type: 'nested-test',
  description: 'A resource that leases a host for itself (test only)',
  resourceTypes: ['nested'],
  configSchema: z.object({}).strict(),
  async allocateResource() {
    return {};
  },
  async activateResource(ctx, _bp, resource) {
    const child = await ctx.leases.request(resource, { key: 'host', type: 'host' });
    if (child.status !== 'active') {
      return {
        state: 'pending',
        checkAgainSeconds: RECHECK_SECONDS,
        message: `waiting for host lease ${child.id} (${child.status})`,
        data: { hostLease: child.id },
      };
    }
    const commands = await ctx.commandsOn(child.id);
    const handle = await commands.start(
      `${resource.id}-probe`,
      parseCommandSpec({ argv: ['hostname'] }, 30),
    );
    const progress: CommandProgress = await commands.poll(handle, { stdout: 0, stderr: 0 });
    if (progress.state !== 'finished') {
      return { state: 'pending', checkAgainSeconds: 1, message: 'probing the host' };
    }
    return { state: 'active', data: { hostLease: child.id, probe: progress.stdout } };
  },
  async destroyResource(ctx, _bp, resource) {
    const hostLease = resource.data.hostLease;
    if (typeof hostLease === 'string') await ctx.leases.release(hostLease);
  },
  async healthCheck() {
    return { healthy: true };
  },
};

describe('resources that hold leases of their own', () => {
  it('a child lease wakes its parent, serves commands, and is released with it', async () => {
    const { engine, store, queue, clock } = await testSystem({}, { plugins: [nestedType] });
    // A host pool whose hosts take 20 s to boot: the parent waits on its host lease.
    await syntheticPool(engine, { config: { activation: { delaySeconds: 20 } } });
    await createBlueprint(engine, {
      id: 'nested',
      type: 'nested-test',
      resourceType: 'nested',
      limits: { maxResources: 1, leasesPerResource: 1, reclaimOnRelease: true },
    });
    const startedAt = clock.now();
    const lease = await requestLease(engine, { type: 'nested', owner: 'ci' });
    await queue.drain(engine);

    const active = await leaseNow(store, lease.id);
    expect(active.status).toBe('active');
    const parent = await store.getResource(active.resourceId as string);
    const hostLeaseId = parent?.data.hostLease as string;
    expect(parent?.data.probe).toMatch(/\S/);
    // Woken by its host lease (which booted in 20 s), not by its 15-minute re-check.
    expect(Date.parse(parent?.activatedAt as string) - startedAt).toBeLessThan(120_000);
    const hostLease = await leaseNow(store, hostLeaseId);
    expect(hostLease).toMatchObject({ status: 'active', owner: `drydock:resource/${parent?.id}` });
    const parentLog = (await readLogs(engine, parent?.id as string)).map((e) => e.message);
    expect(parentLog.some((m) => m.includes(`waiting for host lease ${hostLeaseId}`))).toBe(true);

    // Asking again (a retried activation) finds the same child lease.
    const again = await engine.ctx.leases.request(parent!, { key: 'host', type: 'host' });
    expect(again.id).toBe(hostLeaseId);

    await releaseLease(engine, lease.id, { principal: 'ci' });
    await queue.drain(engine);
    expect((await store.getResource(parent?.id as string))?.status).toBe('destroyed');
    const released = await leaseNow(store, hostLeaseId);
    expect(released.status).toBe('destroyed');
    expect(released.endReason).toBe(`released by drydock:resource/${parent?.id}`);
  });

  it('commandsOn refuses a lease that is not active, saying so', async () => {
    const { engine } = await testSystem();
    await syntheticPool(engine);
    const lease = await requestLease(engine, { type: 'host', owner: 'ci' });
    await expect(engine.ctx.commandsOn(lease.id)).rejects.toThrow(/is pending, not active/);
    await expect(engine.ctx.commandsOn('lease-nope')).rejects.toThrow(/does not exist/);
  });
});
