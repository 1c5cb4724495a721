/**
 * Joining the line at request time (lambdas/core/line.ts, issue 14): a lease that can only
 * wait behind older leases wanting the same is written as waiting, gets no first attempt, and
 * is served by the wake-ups in its turn; a lease that wants something else, or that stands
 * behind a wait no wake-up ends, gets its first attempt; and a lost wake-up or a lost message
 * costs a joined lease time, never the lease.
 */
import { describe, expect, it } from 'vitest';
import type { Engine } from '../../lambdas/core/engine.ts';
import type { Lease } from '../../lambdas/core/model.ts';
import {
  processUpdate,
  readLogs,
  releaseLease,
  requestLease,
  runSweep,
} from '../../lambdas/core/use-cases.ts';
import type { ManualQueue } from '../support/manual-queue.ts';
import { countingStore as counting, takeFor } from '../support/recording.ts';
import { leaseNow, syntheticPool, testSystem } from '../support/system.ts';

const ci = { principal: 'arn:aws:iam::123456789012:role/ci' };

const sentFor = (queue: ManualQueue, id: string) => queue.sent.filter((m) => m.id === id);

/** A lease's first attempt is an immediate message carrying the lease (leases.ts). */
function hadFirstAttemptMessage(queue: ManualQueue, id: string): boolean {
  return sentFor(queue, id).some((m) => m.reason === 'requested' && !m.delaySeconds);
}

async function waitingLines(engine: Engine, id: string): Promise<string[]> {
  return (await readLogs(engine, id))
    .filter((e) => e.type === 'lease.waiting')
    .map((e) => e.message);
}

/** A full pool of one host (held by `holder`) and `older` waiting for it after its attempt. */
async function fullPoolWithWaiter(settings = {}) {
  const system = await testSystem(settings);
  const { engine, queue, store } = system;
  await syntheticPool(engine, { limits: { maxResources: 1, idleTtlSeconds: 3600 } });
  const holder = await requestLease(engine, { type: 'host', owner: ci.principal });
  await queue.drain(engine);
  const older = await requestLease(engine, { type: 'host', owner: ci.principal });
  expect(hadFirstAttemptMessage(queue, older.id)).toBe(true);
  await processUpdate(engine, takeFor(queue, older.id));
  expect(await leaseNow(store, older.id)).toMatchObject({ waitSeq: 1, waitingFor: 'slot' });
  return { ...system, holder, older };
}

const ids = (leases: Lease[]) => leases.map((l) => l.id);

describe('joining the line at request time', () => {
  it('a lease requested while an older one waits on a full pool joins the line without an attempt, and is served after it', async () => {
    const { engine, store, queue, holder, older } = await fullPoolWithWaiter();
    const joiner = await requestLease(engine, { type: 'host', owner: ci.principal });

    // Written as waiting (wake-ups find it), with only the wait chain's safety net queued.
    expect(joiner).toMatchObject({ status: 'pending', waitSeq: 1, waitingFor: 'line' });
    expect(hadFirstAttemptMessage(queue, joiner.id)).toBe(false);
    const chain = sentFor(queue, joiner.id);
    expect(chain).toEqual([expect.objectContaining({ waitSeq: 1, reason: 'in line' })]);
    expect(chain[0]!.delaySeconds).toBeGreaterThan(0);
    expect(chain[0]!.lease).toBeUndefined();
    // Its log says why it waits and where it stands.
    expect(await waitingLines(engine, joiner.id)).toEqual([
      `waiting: blueprint 'pool' is at its limit of 1 host, all leased (as lease ${older.id}, ahead in line, last saw it); 1 lease ahead of this one`,
    ]);
    expect((await leaseNow(store, joiner.id)).waitReason).toMatch(/at its limit of 1 host/);

    // The freed slot goes to the older lease; the joiner has had no update at all yet.
    await releaseLease(engine, holder.id, ci);
    await queue.drain(engine, {
      until: async () => (await leaseNow(store, older.id)).status === 'active',
    });
    expect((await leaseNow(store, joiner.id)).status).toBe('pending');
    expect(queue.delivered.filter((m) => m.id === joiner.id)).toEqual([]);

    // The next freed slot wakes the joiner, and that wake-up serves it.
    await releaseLease(engine, older.id, ci);
    await queue.drain(engine, {
      until: async () => (await leaseNow(store, joiner.id)).status === 'active',
    });
    expect((await leaseNow(store, joiner.id)).status).toBe('active');
    expect(queue.delivered.find((m) => m.id === joiner.id)?.wake).toBe(true);
  });

  it('a burst larger than the pool: leases beyond its slots join the line at once and are served in request order', async () => {
    const { engine, store, queue } = await testSystem();
    await syntheticPool(engine, { limits: { maxResources: 2, idleTtlSeconds: 3600 } });
    const leases: Lease[] = [];
    for (let i = 0; i < 5; i++) {
      leases.push(await requestLease(engine, { type: 'host', owner: ci.principal }));
    }
    // Nobody has waited yet: the older leases alone fill both slots of the pool.
    const [first, second, ...rest] = leases as [Lease, Lease, ...Lease[]];
    expect(hadFirstAttemptMessage(queue, first.id)).toBe(true);
    expect(hadFirstAttemptMessage(queue, second.id)).toBe(true);
    for (const lease of rest) {
      expect(hadFirstAttemptMessage(queue, lease.id)).toBe(false);
      expect(lease).toMatchObject({ waitSeq: 1 });
    }
    expect(rest[0]!.waitReason).toBe(
      "2 older leases that want the same fill all 2 host slots of blueprint 'pool'",
    );
    expect(await waitingLines(engine, rest[2]!.id)).toEqual([
      "waiting: 4 older leases that want the same fill all 2 host slots of blueprint 'pool'; 4 leases ahead of this one",
    ]);

    await queue.drain(engine, {
      until: async () =>
        (await leaseNow(store, first.id)).status === 'active' &&
        (await leaseNow(store, second.id)).status === 'active',
    });
    // Each release serves the oldest lease still in line, whatever the chain messages do.
    const served: string[] = [];
    for (let i = 0; i < rest.length; i++) {
      await releaseLease(engine, leases[i]!.id, ci);
      await queue.drain(engine, {
        until: async () => {
          const pending = await Promise.all(rest.map((l) => leaseNow(store, l.id)));
          return pending.filter((l) => l.status === 'active').length > served.length;
        },
      });
      const now = await Promise.all(rest.map((l) => leaseNow(store, l.id)));
      served.push(
        ...now.filter((l) => l.status === 'active' && !served.includes(l.id)).map((l) => l.id),
      );
    }
    expect(served).toEqual(ids(rest));
  });

  it('a lease that wants something else than the line ahead gets its first attempt', async () => {
    const { engine, store, queue } = await fullPoolWithWaiter();
    const other = await requestLease(engine, {
      type: 'host',
      owner: ci.principal,
      attributes: { platform: 'linux' },
    });
    const pinned = await requestLease(engine, {
      type: 'host',
      owner: ci.principal,
      blueprintIds: ['pool'],
    });
    for (const lease of [other, pinned]) {
      expect(lease.waitSeq).toBe(0);
      expect(hadFirstAttemptMessage(queue, lease.id)).toBe(true);
      await processUpdate(engine, takeFor(queue, lease.id));
      // Its own attempt, its own reason: the pool really is full.
      expect((await leaseNow(store, lease.id)).waitReason).toBe(
        "blueprint 'pool' is at its limit of 1 host, all leased",
      );
    }
  });

  it('behind a lease waiting for something no wake-up announces (a failing blueprint), a new lease gets its first attempt', async () => {
    const { engine, store, queue } = await testSystem({ breakerThreshold: 100 });
    await syntheticPool(engine, {
      limits: { maxResources: 2 },
      config: { allocation: { failTimes: 100, failMessage: 'capacity' } },
    });
    const older = await requestLease(engine, { type: 'host', owner: ci.principal });
    await processUpdate(engine, takeFor(queue, older.id));
    expect(await leaseNow(store, older.id)).toMatchObject({ waitSeq: 1, waitingFor: 'other' });

    const next = await requestLease(engine, { type: 'host', owner: ci.principal });
    expect(next.waitSeq).toBe(0);
    expect(hadFirstAttemptMessage(queue, next.id)).toBe(true);
  });

  it("a wait chain's message behind an older lease waiting for the same keeps waiting, without an attempt", async () => {
    // The release's teardown runs in a worker step here (no release at once).
    const { engine, store, queue, engineWith, holder, older } = await fullPoolWithWaiter({
      releaseAtOnce: false,
    });
    const joiner = await requestLease(engine, { type: 'host', owner: ci.principal });
    // The holder's slot frees and is handed to the older lease's wake-up, which has not run yet.
    await releaseLease(engine, holder.id, ci);
    await processUpdate(engine, takeFor(queue, holder.id));
    expect(queue.sent.filter((m) => m.wake).map((m) => m.id)).toEqual([older.id]);
    const linesBefore = await waitingLines(engine, joiner.id);

    // The joiner's safety-net message comes first: it does not take the slot freed for older.
    const { store: counted, calls } = counting(store);
    const outcome = await processUpdate(engineWith({ store: counted }), takeFor(queue, joiner.id));
    expect(outcome).toMatchObject({ outcome: { action: 'waited' } });
    expect(calls).not.toContain('listLiveResources');
    expect(await leaseNow(store, joiner.id)).toMatchObject({ status: 'pending', waitSeq: 2 });
    expect(await waitingLines(engine, joiner.id)).toEqual(linesBefore);
    expect(sentFor(queue, joiner.id).at(-1)).toMatchObject({ waitSeq: 2 });

    // The older lease's wake-up still finds its slot.
    await processUpdate(engine, takeFor(queue, older.id));
    expect((await leaseNow(store, older.id)).status).toBe('active');
  });

  it('a joined lease whose wake-up is lost is served by its wait chain', async () => {
    const { engine, store, queue, holder, older } = await fullPoolWithWaiter();
    const joiner = await requestLease(engine, { type: 'host', owner: ci.principal });
    await releaseLease(engine, holder.id, ci);
    await queue.drain(engine, {
      until: async () => (await leaseNow(store, older.id)).status === 'active',
    });
    queue.dropNext((m) => m.id === joiner.id && m.wake === true);
    await releaseLease(engine, older.id, ci);
    await queue.drain(engine, {
      until: async () => (await leaseNow(store, joiner.id)).status === 'active',
    });
    expect((await leaseNow(store, joiner.id)).status).toBe('active');
    const delivered = queue.delivered.filter((m) => m.id === joiner.id);
    expect(delivered.some((m) => m.wake)).toBe(false);
    expect(delivered.some((m) => m.waitSeq === 1)).toBe(true);
  });

  it('a joined lease whose every message is lost is re-driven by the sweep', async () => {
    const { engine, store, queue, clock, holder, older } = await fullPoolWithWaiter();
    queue.dropNext((m) => m.reason === 'in line');
    const joiner = await requestLease(engine, { type: 'host', owner: ci.principal });
    expect(sentFor(queue, joiner.id)).toHaveLength(1);
    // Both leases ahead leave; the wake-up meant for the joiner is lost too.
    queue.dropNext((m) => m.id === joiner.id);
    await releaseLease(engine, holder.id, ci);
    await queue.drain(engine, {
      until: async () => (await leaseNow(store, older.id)).status === 'active',
    });
    await releaseLease(engine, older.id, ci);
    await queue.drain(engine);
    expect(sentFor(queue, joiner.id).some((m) => m.wake)).toBe(true);
    expect(queue.delivered.filter((m) => m.id === joiner.id)).toEqual([]);
    expect((await leaseNow(store, joiner.id)).status).toBe('pending');

    clock.advance(61_000); // past strandAfterSeconds (test settings: 60 s)
    await runSweep(engine);
    await queue.drain(engine, {
      until: async () => (await leaseNow(store, joiner.id)).status === 'active',
    });
    expect((await leaseNow(store, joiner.id)).status).toBe('active');
  });
});
