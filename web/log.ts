/**
 * A lease's, resource's or blueprint's log, following live: the events so far, then new ones
 * appended as they are written (role=log: screen readers announce the additions politely).
 */
import type { LogEvent } from '../lambdas/core/model.ts';
import { logsPath } from '../lib/cli/logs.ts';
import type { Api } from './api.ts';
import { errorBox, keepFresh, when } from './context.ts';
import { h } from './dom.ts';

export interface FollowedLog {
  element: HTMLElement;
  /** Every event shown so far, oldest first. */
  events: LogEvent[];
}

/** The log section of `id`; `onEvents` hears each batch of new events (commands, say). */
export function followLog(
  api: Api,
  id: string,
  signal: AbortSignal,
  onEvents: (events: LogEvent[]) => void = () => undefined,
): FollowedLog {
  const list = h('ol', { class: 'log', role: 'log', 'aria-label': `Log of ${id}` });
  const empty = h('p', { class: 'empty' }, 'No log events yet.');
  const errors = errorBox();
  const followed: FollowedLog = {
    element: h('section', { 'aria-labelledby': 'log-heading' }, [
      h('h2', { id: 'log-heading' }, 'Log'),
      errors,
      empty,
      list,
    ]),
    events: [],
  };
  let after: string | undefined;
  void keepFresh(
    signal,
    errors,
    async () => {
      // Follows the pages to the end: a burst of events is shown at once.
      for (let page = 0; page < 20; page++) {
        const { items } = await api.get<{ items: LogEvent[]; cursor?: string }>(
          logsPath(id),
          { after, limit: 200 },
          signal,
        );
        if (items.length === 0) break;
        after = items.at(-1)?.seq ?? after;
        followed.events.push(...items);
        empty.hidden = true;
        list.append(
          ...items.map((event) =>
            h(
              'li',
              { 'data-type': event.type },
              h('time', { datetime: event.at }, when(event.at)),
              ' ',
              h('span', { class: 'type' }, event.type),
              ' ',
              h('span', { class: 'message' }, event.message),
            ),
          ),
        );
        onEvents(items);
        if (items.length < 200) break;
      }
    },
    1_000,
  );
  return followed;
}
