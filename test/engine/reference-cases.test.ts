/**
 * The races and failure cases of the original Drydock discussions (shared/reference), one
 * named test each, on DynamoDB Local with a deterministic delivery order.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { hostTimeline, syntheticScopes } from '../../lambdas/blueprints/synthetic/index.ts';
import { reclaimResource } from '../../lambdas/core/allocator.ts';
import type { BlueprintType } from '../../lambdas/core/blueprint.ts';
import { makeEngine } from '../../lambdas/core/engine.ts';
import type { Store } from '../../lambdas/core/ports.ts';
import {
  createBlueprint,
  processUpdate,
  readLogs,
  releaseLease,
  requestLease,
  runSweep,
} from '../../lambdas/core/use-cases.ts';
import { runCommandToEnd } from '../support/commands.ts';
import { leaseNow, logTypes, syntheticPool, testSystem } from '../support/system.ts';

const ci = { principal: 'arn:aws:iam::123456789012:role/ci' };

describe('reference cases', () => {
  it('reclaim racing acquisition: no lease is handed a resource being reclaimed', async () => {
    const { engine, store, queue, engineWith } = await testSystem();
    await syntheticPool(engine, { limits: { maxResources: 1, idleTtlSeconds: 3600 } });

    // A first lease builds host R and gives it back: R is active and idle.
    const first = await requestLease(engine, { type: 'host', owner: ci.principal });
    await queue.drain(engine);
    const firstActive = await leaseNow(store, first.id);
    expect(firstActive.status).toBe('active');
    await releaseLease(engine, first.id, ci);
    await queue.drain(engine);
    const idle = (await store.getResource(firstActive.resourceId!))!;
    expect(idle).toMatchObject({ status: 'active', leaseCount: 0 });

    // L plans with R free; between its planning read and its transaction the sweep reclaims R.
    let reclaimedMidPlan = false;
    const racing = new Proxy(store, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (prop !== 'listLiveResources')
          return typeof value === 'function' ? value.bind(target) : value;
        return async (type: string) => {
          const planned = await target.listLiveResources(type);
          if (!reclaimedMidPlan) {
            reclaimedMidPlan = await reclaimResource(engine, idle, 'idle (reclaimed by the sweep)');
          }
          return planned;
        };
      },
    }) as Store;
    const lease = await requestLease(engine, { type: 'host', owner: ci.principal });
    const msg = queue.take()!;
    expect(msg).toMatchObject({ kind: 'lease', id: lease.id });
    await processUpdate(engineWith({ store: racing }), msg);
    expect(reclaimedMidPlan).toBe(true);
    expect((await leaseNow(store, lease.id)).status).toBe('pending'); // lost the race, waits

    await queue.drain(engine);
    const served = await leaseNow(store, lease.id);
    expect(served.status).toBe('active');
    expect(served.resourceId).not.toBe(idle.id);
    expect((await store.getResource(idle.id))!.status).toBe('destroyed');
    const acquired = (await readLogs(engine, lease.id)).filter((e) => e.type === 'lease.acquired');
    expect(acquired.map((e) => e.data?.resourceId)).toEqual([served.resourceId]);

    // The other order: a lease holds R2, so a reclaim planned on a stale "idle" view fails.
    const holding = (await store.getResource(served.resourceId!))!;
    expect(await reclaimResource(engine, { ...holding, leaseCount: 0 }, 'stale idle view')).toBe(
      false,
    );
    expect((await store.getResource(holding.id))!.status).toBe('active');
    expect((await leaseNow(store, lease.id)).status).toBe('active');
  });

  it("a pending resource is matched by other leases before it activates, without its creator's lease being stolen", async () => {
    const { engine, store, queue } = await testSystem();
    // Slow hosts: setup takes 30 s, so the resource stays pending while others arrive.
    await syntheticPool(engine, {
      limits: { maxResources: 2, leasesPerResource: 1 },
      config: { activation: { delaySeconds: 30 } },
    });
    const creator = await requestLease(engine, { type: 'host', owner: ci.principal });
    await processUpdate(engine, queue.take()!);
    const afterCreate = await leaseNow(store, creator.id);
    expect(afterCreate.status).toBe('acquired');
    const pending = (await store.getResource(afterCreate.resourceId!))!;
    expect(pending.status).toBe('pending');
    expect(pending.attributes.platform).toBe('linux'); // matchable at once

    const other = await requestLease(engine, { type: 'host', owner: ci.principal });
    const otherMsg = (() => {
      for (;;) {
        const m = queue.take()!;
        if (m.id === other.id) return m;
        queue.redeliver(m);
      }
    })();
    await processUpdate(engine, otherMsg);
    const otherLease = await leaseNow(store, other.id);
    expect(otherLease.status).toBe('acquired');
    expect(otherLease.resourceId).not.toBe(pending.id); // the creator's slot was not stolen
    const [slot] = await store.getSlotLocks([`resource:${pending.id}:lease-slot:0`]);
    expect(slot?.ownerId).toBe(creator.id);

    // A shared blueprint at its limit: a second lease joins the pending resource's free slot.
    await createBlueprint(engine, {
      id: 'shared',
      type: 'synthetic',
      resourceType: 'host',
      attributes: { platform: 'bsd' },
      limits: { maxResources: 1, leasesPerResource: 2 },
      config: { activation: { delaySeconds: 30 } },
    });
    const a = await requestLease(engine, {
      type: 'host',
      owner: ci.principal,
      attributes: { platform: 'bsd' },
    });
    const b = await requestLease(engine, {
      type: 'host',
      owner: ci.principal,
      attributes: { platform: 'bsd' },
    });
    await queue.drain(engine, {
      until: async () =>
        (await leaseNow(store, a.id)).status === 'acquired' &&
        (await leaseNow(store, b.id)).status === 'acquired',
    });
    const [la, lb] = [await leaseNow(store, a.id), await leaseNow(store, b.id)];
    expect(la.resourceId).toBe(lb.resourceId);
    expect((await store.getResource(la.resourceId!))!.status).toBe('pending');

    await queue.drain(engine);
    for (const id of [creator.id, other.id, a.id, b.id]) {
      expect((await leaseNow(store, id)).status).toBe('active');
    }
    expect((await leaseNow(store, creator.id)).resourceId).toBe(pending.id);
  });

  it('allocation failing after the blueprint said it could: the lease keeps waiting, the failure is logged on the blueprint', async () => {
    const { engine, store, queue } = await testSystem({ breakerThreshold: 3 });
    await syntheticPool(engine, {
      limits: { maxResources: 1 },
      config: { allocation: { failTimes: 2, failMessage: 'InsufficientInstanceCapacity' } },
    });
    const lease = await requestLease(engine, { type: 'host', owner: ci.principal });
    const statuses: string[] = [];
    await queue.drain(engine, {
      until: async () => {
        const l = await leaseNow(store, lease.id);
        statuses.push(l.status);
        return l.status === 'active';
      },
    });
    expect(statuses).not.toContain('broken');
    expect(statuses).not.toContain('destroyed');
    expect((await leaseNow(store, lease.id)).status).toBe('active');

    const blueprintLog = await readLogs(engine, 'pool');
    const failures = blueprintLog.filter((e) => e.type === 'blueprint.allocation-failed');
    expect(failures).toHaveLength(2);
    expect(failures[0]!.message).toContain('InsufficientInstanceCapacity');
    const waits = (await readLogs(engine, lease.id)).filter((e) => e.type === 'lease.waiting');
    expect(waits[0]!.message).toMatch(
      /^waiting: blueprint 'pool' failed to allocate a host \(InsufficientInstanceCapacity.*\); will retry; no leases ahead of this one$/,
    );
    expect((await store.getBlueprint('pool'))!.health.failureCount).toBe(0); // success closed it
  });

  it('repeated allocation failures open the blueprint circuit breaker and the lease says so', async () => {
    const { engine, store, queue } = await testSystem({
      breakerThreshold: 2,
      breakerBaseSeconds: 20,
    });
    await syntheticPool(engine, {
      limits: { maxResources: 1 },
      config: { allocation: { failTimes: 3, failMessage: 'capacity' } },
    });
    const lease = await requestLease(engine, { type: 'host', owner: ci.principal });
    await queue.drain(engine);
    expect((await leaseNow(store, lease.id)).status).toBe('active');
    const messages = (await readLogs(engine, lease.id)).map((e) => e.message);
    expect(messages.some((m) => /backing off after 2 failed allocations/.test(m))).toBe(true);
    expect(await logTypes(store, 'pool')).toContain('blueprint.backing-off');
    expect(await logTypes(store, 'pool')).toContain('blueprint.recovered');
  });

  it('resource activation failing: the resource breaks and its leases are re-allocated elsewhere', async () => {
    const { engine, store, queue } = await testSystem();
    await syntheticPool(engine, {
      limits: { maxResources: 2 },
      config: { activation: { failTimes: 1, failMessage: 'cloud-init exploded' } },
    });
    const lease = await requestLease(engine, { type: 'host', owner: ci.principal });
    await queue.drain(engine);
    const served = await leaseNow(store, lease.id);
    expect(served.status).toBe('active');
    expect(served.requeues).toBe(1);
    const requeued = (await readLogs(engine, lease.id)).find((e) => e.type === 'lease.requeued');
    expect(requeued?.message).toMatch(
      /broke \(activation failed: .*cloud-init exploded.*\).*allocating again/,
    );
    const firstHost = requeued!.data!.resourceId as string;
    expect(served.resourceId).not.toBe(firstHost);
    const broken = (await store.getResource(firstHost))!;
    expect(broken.status).toBe('destroyed');
    expect(broken.endReason).toContain('cloud-init exploded');
    expect(await store.getSlotLocks([`resource:${firstHost}:lease-slot:0`])).toEqual([]);
  });

  it('lease activation failing: the lease is broken with the reason', async () => {
    const { engine, store, queue } = await testSystem();
    await syntheticPool(engine, {
      limits: { maxResources: 1 },
      config: { leaseActivation: { failTimes: 1, failMessage: 'could not create build user' } },
    });
    const lease = await requestLease(engine, { type: 'host', owner: ci.principal });
    await queue.drain(engine);
    const broken = await leaseNow(store, lease.id);
    expect(broken.status).toBe('destroyed');
    expect(broken.endReason).toMatch(/activation on res-\w+ failed: .*could not create build user/);
    expect(await logTypes(store, lease.id)).toContain('lease.activation-failed');

    // The host was suspect, passed its health check, and serves the next lease.
    const host = (await store.getResource(broken.resourceId!))!;
    expect(host.status).toBe('active');
    expect(host.suspectSince).toBeUndefined();
    expect(await logTypes(store, host.id)).toEqual(
      expect.arrayContaining(['resource.suspect', 'resource.healthy']),
    );
    const next = await requestLease(engine, { type: 'host', owner: ci.principal });
    await queue.drain(engine);
    expect(await leaseNow(store, next.id)).toMatchObject({ status: 'active', resourceId: host.id });
  });

  it('a host vanishing under an active lease: the lease breaks with a reason the holder can read', async () => {
    const { engine, store, queue } = await testSystem();
    await syntheticPool(engine, {
      limits: { maxResources: 1 },
      config: { vanish: { afterCommands: 1 } },
    });
    const lease = await requestLease(engine, { type: 'host', owner: ci.principal });
    await queue.drain(engine);
    expect((await leaseNow(store, lease.id)).status).toBe('active');

    const ok = await runCommandToEnd(engine, lease.id, { argv: ['echo', 'first'] }, ci);
    expect(ok.exitCode).toBe(0);
    await expect(
      runCommandToEnd(engine, lease.id, { argv: ['echo', 'second'] }, ci),
    ).rejects.toThrow(/vanished/);

    await queue.drain(engine);
    const ended = await leaseNow(store, lease.id);
    expect(ended.status).toBe('destroyed');
    expect(ended.endReason).toMatch(/broke: failed its health check: .*vanished/);
    const brokenLog = (await readLogs(engine, lease.id)).find((e) => e.type === 'lease.broken');
    expect(brokenLog?.message).toMatch(/vanished/);
    expect((await store.getResource(ended.resourceId!))!.status).toBe('destroyed');
    const bill = hostTimeline(await store.listRecords(syntheticScopes.hosts('pool')));
    expect(bill.alive).toEqual([]);
  });

  it('a blueprint that can never serve a request: the lease breaks at once, naming why', async () => {
    const { engine, store, queue } = await testSystem();
    await syntheticPool(engine);
    const windows = await requestLease(engine, {
      type: 'host',
      owner: ci.principal,
      attributes: { platform: 'windows' },
    });
    const copy = await requestLease(engine, { type: 'working-copy', owner: ci.principal });
    const steps = await queue.drain(engine);
    expect(steps).toBeLessThanOrEqual(2); // one update each, no waiting
    const w = await leaseNow(store, windows.id);
    expect(w.status).toBe('destroyed');
    expect(w.endReason).toBe(
      "no blueprint can ever serve this lease (type host, platform=windows): blueprint 'pool' has platform=linux, lease wants platform=windows",
    );
    expect((await leaseNow(store, copy.id)).endReason).toMatch(
      /no blueprint builds resources of type 'working-copy'/,
    );
  });
});

describe('waiting', () => {
  it('a waiting lease says why in a sentence, with its place in line, and is served oldest first', async () => {
    // Each lease's first attempt is the subject here: no joining the line at request (line.ts).
    const { engine, store, queue } = await testSystem({ joinLine: false });
    await syntheticPool(engine, { id: 'linux-pool', limits: { maxResources: 1 } });
    const holder = await requestLease(engine, { type: 'host', owner: ci.principal });
    await queue.drain(engine);
    const second = await requestLease(engine, { type: 'host', owner: ci.principal });
    const third = await requestLease(engine, { type: 'host', owner: ci.principal });
    await queue.drain(engine, {
      until: async () => (await leaseNow(store, third.id)).waitReason !== undefined,
    });
    const said = (id: string) =>
      readLogs(engine, id).then((l) =>
        l.filter((e) => e.type === 'lease.waiting').map((e) => e.message),
      );
    expect(await said(second.id)).toEqual([
      "waiting: blueprint 'linux-pool' is at its limit of 1 host, all leased; no leases ahead of this one",
    ]);
    expect(await said(third.id)).toEqual([
      "waiting: blueprint 'linux-pool' is at its limit of 1 host, all leased; 1 lease ahead of this one",
    ]);

    // The freed host goes to the lease that has waited longest.
    await releaseLease(engine, holder.id, ci);
    await queue.drain(engine, {
      until: async () => (await leaseNow(store, second.id)).status === 'active',
    });
    expect((await leaseNow(store, third.id)).status).toBe('pending');
    await releaseLease(engine, second.id, ci);
    await queue.drain(engine, {
      until: async () => (await leaseNow(store, third.id)).status === 'active',
    });
    expect((await leaseNow(store, third.id)).status).toBe('active');
  });
});

describe('lost messages', () => {
  it('a lease whose first message is lost is found by the sweep and still becomes active', async () => {
    const { engine, store, queue, clock } = await testSystem();
    await syntheticPool(engine);
    queue.dropNext((m) => m.kind === 'lease');
    const lease = await requestLease(engine, { type: 'host', owner: ci.principal });
    await queue.drain(engine);
    expect((await leaseNow(store, lease.id)).status).toBe('pending');

    clock.advance(61_000); // past strandAfterSeconds
    const report = await runSweep(engine);
    expect(report.redrivenLeases).toBe(1);
    await queue.drain(engine);
    expect((await leaseNow(store, lease.id)).status).toBe('active');
  });

  it('an update message dropped mid-allocation (resource setup) is re-driven by the sweep', async () => {
    const { engine, store, queue, clock } = await testSystem();
    await syntheticPool(engine, { config: { activation: { delaySeconds: 5 } } });
    const lease = await requestLease(engine, { type: 'host', owner: ci.principal });
    queue.dropNext((m) => m.kind === 'resource'); // the "check setup again" message
    await queue.drain(engine);
    const stuck = await leaseNow(store, lease.id);
    expect(stuck.status).toBe('acquired');
    expect((await store.getResource(stuck.resourceId!))!.status).toBe('pending');

    clock.advance(61_000);
    const report = await runSweep(engine);
    expect(report.redrivenResources + report.redrivenLeases).toBeGreaterThanOrEqual(1);
    await queue.drain(engine);
    expect((await leaseNow(store, lease.id)).status).toBe('active');
  });
});

describe('setup deadline', () => {
  it('a setup workflow that never reports back: the sweep breaks the resource at its deadline and the lease is allocated again', async () => {
    const { engine, store, queue, clock } = await testSystem();
    const started: string[] = [];
    // The workflow starts and then dies silently (a stand-in for a timed-out execution).
    const withWorkflow = makeEngine({
      store,
      queue,
      clock,
      registry: engine.registry,
      dataDir: engine.ctx.dataDir,
      settings: engine.settings,
      startSetup: async (resourceId) => {
        started.push(resourceId);
      },
    });
    await syntheticPool(withWorkflow, {
      limits: { maxResources: 2, setupTimeoutSeconds: 30 },
      config: { activation: { delaySeconds: 5 } },
    });
    const lease = await requestLease(withWorkflow, { type: 'host', owner: ci.principal });
    await queue.drain(withWorkflow);
    const stuck = await leaseNow(store, lease.id);
    expect(stuck.status).toBe('acquired');
    expect(started).toEqual([stuck.resourceId]);

    clock.advance(61_000); // past both the setup deadline and the stranded-state bound
    await runSweep(withWorkflow);
    await queue.drain(withWorkflow, {
      until: async () => (await store.getResource(stuck.resourceId!))!.status !== 'pending',
    });
    const host = (await store.getResource(stuck.resourceId!))!;
    expect(['broken', 'destroyed']).toContain(host.status);
    expect(host.endReason).toBe('setup did not finish within 30s');
    await queue.drain(withWorkflow, {
      until: async () => (await leaseNow(store, lease.id)).requeues === 1,
    });
    const again = await leaseNow(store, lease.id);
    expect(again.requeues).toBe(1);
    expect(again.resourceId).not.toBe(host.id);
  });
});

describe('local-host leases', () => {
  it('run echo and a command that exceeds its timeout, reporting exit code, output and the timeout', async () => {
    const { engine, store, queue } = await testSystem();
    await createBlueprint(engine, {
      id: 'this-machine',
      type: 'local-host',
      resourceType: 'host',
      attributes: { platform: process.platform },
    });
    const lease = await requestLease(engine, {
      type: 'host',
      owner: ci.principal,
      attributes: { platform: process.platform },
    });
    await queue.drain(engine);
    expect((await leaseNow(store, lease.id)).status).toBe('active');

    const echo = await runCommandToEnd(
      engine,
      lease.id,
      { argv: ['echo', 'hello from drydock'] },
      ci,
    );
    expect(echo).toMatchObject({ exitCode: 0, stdout: 'hello from drydock\n', timedOut: false });

    const slow = await runCommandToEnd(
      engine,
      lease.id,
      { script: 'echo started; sleep 30', timeoutSeconds: 1 },
      ci,
    );
    expect(slow.timedOut).toBe(true);
    expect(slow.exitCode).toBeNull();
    expect(slow.stdout).toBe('started\n');
    expect(slow.durationMs).toBeLessThan(10_000);

    const log = (await readLogs(engine, lease.id))
      .filter((e) => e.type === 'lease.command')
      .map((e) => e.message);
    expect(log).toEqual([
      expect.stringMatching(/^command `echo hello from drydock` exited 0 in \d+ms$/),
      'command `echo started; sleep 30` timed out after 1s and was killed',
    ]);

    await releaseLease(engine, lease.id, ci);
    await queue.drain(engine);
    expect((await leaseNow(store, lease.id)).status).toBe('destroyed');
    await expect(runCommandToEnd(engine, lease.id, { argv: ['true'] }, ci)).rejects.toThrow(
      /is destroyed, not active/,
    );
  });
});

describe('attributes a lease asks for', () => {
  it('an attribute no blueprint sets (gpu=yes on a linux-only pool): the lease breaks naming it, no host is allocated', async () => {
    const { engine, store, queue } = await testSystem();
    await syntheticPool(engine);
    const gpu = await requestLease(engine, {
      type: 'host',
      owner: ci.principal,
      attributes: { gpu: 'yes' },
    });
    const again = await requestLease(engine, {
      type: 'host',
      owner: ci.principal,
      attributes: { gpu: 'yes', platform: 'linux' },
    });
    await queue.drain(engine);
    for (const id of [gpu.id, again.id]) {
      const l = await leaseNow(store, id);
      expect(l.status).toBe('destroyed');
      expect(l.resourceId).toBeUndefined();
      expect(l.endReason).toMatch(/blueprint 'pool' never sets 'gpu' on its resources/);
    }
    expect((await leaseNow(store, gpu.id)).endReason).toBe(
      "no blueprint can ever serve this lease (type host, gpu=yes): blueprint 'pool' never sets 'gpu' on its resources, lease wants gpu=yes",
    );
    expect(await store.listLiveResources('host')).toEqual([]);
    expect(hostTimeline(await store.listRecords(syntheticScopes.hosts('pool'))).alive).toEqual([]);
  });

  it('an attribute only another blueprint declares: served by that one only, on a host that has it', async () => {
    const { engine, store, queue } = await testSystem();
    await syntheticPool(engine, { limits: { maxResources: 3, leasesPerResource: 4 } });
    await syntheticPool(engine, {
      id: 'gpu-pool',
      attributes: { platform: 'linux', gpu: 'yes' },
      limits: { maxResources: 1, leasesPerResource: 1 },
    });
    // A plain lease first, so an idle host without gpu exists when the gpu leases come.
    const plain = await requestLease(engine, {
      type: 'host',
      owner: ci.principal,
      blueprintIds: ['pool'],
    });
    await queue.drain(engine);
    const gpu = await requestLease(engine, {
      type: 'host',
      owner: ci.principal,
      attributes: { gpu: 'yes' },
    });
    const second = await requestLease(engine, {
      type: 'host',
      owner: ci.principal,
      attributes: { gpu: 'yes' },
    });
    await queue.drain(engine, {
      until: async () =>
        (await leaseNow(store, gpu.id)).status === 'active' &&
        (await leaseNow(store, second.id)).waitReason !== undefined,
    });
    const served = await leaseNow(store, gpu.id);
    expect(served.status).toBe('active');
    expect(served.blueprintId).toBe('gpu-pool');
    const host = await store.getResource(served.resourceId!);
    expect(host!.attributes).toMatchObject({ gpu: 'yes', platform: 'linux' });
    // The second waits for the gpu host rather than taking a shared host without gpu.
    const waiting = await leaseNow(store, second.id);
    expect(waiting.status).toBe('pending');
    expect(waiting.waitReason).toMatch(/gpu-pool/);
    const live = await store.listLiveResources('host');
    expect(live.filter((r) => r.attributes.gpu !== 'yes').map((r) => r.id)).toEqual([
      (await leaseNow(store, plain.id)).resourceId,
    ]);
  });

  it('a plug-in template that would not satisfy the lease: nothing is allocated, the lease waits naming the attribute', async () => {
    const zoned: BlueprintType<Record<string, never>> = {
      type: 'zoned-test',
      description: 'Makes every host in zone a (test only)',
      resourceTypes: ['host'],
      configSchema: z.object({}).strict(),
      producesAttributes: () => ['zone'],
      async allocateResource() {
        return { attributes: { zone: 'a' } };
      },
      async activateResource() {
        return { state: 'active' };
      },
      async destroyResource() {},
      async healthCheck() {
        return { healthy: true };
      },
    };
    const { engine, store, queue } = await testSystem({}, { plugins: [zoned] });
    await createBlueprint(engine, {
      id: 'zoned',
      type: 'zoned-test',
      resourceType: 'host',
      limits: { maxResources: 2, leasesPerResource: 1, idleGraceSeconds: 0 },
    });
    const b = await requestLease(engine, {
      type: 'host',
      owner: ci.principal,
      attributes: { zone: 'b' },
    });
    await queue.drain(engine, {
      until: async () => (await leaseNow(store, b.id)).waitReason !== undefined,
    });
    const waiting = await leaseNow(store, b.id);
    expect(waiting.status).toBe('pending');
    expect(waiting.waitReason).toMatch(/its new resource would have zone=a, lease wants zone=b/);
    expect(await store.listLiveResources('host')).toEqual([]);
    const a = await requestLease(engine, {
      type: 'host',
      owner: ci.principal,
      attributes: { zone: 'a' },
    });
    await queue.drain(engine, {
      until: async () => (await leaseNow(store, a.id)).status === 'active',
    });
    const host = await store.getResource((await leaseNow(store, a.id)).resourceId!);
    expect(host!.attributes).toEqual({ zone: 'a' });
  });
});
