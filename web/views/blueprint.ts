/**
 * One blueprint: its limits, config (read-only JSON), health and log, and for admins the
 * enable / drain / disable actions. Each action is sent with the version this page showed
 * (If-Match): when someone else changed the blueprint first, the API refuses and the page
 * says so and shows the blueprint as it now is, rather than overwriting their change.
 */
import type { Blueprint, BlueprintState } from '../../lambdas/core/model.ts';
import { formatDuration } from '../../lib/cli/output.ts';
import { ApiError } from '../api.ts';
import { errorBox, heading, type PageContext, showError, when } from '../context.ts';
import { details, h } from '../dom.ts';
import { followLog } from '../log.ts';
import { healthText } from './overview.ts';

const ACTIONS: Array<[string, BlueprintState, string]> = [
  ['Enable', 'enabled', 'serve new leases'],
  ['Drain', 'draining', 'no new leases; reclaim resources as their leases end'],
  ['Disable', 'disabled', 'no new leases or resources; existing leases continue'],
];

function limitsOf(b: Blueprint): HTMLElement {
  const l = b.limits;
  return details([
    ['Max resources', String(l.maxResources)],
    ['Leases per resource', String(l.leasesPerResource)],
    [
      'Reclaim',
      l.reclaimOnRelease ? 'on release' : `after ${formatDuration(l.idleTtlSeconds)} idle`,
    ],
    ['Idle grace', formatDuration(l.idleGraceSeconds)],
    ['Max age', l.maxAgeSeconds === undefined ? '' : formatDuration(l.maxAgeSeconds)],
    ['Max uses', l.maxUses === undefined ? '' : String(l.maxUses)],
    ['Setup timeout', formatDuration(l.setupTimeoutSeconds)],
  ]);
}

export function blueprintPage({ api, me, main, signal, id }: PageContext): void {
  const blueprintId = id as string;
  const path = `/v1/blueprints/${encodeURIComponent(blueprintId)}`;
  const errors = errorBox();
  const body = h('div', { id: 'blueprint' });
  const outcome = h('p', { role: 'status', class: 'outcome' });
  const actions = h('div', { class: 'actions', role: 'group', 'aria-label': 'Change state' });
  main.append(heading(`Blueprint ${blueprintId}`), errors, outcome, actions, body);

  let shown: Blueprint | undefined;
  const draw = (b: Blueprint) => {
    shown = b;
    body.replaceChildren(
      details([
        ['State', b.state],
        ['Version', String(b.version)],
        ['Type', b.type],
        ['Builds', b.resourceType],
        ['Description', b.description ?? ''],
        ['Health', healthText(b.health)],
        [
          'Attributes',
          Object.entries(b.attributes)
            .map(([k, v]) => `${k}=${v}`)
            .join(', '),
        ],
        ['Updated', when(b.updatedAt)],
      ]),
      h(
        'section',
        { 'aria-labelledby': 'limits-heading' },
        h('h2', { id: 'limits-heading' }, 'Limits'),
        limitsOf(b),
      ),
      h(
        'section',
        { 'aria-labelledby': 'config-heading' },
        h('h2', { id: 'config-heading' }, 'Config'),
        h(
          'pre',
          { class: 'config', tabindex: '0', 'aria-label': 'Config (read-only JSON)' },
          JSON.stringify(b.config ?? null, null, 2),
        ),
      ),
    );
    if (!me.admin) return;
    actions.replaceChildren(
      ...ACTIONS.map(([verb, state, what]) => {
        const button = h(
          'button',
          { type: 'button', 'data-state': state, title: what, disabled: b.state === state },
          verb,
        );
        button.addEventListener('click', () => void change(state, verb));
        return button;
      }),
    );
  };

  const load = async () => {
    const { blueprint } = await api.get<{ blueprint: Blueprint }>(path, {}, signal);
    draw(blueprint);
  };

  const change = async (state: BlueprintState, verb: string) => {
    if (!shown) return;
    const from = shown;
    errors.hidden = true;
    outcome.textContent = `${verb}: sending…`;
    try {
      const { blueprint } = await api.request<{ blueprint: Blueprint }>('PATCH', path, {
        body: { state },
        headers: { 'if-match': String(from.version) },
      });
      draw(blueprint);
      outcome.textContent = `Blueprint ${blueprintId} is now ${blueprint.state} (version ${blueprint.version}).`;
    } catch (err) {
      outcome.textContent = '';
      if (err instanceof ApiError && err.status === 409) {
        // Someone else changed it since this page showed version `from.version`.
        await load().catch(() => undefined);
        showError(
          errors,
          new Error(
            `Someone else changed blueprint ${blueprintId} first: you saw version ${from.version} (${from.state}), it is now version ${shown?.version ?? '?'} (${shown?.state ?? '?'}). Nothing was changed; the page shows it as it is now — check and try again. (${err.message})`,
          ),
        );
        return;
      }
      showError(errors, err);
    }
  };

  load().catch((err) => showError(errors, err));
  main.append(followLog(api, blueprintId, signal).element);
}
