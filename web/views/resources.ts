/**
 * Resources (admins): by blueprint and status, with the leases on each, age, uses and suspect
 * marks.
 */
import type { Blueprint, Resource } from '../../lambdas/core/model.ts';
import { age } from '../../lib/cli/output.ts';
import {
  errorBox,
  heading,
  keepFresh,
  link,
  type PageContext,
  redrawIfChanged,
} from '../context.ts';
import { h, table } from '../dom.ts';
import type { PageLease } from './leases.ts';

export type PageResource = Omit<Resource, 'sweepAt'>;

const STATUS_CHOICES: Array<[string, string]> = [
  ['', 'current (not destroyed)'],
  ['pending', 'pending (setting up)'],
  ['active', 'active'],
  ['released', 'released'],
  ['broken', 'broken'],
];

/** `active (suspect)` for a resource whose health check failed. */
export function resourceStatusText(r: PageResource): string {
  return r.suspectSince && r.status === 'active' ? 'active (suspect)' : r.status;
}

export function resourceReason(r: PageResource): string {
  return (
    r.endReason ??
    r.suspectReason ??
    (typeof r.data?.setupMessage === 'string' ? r.data.setupMessage : '')
  );
}

/** Live leases by the resource they hold. */
export async function leasesByResource(context: PageContext): Promise<Map<string, PageLease[]>> {
  const byResource = new Map<string, PageLease[]>();
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await context.api.get<{ items: PageLease[]; cursor?: string }>(
      '/v1/leases',
      { limit: 100, cursor },
      context.signal,
    );
    for (const lease of page.items) {
      if (!lease.resourceId) continue;
      byResource.set(lease.resourceId, [...(byResource.get(lease.resourceId) ?? []), lease]);
    }
    cursor = page.cursor;
  } while (cursor && ++pages < 10);
  return byResource;
}

export function leaseLinks(leases: PageLease[] | undefined): Node[] {
  return (leases ?? []).flatMap((l, i) => [
    ...(i > 0 ? [document.createTextNode(', ')] : []),
    link(`/leases/${encodeURIComponent(l.id)}`, l.id),
  ]);
}

export function resourcesPage(context: PageContext): void {
  const { api, main, signal, query, me } = context;
  main.append(heading('Resources'));
  if (!me.admin) {
    main.append(
      h(
        'p',
        { class: 'error', role: 'alert' },
        `Resources are for admins; ${me.principal} is not one (ADMIN_PRINCIPALS).`,
      ),
    );
    return;
  }
  const blueprint = query.get('blueprint') ?? '';
  const status = query.get('status') ?? '';
  const errors = errorBox();
  const list = h('div', { id: 'resources' });
  const blueprintSelect = h(
    'select',
    { id: 'filter-blueprint', name: 'blueprint' },
    h('option', { value: '' }, 'any'),
  );
  const form = h(
    'form',
    { class: 'filters', role: 'search', 'aria-label': 'Filter resources' },
    h(
      'div',
      { class: 'field' },
      h('label', { for: 'filter-blueprint' }, 'Blueprint'),
      blueprintSelect,
    ),
    h(
      'div',
      { class: 'field' },
      h('label', { for: 'filter-status' }, 'Status'),
      h(
        'select',
        { id: 'filter-status', name: 'status' },
        ...STATUS_CHOICES.map(([v, text]) =>
          h('option', { value: v, selected: v === status }, text),
        ),
      ),
    ),
  );
  const apply = () => {
    const params = new URLSearchParams();
    const data = new FormData(form);
    for (const key of ['blueprint', 'status']) {
      const value = String(data.get(key) ?? '');
      if (value) params.set(key, value);
    }
    window.location.hash = `#/resources${params.size ? `?${params}` : ''}`;
  };
  form.addEventListener('change', apply);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    apply();
  });
  main.append(form, errors, list);

  let blueprintsLoaded = false;
  void keepFresh(signal, errors, async () => {
    if (!blueprintsLoaded) {
      const { items } = await api.get<{ items: Blueprint[] }>('/v1/blueprints', {}, signal);
      blueprintSelect.append(
        ...items.map((b) => h('option', { value: b.id, selected: b.id === blueprint }, b.id)),
      );
      blueprintsLoaded = true;
    }
    const [page, leases] = await Promise.all([
      api.get<{ items: PageResource[] }>('/v1/resources', { status, limit: 100 }, signal),
      leasesByResource(context),
    ]);
    const resources = page.items
      .filter((r) => !blueprint || r.blueprintId === blueprint)
      .sort(
        (a, b) =>
          a.blueprintId.localeCompare(b.blueprintId) || a.createdAt.localeCompare(b.createdAt),
      );
    const key = JSON.stringify(
      resources.map((r) => [r, age(r.createdAt), (leases.get(r.id) ?? []).map((l) => l.id)]),
    );
    redrawIfChanged(list, key, () =>
      resources.length === 0
        ? [
            h(
              'p',
              { class: 'empty' },
              'No resources here. A blueprint builds them when a lease needs one: request a lease to see one appear.',
            ),
          ]
        : [
            table(
              `${resources.length} resource${resources.length === 1 ? '' : 's'}, by blueprint`,
              ['Resource', 'Status', 'Blueprint', 'Type', 'Leases', 'Uses', 'Age', 'Reason'],
              resources.map((r) =>
                h(
                  'tr',
                  { 'data-resource': r.id },
                  h('th', { scope: 'row' }, link(`/resources/${encodeURIComponent(r.id)}`, r.id)),
                  h('td', { 'data-field': 'status' }, resourceStatusText(r)),
                  h(
                    'td',
                    {},
                    link(`/blueprints/${encodeURIComponent(r.blueprintId)}`, r.blueprintId),
                  ),
                  h('td', {}, r.type),
                  h(
                    'td',
                    { 'data-field': 'leases' },
                    `${r.leaseCount}/${r.capacity} `,
                    ...leaseLinks(leases.get(r.id)),
                  ),
                  h('td', {}, String(r.uses)),
                  h('td', {}, age(r.createdAt)),
                  h('td', {}, resourceReason(r)),
                ),
              ),
            ),
          ],
    );
  });
}
