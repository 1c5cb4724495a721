/**
 * The overview: every blueprint's pool at once (GET /v1/pools) and the leases waiting, with
 * why; re-read every REFRESH_MS, no reload needed.
 */
import type { PoolStats } from '../../lambdas/core/pool-stats.ts';
import { leaseReasonText } from '../../lib/cli/lease-text.ts';
import { age, formatDuration } from '../../lib/cli/output.ts';
import {
  errorBox,
  heading,
  keepFresh,
  link,
  type PageContext,
  redrawIfChanged,
  when,
} from '../context.ts';
import { code, h, table } from '../dom.ts';
import type { PageLease } from './leases.ts';

/** The breaker of a pool, in a few words. */
export function healthText(health: PoolStats['health'], now = Date.now()): string {
  if (health.failureCount === 0) return 'ok';
  const parts = [`${health.failureCount} failure${health.failureCount === 1 ? '' : 's'}`];
  if (health.backoffUntil && Date.parse(health.backoffUntil) > now)
    parts.push(`backing off until ${when(health.backoffUntil)}`);
  if (health.lastFailure)
    parts.push(
      `last${health.lastFailureAt ? ` at ${when(health.lastFailureAt)}` : ''}: ${health.lastFailure}`,
    );
  return parts.join('; ');
}

const POOL_COLUMNS: Array<[string, keyof PoolStats]> = [
  ['Live', 'live'],
  ['Leased', 'leased'],
  ['Idle', 'idle'],
  ['Setting up', 'settingUp'],
  ['Max', 'max'],
  ['Waiting', 'waiting'],
];

function poolRow(pool: PoolStats): HTMLTableRowElement {
  return h(
    'tr',
    { 'data-blueprint': pool.blueprintId },
    h(
      'th',
      { scope: 'row' },
      link(`/blueprints/${encodeURIComponent(pool.blueprintId)}`, pool.blueprintId),
    ),
    h('td', { 'data-field': 'type' }, pool.type),
    h('td', { 'data-field': 'resourceType' }, pool.resourceType),
    h('td', { 'data-field': 'state', class: `state-${pool.state}` }, pool.state),
    h('td', { 'data-field': 'health' }, healthText(pool.health)),
    ...POOL_COLUMNS.map(([, key]) =>
      h('td', { 'data-field': key, class: 'number' }, String(pool[key])),
    ),
    h(
      'td',
      { 'data-field': 'oldestWait' },
      pool.oldestWaitSeconds === null ? '' : formatDuration(pool.oldestWaitSeconds),
    ),
  );
}

export const EMPTY_BLUEPRINTS = (): Node[] => [
  h('p', { class: 'empty' }, 'No blueprints yet, so no lease can be served.'),
  h(
    'p',
    {},
    'Create one (as an admin): ',
    code('npx drydock blueprint create --id linux --type local-host --max-resources 2'),
    ' — `npm start` creates a `local` one on its own.',
  ),
];

export function overviewPage({ api, main, signal }: PageContext): void {
  const errors = errorBox();
  const pools = h('div', { id: 'pools' });
  const waiting = h('div', { id: 'waiting' });
  const updated = h('p', { class: 'updated' });
  main.append(
    heading('Overview'),
    errors,
    h(
      'section',
      { 'aria-labelledby': 'pools-heading' },
      h('h2', { id: 'pools-heading' }, 'Pools'),
      pools,
    ),
    h(
      'section',
      { 'aria-labelledby': 'waiting-heading' },
      h('h2', { id: 'waiting-heading' }, 'Waiting leases'),
      waiting,
    ),
    updated,
  );
  void keepFresh(signal, errors, async () => {
    const [{ pools: stats }, pending] = await Promise.all([
      api.get<{ pools: PoolStats[] }>('/v1/pools', {}, signal),
      api.get<{ items: PageLease[] }>('/v1/leases', { status: 'pending', limit: 100 }, signal),
    ]);
    redrawIfChanged(pools, JSON.stringify(stats), () =>
      stats.length === 0
        ? EMPTY_BLUEPRINTS()
        : [
            table(
              'Each blueprint: its resources (live counts toward max), and the leases waiting for it',
              [
                'Blueprint',
                'Type',
                'Builds',
                'State',
                'Health',
                ...POOL_COLUMNS.map(([t]) => t),
                'Oldest wait',
              ],
              stats.map(poolRow),
              { class: 'pools' },
            ),
          ],
    );
    const oldestFirst = [...pending.items].sort((a, b) =>
      a.requestedAt.localeCompare(b.requestedAt),
    );
    redrawIfChanged(
      waiting,
      JSON.stringify(oldestFirst.map((l) => [l.id, age(l.requestedAt), leaseReasonText(l)])),
      () =>
        oldestFirst.length === 0
          ? [h('p', { class: 'empty' }, 'No lease is waiting.')]
          : [
              table(
                'Leases not yet given a resource, oldest first, with why they wait',
                ['Lease', 'Type', 'Owner', 'Waiting', 'Reason'],
                oldestFirst.map((l) =>
                  h(
                    'tr',
                    { 'data-lease': l.id },
                    h('th', { scope: 'row' }, link(`/leases/${encodeURIComponent(l.id)}`, l.id)),
                    h('td', {}, l.type),
                    h('td', {}, l.owner),
                    h('td', {}, age(l.requestedAt)),
                    h('td', { 'data-field': 'reason' }, leaseReasonText(l)),
                  ),
                ),
              ),
            ],
    );
    updated.textContent = `Updated ${new Date().toLocaleTimeString()}; refreshes on its own.`;
  });
}
