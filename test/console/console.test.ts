/**
 * The web console in a real browser (Chromium headless) against the real local runtime with
 * real leases: one test per acceptance point of issue 13 (the proxy's is in proxy.test.ts).
 * The tests build on each other's fleet, in order: 3 blueprints, 6 resources, 10 leases.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Blueprint } from '../../lambdas/core/model.ts';
import type { PoolStats } from '../../lambdas/core/pool-stats.ts';
import type { ApiLease } from '../../lib/cli/lease.ts';
import { drydock, leaseIdOf, spawnDrydock } from '../e2e/support.ts';
import {
  type ConsoleRuntime,
  eventually,
  HOLDER,
  launchBrowser,
  screenshot,
  startConsoleRuntime,
} from './support.ts';

let env: ConsoleRuntime;
let browser: Browser;
let admin: BrowserContext;
let page: Page;

beforeAll(async () => {
  [env, browser] = await Promise.all([startConsoleRuntime('browser'), launchBrowser()]);
  admin = await browser.newContext();
  page = await admin.newPage();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await env?.stop();
});

const POOLS: Array<{
  id: string;
  maxResources: number;
  leasesPerResource: number;
  leases: number;
}> = [
  // Full: 2 hosts, each leased, and 2 more leases waiting for one.
  { id: 'alpha', maxResources: 2, leasesPerResource: 1, leases: 4 },
  // 2 hosts shared by 2 leases each.
  { id: 'beta', maxResources: 2, leasesPerResource: 2, leases: 4 },
  { id: 'gamma', maxResources: 3, leasesPerResource: 1, leases: 2 },
];

async function leases(query = ''): Promise<ApiLease[]> {
  const { body } = await env.api<{ items: ApiLease[] }>('GET', `/v1/leases?limit=100${query}`);
  return body.items;
}

async function pools(): Promise<PoolStats[]> {
  return (await env.api<{ pools: PoolStats[] }>('GET', '/v1/pools')).body.pools;
}

/** The row of `drydock leases` (a table on stdout) for a lease, cut into its cells' text. */
async function cliRow(id: string, args: string[] = []): Promise<Record<string, string>> {
  const run = await drydock(env.dataDir, ['leases', ...args]);
  expect(run.code, run.stderr).toBe(0);
  const [header = '', ...lines] = run.stdout.split('\n');
  const line = lines.find((l) => l.startsWith(`${id} `));
  if (!line) return {};
  // Columns start where their header starts (table() pads every column but the last).
  const names = [...header.matchAll(/[A-Z]+/g)].map((m) => ({ name: m[0], at: m.index }));
  return Object.fromEntries(
    names.map(({ name, at }, i) => [name, line.slice(at, names[i + 1]?.at).trim()]),
  );
}

describe('the web console', () => {
  it('overview: each blueprint numbers match GET /v1/pools and `drydock status`; a waiting lease shows the CLI wait reason', async () => {
    await page.goto(`${env.runtime.url}/`);
    // Before any blueprint: the empty state says how to make one.
    await page.getByText('No blueprints yet').waitFor();
    await expect(page.getByText('npx drydock blueprint create').count()).resolves.toBe(1);
    await screenshot(page, 'overview-empty');

    for (const pool of POOLS) {
      const created = await env.api('POST', '/v1/blueprints', {
        id: pool.id,
        type: 'synthetic',
        resourceType: 'host',
        limits: {
          maxResources: pool.maxResources,
          leasesPerResource: pool.leasesPerResource,
          idleTtlSeconds: 3600,
        },
      });
      expect(created.status).toBe(201);
    }
    for (const pool of POOLS) {
      for (let i = 0; i < pool.leases; i++) {
        const requested = await env.api('POST', '/v1/leases', {
          type: 'host',
          blueprintIds: [pool.id],
          ttlSeconds: 3600,
        });
        expect(requested.status).toBe(201);
      }
    }
    // Settled: 8 leases active on 6 hosts, alpha's last 2 waiting for a full pool.
    const settled = await eventually(
      leases,
      (all) =>
        all.length === 10 &&
        all.filter((l) => l.status === 'active').length === 8 &&
        all.filter((l) => l.status === 'pending' && l.waitReason).length === 2,
      '8 active leases and 2 waiting with a reason',
      30_000,
    );
    const stats = await eventually(
      pools,
      (p) => p.reduce((n, s) => n + s.live, 0) === 6 && p.every((s) => s.settingUp === 0),
      '6 live resources',
    );
    expect(stats.map((s) => [s.blueprintId, s.live, s.leased, s.waiting])).toEqual([
      ['alpha', 2, 2, 2],
      ['beta', 2, 2, 0],
      ['gamma', 2, 2, 0],
    ]);
    // `drydock status` reads the same numbers the page shows.
    const status = await drydock(env.dataDir, ['--json', 'status']);
    expect(status.code, status.stderr).toBe(0);
    const numbers = (p: PoolStats) => [
      p.blueprintId,
      p.state,
      p.live,
      p.leased,
      p.idle,
      p.settingUp,
      p.max,
      p.waiting,
    ];
    expect((JSON.parse(status.stdout) as { pools: PoolStats[] }).pools.map(numbers)).toEqual(
      stats.map(numbers),
    );

    // The page updates itself: no reload since the empty state.
    await page.locator('tr[data-blueprint="gamma"]').waitFor({ timeout: 5_000 });
    const fields = [
      'type',
      'resourceType',
      'state',
      'live',
      'leased',
      'idle',
      'settingUp',
      'max',
      'waiting',
    ] as const;
    for (const pool of stats) {
      const row = page.locator(`table.pools tr[data-blueprint="${pool.blueprintId}"]`);
      for (const field of fields) {
        await expect
          .poll(() => row.locator(`[data-field="${field}"]`).textContent(), {
            timeout: 5_000,
            message: `${pool.blueprintId} ${field}`,
          })
          .toBe(String(pool[field]));
      }
      await expect(row.locator('[data-field="health"]').textContent()).resolves.toBe('ok');
    }
    const alphaOldest = await page
      .locator('tr[data-blueprint="alpha"] [data-field="oldestWait"]')
      .textContent();
    expect(alphaOldest).toMatch(/^\d+(\.\d)?s$|^\d+m/);

    // A waiting lease: the same words as `drydock leases` shows.
    const waiting = settled.find((l) => l.status === 'pending') as ApiLease;
    const cli = await cliRow(waiting.id);
    expect(cli.STATUS).toBe('pending');
    expect(cli.REASON).toBeTruthy();
    const shown = page.locator(`#waiting tr[data-lease="${waiting.id}"] [data-field="reason"]`);
    await shown.waitFor();
    // The CLI's table cuts a reason at 80 characters (with …); the page shows it whole.
    expect(await shown.textContent()).toContain(cli.REASON?.replace(/…$/, ''));
    await screenshot(page, 'overview');

    await page.goto(`${env.runtime.url}/#/leases?status=pending`);
    const row = page.locator(`table.leases tr[data-lease="${waiting.id}"] [data-field="reason"]`);
    await row.waitFor();
    expect(await row.textContent()).toContain(cli.REASON?.replace(/…$/, ''));
    await screenshot(page, 'leases-pending');

    await page.goto(`${env.runtime.url}/#/resources`);
    await page.locator('#resources tr[data-resource]').first().waitFor();
    await expect(page.locator('#resources tr[data-resource]').count()).resolves.toBe(6);
    // beta's hosts each hold 2 leases, linked from the row.
    const shared = page.locator('#resources tr[data-resource]', { hasText: 'beta' }).first();
    await expect(shared.locator('[data-field="leases"] a').count()).resolves.toBe(2);
    await screenshot(page, 'resources');
    await shared.locator('th a').click();
    await page.locator('#resource-details [data-field="Leases"] a').first().waitFor();
    await page.locator('[data-type="resource.activated"]').waitFor();
    await screenshot(page, 'resource');
  });

  it('a lease requested with the CLI appears in the open leases page within 3 s; Release on its page ends it', async () => {
    const created = await env.api('POST', '/v1/blueprints', {
      id: 'delta',
      type: 'synthetic',
      resourceType: 'host',
      limits: { maxResources: 1, leasesPerResource: 1 },
    });
    expect(created.status).toBe(201);
    await page.goto(`${env.runtime.url}/#/leases`);
    await page.locator('table.leases').waitFor();
    await page.evaluate(() => {
      (globalThis as unknown as { notReloaded: boolean }).notReloaded = true;
    });

    const cli = spawnDrydock(env.dataDir, ['lease', '--type', 'host', '--blueprint', 'delta']);
    const id = await eventually(
      async () => leaseIdOf(cli.stderr()),
      Boolean,
      'the CLI to say which lease it requested',
    );
    const asked = Date.now();
    await page.locator(`tr[data-lease="${id}"]`).waitFor({ timeout: 3_000 });
    expect(Date.now() - asked).toBeLessThan(3_000);
    expect(
      await page.evaluate(() => (globalThis as unknown as { notReloaded?: boolean }).notReloaded),
    ).toBe(true);
    const done = await cli.done;
    expect(done.code, done.stderr).toBe(0);
    await expect
      .poll(() => page.locator(`tr[data-lease="${id}"] [data-field="status"]`).textContent(), {
        timeout: 5_000,
      })
      .toBe('active');
    await screenshot(page, 'leases-open');

    // Its page: the log follows live, a command run with the CLI shows up with its output.
    await page.getByRole('link', { name: id as string }).click();
    await page.getByRole('heading', { name: `Lease ${id}` }).waitFor();
    await page.locator('[data-type="lease.activated"]').waitFor();
    const exec = await drydock(env.dataDir, ['exec', id as string, '--', 'echo', 'hello-console']);
    expect(exec.code, exec.stderr).toBe(0);
    const command = page.locator('#commands article.command');
    await command.locator('pre.stdout').waitFor();
    expect(await command.locator('h3').textContent()).toBe('echo hello-console');
    expect(await command.locator('pre.stdout').textContent()).toContain('hello-console');
    await page.locator('[data-type="lease.command"]').waitFor();
    await screenshot(page, 'lease');

    // From the keyboard: a real button takes focus and Enter presses it.
    await page.getByRole('button', { name: 'Release lease' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('status').filter({ hasText: 'Released' }).waitFor();
    await expect
      .poll(() => page.locator('[data-field="Status"]').first().textContent(), { timeout: 10_000 })
      .toMatch(/^(released|destroyed)$/);
    await expect(page.getByRole('button', { name: 'Release lease' }).count()).resolves.toBe(0);
    const row = await eventually(
      () => cliRow(id as string),
      (r) => r.STATUS === 'released',
      '`drydock leases` to show it released',
    );
    expect(row.STATUS).toBe('released');
    await screenshot(page, 'lease-released');
  });

  it('draining a blueprint from its page changes its state; a second tab that changed it first gets the version-conflict message', async () => {
    const url = `${env.runtime.url}/#/blueprints/beta`;
    const first = page;
    const second = await admin.newPage();
    await Promise.all([first.goto(url), second.goto(url)]);
    for (const tab of [first, second]) {
      await tab.locator('[data-field="State"]').filter({ hasText: 'enabled' }).waitFor();
      await tab.getByRole('button', { name: 'Drain' }).waitFor();
    }
    const before = await env.api<{ blueprint: Blueprint }>('GET', '/v1/blueprints/beta');
    await expect(first.locator('pre.config').textContent()).resolves.toBe(
      JSON.stringify(before.body.blueprint.config, null, 2),
    );
    await expect(first.locator('[data-field="Max resources"]').textContent()).resolves.toBe('2');

    // Draining from the first tab changes the state...
    await first.getByRole('button', { name: 'Drain' }).click();
    await first.getByRole('status').filter({ hasText: 'is now draining (version 2)' }).waitFor();
    const drained = await env.api<{ blueprint: Blueprint }>('GET', '/v1/blueprints/beta');
    expect(drained.body.blueprint.state).toBe('draining');
    await first.locator('[data-field="State"]').filter({ hasText: 'draining' }).waitFor();
    await expect(first.getByRole('button', { name: 'Drain' }).isDisabled()).resolves.toBe(true);
    await first.locator('[data-type="blueprint.updated"]').first().waitFor();
    await screenshot(first, 'blueprint-drained');

    // ...so the second tab, still showing version 1, is refused: someone changed it first.
    await second.getByRole('button', { name: 'Disable' }).click();
    const alert = second
      .getByRole('alert')
      .filter({ hasText: 'Someone else changed blueprint beta first' });
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(
      /you saw version 1 \(enabled\), it is now version 2 \(draining\)/,
    );
    await second.locator('[data-field="State"]').filter({ hasText: 'draining' }).waitFor();
    const unchanged = await env.api<{ blueprint: Blueprint }>('GET', '/v1/blueprints/beta');
    expect(unchanged.body.blueprint).toMatchObject({ state: 'draining', version: 2 });
    await screenshot(second, 'blueprint-conflict');
    await second.close();
  });

  it('a non-admin token sees only its own leases and no admin buttons', async () => {
    const mine = await env.api<{ lease: ApiLease }>(
      'POST',
      '/v1/leases',
      { type: 'host', blueprintIds: ['gamma'] },
      { token: HOLDER.token },
    );
    expect(mine.status).toBe(201);
    const holder = await browser.newContext();
    // The page sends the token its server gave it (the runtime user's); this browser is the
    // holder instead, exactly as a holder's own server would make it.
    await holder.route('**/v1/**', (route) =>
      route.continue({
        headers: { ...route.request().headers(), authorization: `Bearer ${HOLDER.token}` },
      }),
    );
    const tab = await holder.newPage();
    await tab.goto(`${env.runtime.url}/#/leases`);
    await tab.getByRole('heading', { name: 'Your leases' }).waitFor();
    await tab.locator(`tr[data-lease="${mine.body.lease.id}"]`).waitFor();
    const owners = await tab.locator('table.leases [data-field="owner"]').allTextContents();
    expect(owners).toEqual([HOLDER.principal]);
    await expect(tab.getByRole('link', { name: 'Resources' }).count()).resolves.toBe(0);
    await expect(tab.locator('nav .me').textContent()).resolves.toBe(HOLDER.principal);
    await screenshot(tab, 'holder-leases');

    // Its own lease: it may release it. A blueprint: no admin actions.
    await tab.getByRole('link', { name: mine.body.lease.id }).click();
    await tab.getByRole('button', { name: 'Release lease' }).waitFor();
    await tab.goto(`${env.runtime.url}/#/blueprints/gamma`);
    await tab.locator('[data-field="State"]').waitFor();
    await expect(tab.getByRole('button').count()).resolves.toBe(0);
    await screenshot(tab, 'holder-blueprint');

    // Someone else's lease is not there for it: an error in the page, not a blank screen.
    const others = (await leases()).find((l) => l.owner !== HOLDER.principal) as ApiLease;
    await tab.goto(`${env.runtime.url}/#/leases/${others.id}`);
    await tab
      .getByRole('alert')
      .filter({
        hasText: `lease '${others.id}' does not exist (a holder sees only its own leases)`,
      })
      .waitFor();
    await expect(tab.getByRole('button', { name: 'Release lease' }).count()).resolves.toBe(0);
    await screenshot(tab, 'holder-other-lease');
    await holder.close();
  });
});
