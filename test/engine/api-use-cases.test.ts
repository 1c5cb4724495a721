/**
 * The use cases behind the HTTPS API that the handler tests only touch lightly: idempotent
 * lease requests under races, listings across statuses and owners, queued commands, and an
 * operator releasing a resource. DynamoDB Local, deterministic delivery (ManualQueue).
 */
import { describe, expect, it } from 'vitest';
import { getCommand, startCommand } from '../../lambdas/core/commands.ts';
import type { Lease } from '../../lambdas/core/model.ts';
import {
  listLeases,
  listResources,
  releaseLease,
  releaseResource,
  requestLease,
  submitLeaseRequest,
} from '../../lambdas/core/use-cases.ts';
import { leaseNow, syntheticPool, testSystem } from '../support/system.ts';

const ci = { principal: 'arn:aws:iam::123456789012:user/ci' };
const dev = { principal: 'arn:aws:iam::123456789012:user/dev' };
const admin = { principal: 'arn:aws:iam::123456789012:user/ops', admin: true };

describe('idempotent lease requests', () => {
  it('racing requests with one key create one lease; all of them get it', async () => {
    const { engine, store, queue } = await testSystem();
    await syntheticPool(engine);
    const outcomes = await Promise.all(
      Array.from({ length: 8 }, () =>
        submitLeaseRequest(engine, { type: 'host', owner: ci.principal, idempotencyKey: 'k-1' }),
      ),
    );
    const ids = new Set(outcomes.map((o) => o.lease.id));
    expect(ids.size).toBe(1);
    expect(outcomes.filter((o) => o.created)).toHaveLength(1);
    const [id] = ids;
    await queue.drain(engine);
    expect((await leaseNow(store, id as string)).status).toBe('active');
    expect((await store.listLeasesByStatus('active')).items).toHaveLength(1);
  });

  it('keys are per owner, and no owner can forge another one with #', async () => {
    const { engine } = await testSystem();
    await syntheticPool(engine);
    const a = await submitLeaseRequest(engine, { type: 'host', owner: 'a#b', idempotencyKey: 'c' });
    const b = await submitLeaseRequest(engine, { type: 'host', owner: 'a', idempotencyKey: 'b#c' });
    expect(a.created && b.created).toBe(true);
    expect(a.lease.id).not.toBe(b.lease.id);
  });

  it('an expired key may be used again, for a new lease', async () => {
    const { engine, clock } = await testSystem();
    await syntheticPool(engine);
    const first = await submitLeaseRequest(engine, {
      type: 'host',
      owner: ci.principal,
      idempotencyKey: 'k',
    });
    clock.advance(24 * 3600 * 1000 + 1000);
    const later = await submitLeaseRequest(engine, {
      type: 'host',
      owner: ci.principal,
      idempotencyKey: 'k',
    });
    expect(later.created).toBe(true);
    expect(later.lease.id).not.toBe(first.lease.id);
  });

  it('a retry of a request whose update was never queued queues it again', async () => {
    const { engine, store, queue } = await testSystem();
    await syntheticPool(engine);
    queue.dropNext((m) => m.kind === 'lease'); // the first request "died" before its send landed
    const first = await requestLease(engine, {
      type: 'host',
      owner: ci.principal,
      idempotencyKey: 'k',
    });
    await queue.drain(engine);
    expect((await leaseNow(store, first.id)).status).toBe('pending');
    const retry = await submitLeaseRequest(engine, {
      type: 'host',
      owner: ci.principal,
      idempotencyKey: 'k',
    });
    expect(retry).toMatchObject({ created: false, lease: { id: first.id } });
    await queue.drain(engine);
    expect((await leaseNow(store, first.id)).status).toBe('active');
  });
});

describe('listings', () => {
  it('walks every status page by page; non-admins see only their own', async () => {
    // A released lease is listed until its teardown: here it stays released (no teardown at once).
    const { engine, store, queue } = await testSystem({ releaseAtOnce: false });
    await syntheticPool(engine, { limits: { maxResources: 2 } });
    const mine: Lease[] = [];
    for (let i = 0; i < 3; i++)
      mine.push(await requestLease(engine, { type: 'host', owner: ci.principal }));
    const theirs = await requestLease(engine, { type: 'host', owner: dev.principal });
    // Two hosts for four leases: two become active, the other two wait.
    await queue.drain(engine, {
      until: async () => (await store.listLeasesByStatus('active')).items.length === 2,
    });
    await releaseLease(engine, mine[0]!.id, ci); // one released, two active/pending, one of dev's

    const collect = async (caller: typeof ci, query: { type?: string } = {}) => {
      const ids: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await listLeases(
          engine,
          { ...query, limit: 1, ...(cursor ? { cursor } : {}) },
          caller,
        );
        expect(page.items.length).toBeLessThanOrEqual(1);
        ids.push(...page.items.map((l) => l.id));
        cursor = page.cursor;
        pages++;
      } while (cursor && pages < 50);
      return ids.sort();
    };
    expect(await collect(ci)).toEqual(mine.map((l) => l.id).sort());
    expect(await collect(ci, { type: 'host' })).toEqual(mine.map((l) => l.id).sort());
    expect(await collect(admin)).toEqual([...mine.map((l) => l.id), theirs.id].sort());
    expect(await collect(dev)).toEqual([theirs.id]);

    const released = await listLeases(engine, { status: 'released' }, ci);
    expect(released.items.map((l) => l.id)).toEqual([mine[0]!.id]);
    await expect(listLeases(engine, { cursor: 'garbage' }, ci)).rejects.toThrow(
      /invalid page cursor/,
    );
    await expect(listLeases(engine, { limit: 500 }, ci)).rejects.toThrow(/limit must be/);
    await expect(listResources(engine, {}, ci)).rejects.toThrow(/needs admin rights/);
    expect(
      (await listResources(engine, { type: 'host', status: 'active' }, admin)).items.length,
    ).toBe(2);
  });
});

describe('queued commands', () => {
  it('are validated up front, every problem named', async () => {
    const { engine, queue } = await testSystem();
    await syntheticPool(engine);
    const lease = await requestLease(engine, { type: 'host', owner: ci.principal });
    await queue.drain(engine);
    await expect(
      startCommand(engine, lease.id, { argv: [], script: ' ', timeoutSeconds: 4000 }, ci),
    ).rejects.toThrow(
      /give exactly one of argv or script.*argv must be.*script must not be empty.*timeoutSeconds/,
    );
    await expect(startCommand(engine, lease.id, { argv: ['true'] }, dev)).rejects.toThrow(
      /does not exist/,
    );
    await expect(startCommand(engine, lease.id, { argv: ['true'] }, admin)).rejects.toThrow(
      /only the holder/,
    );
  });

  it('run through the queue; the holder and admins can read them, others cannot', async () => {
    const { engine, queue } = await testSystem();
    await syntheticPool(engine);
    const lease = await requestLease(engine, { type: 'host', owner: ci.principal });
    await queue.drain(engine);
    const command = await startCommand(engine, lease.id, { argv: ['echo', 'hi'] }, ci);
    expect(command).toMatchObject({ status: 'queued', attempt: 0, timeoutSeconds: 300 });
    await queue.drain(engine);
    expect(await getCommand(engine, lease.id, command.id, admin)).toMatchObject({
      status: 'finished',
      result: { exitCode: 0, stdout: 'hi\n' },
    });
    await expect(getCommand(engine, lease.id, command.id, dev)).rejects.toThrow(/does not exist/);
    await expect(getCommand(engine, lease.id, 'cmd-nope', ci)).rejects.toThrow(
      /command 'cmd-nope' does not exist/,
    );
  });

  it('a vanished host fails the command with the reason and breaks the lease', async () => {
    const { engine, store, queue } = await testSystem();
    await syntheticPool(engine, { config: { vanish: { afterCommands: 1 } } });
    const lease = await requestLease(engine, { type: 'host', owner: ci.principal });
    await queue.drain(engine);
    const first = await startCommand(engine, lease.id, { argv: ['echo', '1'] }, ci);
    const second = await startCommand(engine, lease.id, { argv: ['echo', '2'] }, ci);
    await queue.drain(engine);
    expect((await store.getCommand(lease.id, first.id))?.status).toBe('finished');
    const failed = await store.getCommand(lease.id, second.id);
    expect(failed?.status).toBe('failed');
    expect(failed?.error).toMatch(/vanished/);
    expect((await leaseNow(store, lease.id)).endReason).toMatch(/vanished/);
  });
});

describe('releaseResource', () => {
  it('is for admins; idempotent once the resource has ended', async () => {
    const { engine, store, queue } = await testSystem();
    await syntheticPool(engine, { limits: { idleTtlSeconds: 3600 } });
    const lease = await requestLease(engine, { type: 'host', owner: ci.principal });
    await queue.drain(engine);
    const { resourceId } = await leaseNow(store, lease.id);
    await expect(releaseResource(engine, resourceId!, ci)).rejects.toThrow(/needs admin rights/);

    const broken = await releaseResource(engine, resourceId!, admin);
    expect(broken).toMatchObject({ status: 'broken', endReason: `released by ${admin.principal}` });
    await queue.drain(engine);
    expect((await leaseNow(store, lease.id)).endReason).toBe(
      `host ${resourceId} broke: released by ${admin.principal}`,
    );
    expect((await releaseResource(engine, resourceId!, admin)).status).toBe('destroyed');
  });
});
