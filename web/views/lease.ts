/**
 * One lease: its details and reason, its log following live, the commands run on it with
 * their output, and a Release button for its holder or an admin.
 */
import type { CommandRecord, LogEvent } from '../../lambdas/core/model.ts';
import { leaseReasonText, leaseStatusText } from '../../lib/cli/lease-text.ts';
import { formatDuration } from '../../lib/cli/output.ts';
import { ApiError } from '../api.ts';
import {
  errorBox,
  heading,
  keepFresh,
  link,
  type PageContext,
  redrawIfChanged,
  showError,
  when,
} from '../context.ts';
import { details, h } from '../dom.ts';
import { followLog } from '../log.ts';
import type { PageLease } from './leases.ts';

const ENDED_LEASE = new Set(['released', 'broken', 'destroyed']);
const ENDED_COMMAND = new Set(['finished', 'failed', 'cancelled']);

type PageCommand = Omit<CommandRecord, 'env' | 'handle' | 'sweepAt'>;

function commandText(command: PageCommand): string {
  return command.argv ? command.argv.join(' ') : (command.script ?? '');
}

function commandOutcome(command: PageCommand): string {
  const result = command.result;
  if (!result) return command.error ?? '';
  if (result.timedOut) return `timed out after ${formatDuration(result.durationMs / 1000)}`;
  return `exit ${result.exitCode ?? '?'} in ${formatDuration(result.durationMs / 1000)}`;
}

function outputOf(command: PageCommand, stream: 'stdout' | 'stderr'): string {
  return command.result?.[stream] ?? command.output?.[stream].text ?? '';
}

function commandItem(command: PageCommand): HTMLElement {
  const stdout = outputOf(command, 'stdout');
  const stderr = outputOf(command, 'stderr');
  return h(
    'article',
    { class: 'command', 'data-command': command.id, 'aria-labelledby': `cmd-${command.id}` },
    h('h3', { id: `cmd-${command.id}` }, h('code', {}, commandText(command))),
    details([
      ['Status', command.status],
      ['Outcome', commandOutcome(command)],
      ['Started', when(command.startedAt ?? command.createdAt)],
    ]),
    stdout ? [h('h4', {}, 'stdout'), h('pre', { class: 'stdout', tabindex: '0' }, stdout)] : false,
    stderr ? [h('h4', {}, 'stderr'), h('pre', { class: 'stderr', tabindex: '0' }, stderr)] : false,
    command.result?.truncated ? h('p', {}, 'Output cut: only its tail is kept.') : false,
  );
}

export function leasePage({ api, me, main, signal, id }: PageContext): void {
  const leaseId = id as string;
  const path = `/v1/leases/${encodeURIComponent(leaseId)}`;
  const errors = errorBox();
  const facts = h('div', { id: 'lease-details' });
  const actions = h('div', { class: 'actions' });
  const outcome = h('p', { role: 'status', class: 'outcome' });
  const commandList = h('div', { id: 'commands' });
  const commands = new Map<string, PageCommand>();
  const commandIds: string[] = [];

  main.append(heading(`Lease ${leaseId}`), errors, facts, actions, outcome);

  let lease: PageLease | undefined;
  const release = h('button', { type: 'button', id: 'release' }, 'Release lease');
  release.addEventListener('click', async () => {
    release.disabled = true;
    try {
      const { lease: released } = await api.request<{ lease: PageLease }>(
        'POST',
        `${path}/release`,
      );
      outcome.textContent = `Released: ${leaseId} is ${leaseStatusText(released)}.`;
    } catch (err) {
      showError(errors, err);
      release.disabled = false;
    }
  });

  const drawCommands = () =>
    redrawIfChanged(commandList, JSON.stringify(commandIds.map((c) => commands.get(c))), () =>
      commandIds.length === 0
        ? [h('p', { class: 'empty' }, 'No commands run on this lease yet.')]
        : commandIds
            .map((c) => commands.get(c))
            .filter((c) => c !== undefined)
            .map(commandItem),
    );

  const log = followLog(api, leaseId, signal, (events: LogEvent[]) => {
    for (const event of events) {
      const commandId = event.data?.commandId;
      if (typeof commandId === 'string' && !commandIds.includes(commandId))
        commandIds.push(commandId);
    }
  });
  main.append(
    h(
      'section',
      { 'aria-labelledby': 'commands-heading' },
      h('h2', { id: 'commands-heading' }, 'Commands'),
      commandList,
    ),
    log.element,
  );

  void keepFresh(signal, errors, async () => {
    try {
      ({ lease } = await api.get<{ lease: PageLease }>(path, {}, signal));
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        throw new ApiError(404, 'not_found', `${err.message} (a holder sees only its own leases)`);
      }
      throw err;
    }
    const current = lease;
    redrawIfChanged(facts, JSON.stringify(current), () => [
      details([
        ['Status', leaseStatusText(current)],
        [current.endReason ? 'Ended because' : 'Waiting because', leaseReasonText(current)],
        ['Type', current.type],
        ['Owner', current.owner],
        [
          'Resource',
          current.resourceId
            ? me.admin
              ? link(`/resources/${encodeURIComponent(current.resourceId)}`, current.resourceId)
              : current.resourceId
            : '',
        ],
        [
          'Blueprint',
          current.blueprintId
            ? link(`/blueprints/${encodeURIComponent(current.blueprintId)}`, current.blueprintId)
            : '',
        ],
        [
          'Attributes',
          Object.entries(current.attributes)
            .map(([k, v]) => `${k}=${v}`)
            .join(', '),
        ],
        ['Requested', when(current.requestedAt)],
        ['Active since', when(current.activatedAt)],
        ['Expires', when(current.expiresAt)],
        ['Ended', when(current.releasedAt ?? current.destroyedAt)],
      ]),
    ]);
    const mayRelease =
      !ENDED_LEASE.has(current.status) && (me.admin || current.owner === me.principal);
    if (mayRelease && !actions.contains(release)) actions.replaceChildren(release);
    if (!mayRelease && actions.contains(release)) actions.replaceChildren();

    const open = commandIds.filter((c) => !ENDED_COMMAND.has(commands.get(c)?.status ?? ''));
    const read = await Promise.all(
      open.map((c) =>
        api.get<{ command: PageCommand }>(`${path}/commands/${encodeURIComponent(c)}`, {}, signal),
      ),
    );
    for (const { command } of read) commands.set(command.id, command);
    drawCommands();
  });
}
