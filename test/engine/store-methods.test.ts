/**
 * The store's methods are classified read or write in one typed table
 * (lambdas/core/store-methods.ts), and the crash harness crashes after every write method the
 * table names; an illegal status change through the engine's store throws before anything is
 * written.
 */
import { describe, expect, it } from 'vitest';
import { InjectedCrash } from '../../lambdas/core/errors.ts';
import type { Store } from '../../lambdas/core/ports.ts';
import { STORE_METHODS, STORE_WRITE_METHODS } from '../../lambdas/core/store-methods.ts';
import { requestLease } from '../../lambdas/core/use-cases.ts';
import { DynamoStore } from '../../lambdas/store/dynamo-store.ts';
import { CrashPlan, crashingStore } from '../support/crash.ts';
import { leaseNow, logTypes, syntheticPool, testSystem } from '../support/system.ts';

const methods = Object.keys(STORE_METHODS) as Array<keyof Store>;

describe('store methods, read or write', () => {
  it('the table names exactly the methods the DynamoDB store has', () => {
    for (const m of methods) {
      expect(typeof DynamoStore.prototype[m], m).toBe('function');
    }
    expect([...STORE_WRITE_METHODS].sort()).toEqual([
      'appendRecord',
      'createBlueprint',
      'deleteSlotLockIfOwner',
      'setBlueprintHealth',
      'transact',
      'updateBlueprint',
    ]);
  });

  it('the crash harness crashes after every write method of the table, and never after a read', async () => {
    const calls: string[] = [];
    const fake = Object.fromEntries(
      methods.map((m) => [
        m,
        async () => {
          calls.push(m);
          return m === 'transact' ? undefined : [];
        },
      ]),
    ) as unknown as Store;
    for (const m of methods) {
      const plan = new CrashPlan();
      plan.crashAfter = 1;
      const store = crashingStore(fake, plan);
      const call = (store[m] as (...args: unknown[]) => Promise<unknown>)([]);
      if (STORE_METHODS[m] === 'write') {
        await expect(call, m).rejects.toBeInstanceOf(InjectedCrash);
        expect(plan.log, m).toHaveLength(1);
      } else {
        await expect(call, m).resolves.toBeDefined();
        expect(plan.writes, m).toBe(0);
      }
    }
    expect(calls.sort()).toEqual([...methods].sort()); // each reached the real store once
  });
});

describe('illegal transitions', () => {
  it("an illegal transition through the engine's store throws and writes nothing", async () => {
    const { engine, store, queue } = await testSystem();
    await syntheticPool(engine);
    const requested = await requestLease(engine, { type: 'host', owner: 'ci' });
    await queue.drain(engine);
    const active = await leaseNow(store, requested.id);
    expect(active.status).toBe('active');
    const before = await logTypes(store, active.id);

    // active -> pending is no edge of the lease lifecycle; the log line rides in the same
    // transaction and must not be written either.
    await expect(
      engine.store.transact([
        {
          op: 'updateLease',
          id: active.id,
          type: active.type,
          expect: { status: 'active', version: active.version },
          set: { status: 'pending' },
        },
        engine.logWrite(active.id, 'lease.queued', 'sent back to pending (illegal)'),
      ]),
    ).rejects.toThrow(/illegal lease transition active -> pending/);
    expect(await leaseNow(store, active.id)).toEqual(active);
    expect(await logTypes(store, active.id)).toEqual(before);

    const resource = (await store.getResource(active.resourceId!))!;
    await expect(
      engine.store.transact([
        {
          op: 'updateResource',
          id: resource.id,
          type: resource.type,
          expect: { status: 'active', version: resource.version },
          set: { status: 'pending' },
        },
      ]),
    ).rejects.toThrow(/illegal resource transition active -> pending/);
    expect(await store.getResource(resource.id)).toEqual(resource);
  });
});
