/**
 * Listings without duplicates or empty pages (issue 16, point 1), through the real api
 * handler on DynamoDB Local: objects change status between the pages of one listing, and a
 * holder's listing is not starved by everyone else's leases.
 */
import { beforeAll, describe, expect, it, vi } from 'vitest';
import type { Resource, ResourceStatus } from '../../lambdas/core/model.ts';
import { ADMIN, CI, type HandlerEnv, handlerEnv, OTHER } from './support.ts';

vi.hoisted(() => {
  if (!process.env.DRYDOCK_TEST_LOGS) process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
});

let env: HandlerEnv;

beforeAll(async () => {
  env = await handlerEnv();
});

function resource(n: number): Resource {
  const at = new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString();
  return {
    id: `res-list-${String(n).padStart(2, '0')}`,
    blueprintId: 'pool',
    type: 'host',
    attributes: {},
    status: 'pending',
    version: 0,
    slotLocks: [],
    capacity: 1,
    leaseCount: 0,
    uses: 0,
    createdAt: at,
    updatedAt: at,
    data: {},
    sweepAt: at,
  };
}

/** The next status of a resource's life: even ones go on to break, odd ones are reclaimed. */
function nextStatus(n: number, status: ResourceStatus): ResourceStatus | undefined {
  if (status === 'pending') return n % 2 === 0 ? 'active' : 'released';
  if (status === 'active') return 'broken';
  return undefined;
}

describe('GET /v1/resources while resources change status', () => {
  it('pages with limit=2 never show an id twice, and show every live resource', async () => {
    const created = Array.from({ length: 20 }, (_, n) => resource(n));
    await env.engine.store.transact(
      created.map((r) => ({ op: 'createResource' as const, resource: r })),
    );
    const versions = new Map(created.map((r) => [r.id, { status: r.status, version: 0 }]));
    let moves = 0;
    // Between pages, move every resource one step on in its life (or, at the end of it,
    // reschedule it): each change moved it to another index partition or place before.
    const moveAll = async () => {
      for (const [n, r] of created.entries()) {
        const now = versions.get(r.id)!;
        const next = nextStatus(n, now.status);
        await env.engine.store.transact([
          {
            op: 'updateResource',
            id: r.id,
            type: r.type,
            expect: { status: now.status, version: now.version },
            set: {
              ...(next ? { status: next } : {}),
              sweepAt: new Date(Date.UTC(2027, 0, 1, 0, moves)).toISOString(),
            },
          },
        ]);
        versions.set(r.id, { status: next ?? now.status, version: now.version + 1 });
        moves++;
      }
    };

    const seen: string[] = [];
    const statusesSeen = new Set<string>();
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await env.api({
        method: 'GET',
        path: `/v1/resources?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        principal: ADMIN,
      });
      expect(page.status).toBe(200);
      const items = page.body.items as Array<{ id: string; status: string; version: number }>;
      expect(items.length).toBeLessThanOrEqual(2);
      for (const item of items) {
        // Each in its current state when the page was read.
        expect(item.version).toBe(versions.get(item.id)!.version);
        statusesSeen.add(item.status);
      }
      seen.push(...items.map((i) => i.id));
      cursor = page.body.cursor;
      pages++;
      await moveAll();
    } while (cursor && pages < 40);

    expect(moves).toBeGreaterThanOrEqual(20 * 10);
    expect(new Set(seen).size).toBe(seen.length);
    expect([...seen].sort()).toEqual(created.map((r) => r.id).sort());
    expect(statusesSeen.size).toBeGreaterThan(1);
  });
});

describe('GET /v1/leases as a holder', () => {
  it("reads the holder's own leases: a first page of 2 holds both, though 30 others' come first", async () => {
    const created = async (principal: string) => {
      const res = await env.api({
        method: 'POST',
        path: '/v1/leases',
        principal,
        body: { type: 'no-such-type' },
      });
      expect(res.status).toBe(201);
      return res.body.lease.id as string;
    };
    for (let i = 0; i < 30; i++) await created(OTHER);
    const mine = [await created(CI), await created(CI)];
    const page = await env.api({ method: 'GET', path: '/v1/leases?limit=2', principal: CI });
    expect(page.status).toBe(200);
    expect(page.body.items.map((l: { id: string }) => l.id)).toEqual(mine);
    // Its place in line, asked for (the CLI's progress line): everyone's pending leases ahead.
    const placed = await env.api({
      method: 'GET',
      path: `/v1/leases/${mine[1]}?place=true`,
      principal: CI,
    });
    expect(placed.body.waitingAhead).toBe(31);
    const plain = await env.api({ method: 'GET', path: `/v1/leases/${mine[1]}`, principal: CI });
    expect(plain.body.waitingAhead).toBeUndefined();
    if (page.body.cursor) {
      const rest = await env.api({
        method: 'GET',
        path: `/v1/leases?limit=2&cursor=${encodeURIComponent(page.body.cursor)}`,
        principal: CI,
      });
      expect(rest.body).toEqual({ items: [] });
    }
  });
});
