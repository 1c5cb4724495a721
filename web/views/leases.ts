/**
 * Leases: filter by status, type and owner; each row shows its wait or end reason in the
 * CLI's words (lib/cli/lease-text.ts). The API shows a holder only its own leases.
 */
import type { Blueprint, Lease } from '../../lambdas/core/model.ts';
import { leaseReasonText, leaseStatusText } from '../../lib/cli/lease-text.ts';
import { age } from '../../lib/cli/output.ts';
import {
  errorBox,
  heading,
  keepFresh,
  link,
  type PageContext,
  redrawIfChanged,
} from '../context.ts';
import { code, h, table } from '../dom.ts';

/** A lease as the API returns it. */
export type PageLease = Omit<Lease, 'waitSeq' | 'slotLocks' | 'sweepAt' | 'checkedAt'>;

export const LEASE_STATUS_CHOICES: Array<[string, string]> = [
  ['', 'open (not yet destroyed)'],
  ['pending', 'pending (waiting)'],
  ['acquired', 'acquired (setting up)'],
  ['active', 'active'],
  ['released', 'released'],
  ['broken', 'broken'],
  ['destroyed', 'destroyed (ended)'],
];

const PAGE = 100;
const MOST = 500;

/** Every lease the filters ask for (the API pages; destroyed ones need a type). */
async function fetchLeases(
  context: PageContext,
  status: string,
  type: string,
  types: string[],
): Promise<PageLease[]> {
  const { api, signal } = context;
  const all = async (query: Record<string, string>) => {
    const items: PageLease[] = [];
    let cursor: string | undefined;
    do {
      const page = await api.get<{ items: PageLease[]; cursor?: string }>(
        '/v1/leases',
        { ...query, limit: PAGE, cursor },
        signal,
      );
      items.push(...page.items);
      cursor = page.cursor;
    } while (cursor && items.length < MOST);
    return items;
  };
  // Ended leases are indexed by type only: without one, read each type a blueprint builds.
  if (status === 'destroyed' && !type) {
    const lists = await Promise.all(types.map((t) => all({ status, type: t, order: 'newest' })));
    return lists.flat();
  }
  return all({ status, type, ...(status === 'destroyed' ? { order: 'newest' } : {}) });
}

function select(
  label: string,
  name: string,
  choices: Array<[string, string]>,
  value: string,
): HTMLElement {
  const id = `filter-${name}`;
  return h(
    'div',
    { class: 'field' },
    h('label', { for: id }, label),
    h(
      'select',
      { id, name },
      ...choices.map(([v, text]) => h('option', { value: v, selected: v === value }, text)),
    ),
  );
}

export function leaseRow(l: PageLease, admin: boolean): HTMLTableRowElement {
  return h(
    'tr',
    { 'data-lease': l.id, 'data-status': l.status },
    h('th', { scope: 'row' }, link(`/leases/${encodeURIComponent(l.id)}`, l.id)),
    h('td', { 'data-field': 'status' }, leaseStatusText(l)),
    h('td', { 'data-field': 'type' }, l.type),
    h(
      'td',
      { 'data-field': 'resource' },
      l.resourceId
        ? admin
          ? link(`/resources/${encodeURIComponent(l.resourceId)}`, l.resourceId)
          : l.resourceId
        : '',
    ),
    h('td', { 'data-field': 'owner' }, l.owner),
    h('td', { 'data-field': 'age' }, age(l.requestedAt)),
    h('td', { 'data-field': 'reason' }, leaseReasonText(l)),
  );
}

export function leasesPage(context: PageContext): void {
  const { api, me, main, signal, query } = context;
  const status = query.get('status') ?? '';
  const type = query.get('type') ?? '';
  const owner = query.get('owner') ?? '';
  const errors = errorBox();
  const list = h('div', { id: 'leases' });
  const typeChoices = h('datalist', { id: 'types' });
  const ownerChoices = h('datalist', { id: 'owners' });
  const form = h(
    'form',
    { class: 'filters', role: 'search', 'aria-label': 'Filter leases' },
    select('Status', 'status', LEASE_STATUS_CHOICES, status),
    h(
      'div',
      { class: 'field' },
      h('label', { for: 'filter-type' }, 'Type'),
      h('input', {
        id: 'filter-type',
        name: 'type',
        value: type,
        list: 'types',
        placeholder: 'any',
      }),
      typeChoices,
    ),
    h(
      'div',
      { class: 'field' },
      h('label', { for: 'filter-owner' }, 'Owner'),
      h('input', {
        id: 'filter-owner',
        name: 'owner',
        value: owner,
        list: 'owners',
        placeholder: 'anyone',
      }),
      ownerChoices,
    ),
    h('button', { type: 'submit' }, 'Filter'),
  );
  // Filters live in the URL: a link or a reload shows the same list.
  const apply = () => {
    const data = new FormData(form);
    const params = new URLSearchParams();
    for (const key of ['status', 'type', 'owner']) {
      const value = String(data.get(key) ?? '').trim();
      if (value) params.set(key, value);
    }
    window.location.hash = `#/leases${params.size ? `?${params}` : ''}`;
  };
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    apply();
  });
  form.querySelector('select')?.addEventListener('change', apply);
  main.append(heading(me.admin ? 'Leases' : 'Your leases'), form, errors, list);

  let types: string[] = [];
  void keepFresh(signal, errors, async () => {
    if (types.length === 0) {
      const { items } = await api.get<{ items: Blueprint[] }>('/v1/blueprints', {}, signal);
      types = [...new Set(items.map((b) => b.resourceType))].sort();
      typeChoices.replaceChildren(...types.map((t) => h('option', { value: t })));
    }
    const leases = (await fetchLeases(context, status, type, types))
      .filter((l) => !owner || l.owner === owner)
      .sort((a, b) => b.requestedAt.localeCompare(a.requestedAt));
    const owners = [...new Set(leases.map((l) => l.owner))].sort();
    redrawIfChanged(ownerChoices, owners.join('\n'), () =>
      owners.map((o) => h('option', { value: o })),
    );
    const key = JSON.stringify(
      leases.map((l) => [
        l.id,
        l.status,
        l.endedAs,
        l.resourceId,
        age(l.requestedAt),
        leaseReasonText(l),
      ]),
    );
    redrawIfChanged(list, key, () =>
      leases.length === 0
        ? [
            h(
              'p',
              { class: 'empty' },
              `No ${status || 'open'} leases${type ? ` of type ${type}` : ''}${owner ? ` held by ${owner}` : ''}.`,
            ),
            h('p', {}, 'Request one: ', code('npx drydock lease --type host -- uname -a')),
          ]
        : [
            table(
              `${leases.length} lease${leases.length === 1 ? '' : 's'}, newest first`,
              ['Lease', 'Status', 'Type', 'Resource', 'Owner', 'Age', 'Reason'],
              leases.map((l) => leaseRow(l, me.admin)),
              { class: 'leases' },
            ),
          ],
    );
  });
}
