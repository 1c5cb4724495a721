/** One resource (admins): its details, the leases on it, and its log following live. */
import { age } from '../../lib/cli/output.ts';
import {
  errorBox,
  heading,
  keepFresh,
  link,
  type PageContext,
  redrawIfChanged,
  when,
} from '../context.ts';
import { details, h } from '../dom.ts';
import { followLog } from '../log.ts';
import {
  leaseLinks,
  leasesByResource,
  type PageResource,
  resourceReason,
  resourceStatusText,
} from './resources.ts';

export function resourcePage(context: PageContext): void {
  const { api, main, signal, id } = context;
  const resourceId = id as string;
  const errors = errorBox();
  const facts = h('div', { id: 'resource-details' });
  main.append(heading(`Resource ${resourceId}`), errors, facts);
  main.append(followLog(api, resourceId, signal).element);
  void keepFresh(signal, errors, async () => {
    const [{ resource: r }, leases] = await Promise.all([
      api.get<{ resource: PageResource }>(
        `/v1/resources/${encodeURIComponent(resourceId)}`,
        {},
        signal,
      ),
      leasesByResource(context),
    ]);
    const on = leases.get(r.id) ?? [];
    redrawIfChanged(facts, JSON.stringify([r, on.map((l) => l.id)]), () => [
      details([
        ['Status', resourceStatusText(r)],
        ['Reason', resourceReason(r)],
        ['Blueprint', link(`/blueprints/${encodeURIComponent(r.blueprintId)}`, r.blueprintId)],
        ['Type', r.type],
        ['Leases', [`${r.leaseCount}/${r.capacity} `, ...leaseLinks(on)]],
        ['Uses', String(r.uses)],
        ['Age', age(r.createdAt)],
        ['Suspect since', when(r.suspectSince)],
        ['Last health check', when(r.lastHealthCheckAt)],
        [
          'Attributes',
          Object.entries(r.attributes)
            .map(([k, v]) => `${k}=${v}`)
            .join(', '),
        ],
        ['Created', when(r.createdAt)],
        ['Active since', when(r.activatedAt)],
      ]),
    ]);
  });
}
