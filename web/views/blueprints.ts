/** Blueprints: what exists, in what state, how big each pool may grow. */
import type { Blueprint } from '../../lambdas/core/model.ts';
import {
  errorBox,
  heading,
  keepFresh,
  link,
  type PageContext,
  redrawIfChanged,
} from '../context.ts';
import { h, table } from '../dom.ts';
import { EMPTY_BLUEPRINTS, healthText } from './overview.ts';

export function blueprintsPage({ api, main, signal }: PageContext): void {
  const errors = errorBox();
  const list = h('div', { id: 'blueprints' });
  main.append(heading('Blueprints'), errors, list);
  void keepFresh(signal, errors, async () => {
    const { items } = await api.get<{ items: Blueprint[] }>('/v1/blueprints', {}, signal);
    const blueprints = [...items].sort((a, b) => a.id.localeCompare(b.id));
    redrawIfChanged(list, JSON.stringify(blueprints), () =>
      blueprints.length === 0
        ? EMPTY_BLUEPRINTS()
        : [
            table(
              'Every blueprint, by id',
              [
                'Blueprint',
                'Type',
                'Builds',
                'State',
                'Max',
                'Leases per resource',
                'Health',
                'Description',
              ],
              blueprints.map((b) =>
                h(
                  'tr',
                  { 'data-blueprint': b.id },
                  h('th', { scope: 'row' }, link(`/blueprints/${encodeURIComponent(b.id)}`, b.id)),
                  h('td', {}, b.type),
                  h('td', {}, b.resourceType),
                  h('td', { 'data-field': 'state', class: `state-${b.state}` }, b.state),
                  h('td', {}, String(b.limits.maxResources)),
                  h('td', {}, String(b.limits.leasesPerResource)),
                  h('td', {}, healthText(b.health)),
                  h('td', {}, b.description ?? ''),
                ),
              ),
            ),
          ],
    );
  });
}
