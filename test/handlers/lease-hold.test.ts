/**
 * Held leases (issue 15, point 6): a lease requested with holdSeconds lives only while its
 * holder renews it (POST /v1/leases/{id}/renew). A waiting one is released at its next wait
 * round once the hold lapses, an active one at the sweep after it; renewing moves the hold;
 * `drop` hands the lease over to its TTL; an ended lease cannot be renewed (409).
 */
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { DEFAULT_SETTINGS } from '../../lambdas/core/engine.ts';
import { DEFAULT_HOLD_SECONDS, RENEW_EVERY_FRACTION } from '../../lambdas/core/lease-hold.ts';
import { TestClock } from '../support/manual-queue.ts';
import { ACCOUNT, ADMIN, type HandlerEnv, handlerEnv, lambdaContext } from './support.ts';

vi.hoisted(() => {
  if (!process.env.DRYDOCK_TEST_LOGS) process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
});

const OTHER = `arn:aws:sts::${ACCOUNT}:assumed-role/not-the-holder/x`;
const clock = new TestClock();
let env: HandlerEnv;

function blueprint(id: string) {
  return {
    id,
    type: 'synthetic',
    resourceType: 'host',
    attributes: { pool: id },
    limits: { maxResources: 1, leasesPerResource: 1, idleGraceSeconds: 0 },
    config: {},
  };
}

async function lease(id: string) {
  return (await env.api({ method: 'GET', path: `/v1/leases/${id}` })).body.lease;
}

async function request(pool: string, holdSeconds?: number): Promise<string> {
  const created = await env.api({
    method: 'POST',
    path: '/v1/leases',
    body: { type: 'host', attributes: { pool }, ...(holdSeconds ? { holdSeconds } : {}) },
  });
  expect(created.status).toBe(201);
  return created.body.lease.id;
}

beforeAll(async () => {
  env = await handlerEnv({ clock });
  for (const id of ['hold-full', 'hold-active']) {
    const made = await env.api({
      method: 'POST',
      path: '/v1/blueprints',
      principal: ADMIN,
      body: blueprint(id),
    });
    expect(made.status).toBe(201);
  }
});

describe('held leases', () => {
  it('a waiting held lease is renewed, then released once its holder stops renewing', async () => {
    const holder = await request('hold-full');
    await env.driveWorker(async () =>
      (await lease(holder)).status === 'active' ? true : undefined,
    );
    const waiter = await request('hold-full', 5);
    const before = await lease(waiter);
    expect(before).toMatchObject({ status: 'pending', holdSeconds: 5 });

    clock.advance(3_000);
    const renewed = await env.api({ method: 'POST', path: `/v1/leases/${waiter}/renew`, body: {} });
    expect(renewed.status).toBe(200);
    expect(Date.parse(renewed.body.lease.heldUntil)).toBeGreaterThan(Date.parse(before.heldUntil));
    expect(
      (await env.api({ method: 'POST', path: `/v1/leases/${waiter}/renew`, principal: OTHER }))
        .status,
    ).toBe(404);

    // Still held: its wait rounds leave it pending.
    await env.driveWorker(async () => ((await lease(waiter)).waitReason ? true : undefined));
    expect((await lease(waiter)).status).toBe('pending');

    clock.advance(6_000); // past the hold
    const ended = await env.driveWorker(async () => {
      const l = await lease(waiter);
      return l.status === 'released' || l.status === 'destroyed' ? l : undefined;
    });
    expect(ended.endReason).toMatch(/not renewed within its hold of 5s/);
    expect((await lease(holder)).status).toBe('active');

    const late = await env.api({ method: 'POST', path: `/v1/leases/${waiter}/renew` });
    expect(late.status).toBe(409);
    expect(late.body.error.message).toMatch(/can no longer be renewed/);
    await env.api({ method: 'POST', path: `/v1/leases/${holder}/release` });
  });

  it('an active held lease is released by the sweep after its hold; renewals keep it', async () => {
    const id = await request('hold-active', 10);
    const active = await env.driveWorker(async () => {
      const l = await lease(id);
      return l.status === 'active' ? l : undefined;
    });
    expect(Date.parse(active.heldUntil)).toBeLessThan(Date.parse(active.expiresAt));

    clock.advance(8_000);
    expect((await env.api({ method: 'POST', path: `/v1/leases/${id}/renew` })).status).toBe(200);
    clock.advance(8_000); // past the first hold, not the renewed one
    await env.handlers.sweep({}, lambdaContext('sweep'));
    // The sweep's update files it again at the renewed hold's end, and it stays active.
    const refiled = await env.driveWorker(async () => {
      const stored = await env.engine.store.getLease(id);
      return stored?.sweepAt === stored?.heldUntil ? stored : undefined;
    });
    expect(refiled.status).toBe('active');
    expect((await lease(id)).status).toBe('active');

    clock.advance(5_000); // past the renewed hold
    await env.handlers.sweep({}, lambdaContext('sweep'));
    const ended = await env.driveWorker(async () => {
      const l = await lease(id);
      return l.status === 'released' || l.status === 'destroyed' ? l : undefined;
    });
    expect(ended.endReason).toMatch(/not renewed/);
  });

  it('drop hands a held lease over to its TTL; an unheld lease renews as it is', async () => {
    const id = await request('hold-active', 5);
    const dropped = await env.api({
      method: 'POST',
      path: `/v1/leases/${id}/renew`,
      body: { drop: true },
    });
    expect(dropped.status).toBe(200);
    expect(dropped.body.lease.holdSeconds).toBeUndefined();
    const stored = await lease(id);
    expect(stored.holdSeconds).toBeUndefined();
    expect(stored.heldUntil).toBeUndefined();
    clock.advance(10_000);
    await env.driveWorker(async () => ((await lease(id)).status === 'active' ? true : undefined));
    const unheld = await env.api({ method: 'POST', path: `/v1/leases/${id}/renew` });
    expect(unheld.status).toBe(200);
    expect(unheld.body.lease.heldUntil).toBeUndefined();
    expect(
      (
        await env.api({
          method: 'POST',
          path: '/v1/leases',
          body: { type: 'host', holdSeconds: 0 },
        })
      ).status,
    ).toBe(400);
    await env.api({ method: 'POST', path: `/v1/leases/${id}/release` });
  });

  it('with the defaults, a lease whose CLI was SIGKILLed is gone within 3 minutes (arithmetic)', () => {
    // A waiting lease is looked at every wait round (at most backoffCapSeconds apart), an
    // active one by the sweep (every minute) once filed at its hold's end. The hold runs from
    // the last renewal, which came before the kill, so the lease ends at most
    // hold + the slower of the two looks + the update itself after the kill.
    const sweepPeriodSeconds = 60; // lib/constructs: rate(1 minute); the local runtime: 60 s
    const worstLook = Math.max(DEFAULT_SETTINGS.backoffCapSeconds, sweepPeriodSeconds);
    const processing = 15; // a queue delivery plus the update itself, generously
    expect(DEFAULT_HOLD_SECONDS + worstLook + processing).toBeLessThanOrEqual(180);
    // The CLI renews often enough that one failed renewal never lets the hold lapse.
    expect(DEFAULT_HOLD_SECONDS * RENEW_EVERY_FRACTION * 2).toBeLessThan(DEFAULT_HOLD_SECONDS);
  });
});
