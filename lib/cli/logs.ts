/**
 * Lease, resource and blueprint logs: fetching them page by page, `drydock logs [--follow]`,
 * and the one-line reason a lease ended, taken from its log.
 */
import type { LogEvent } from '../../lambdas/core/model.ts';
import type { ApiClient } from './api.ts';
import { exitCodeOf, type Interrupts, sleep } from './interrupts.ts';
import type { ApiLease } from './lease.ts';
import { formatLogLine, type Io, printJson } from './output.ts';

export function logsPath(id: string): string {
  const kind = id.startsWith('lease-')
    ? 'leases'
    : id.startsWith('res-')
      ? 'resources'
      : 'blueprints';
  return `/v1/${kind}/${encodeURIComponent(id)}/logs`;
}

/** Every log event after `after`, oldest first (follows the API's pages). */
export async function fetchLogs(
  client: ApiClient,
  id: string,
  after: string | undefined,
): Promise<LogEvent[]> {
  const events: LogEvent[] = [];
  let cursor = after;
  for (let page = 0; page < 100; page++) {
    const { items, cursor: next } = await client.get<{ items: LogEvent[]; cursor?: string }>(
      logsPath(id),
      { query: { after: cursor, limit: 100 } },
    );
    events.push(...items);
    const last = items.at(-1)?.seq ?? next;
    if (!next || items.length === 0 || last === cursor) break;
    cursor = last;
  }
  return events;
}
const REASON_LOGS = new Set([
  'lease.broken',
  'lease.activation-failed',
  'lease.expired',
  'lease.released',
  'lease.requeued',
]);

const ENDING_VERBS: Record<string, string> = {
  'lease.broken': 'broke',
  'lease.activation-failed': 'failed to activate',
  'lease.expired': 'expired',
  'lease.released': 'was released',
};

/**
 * How and why a lease ended, from its endReason and its log (the status alone may already be
 * `destroyed`, which says nothing): e.g. `broke: no blueprint can ever serve this lease ...`.
 */
export function endCause(lease: ApiLease, logs: LogEvent[]): string {
  const ending = [...logs].reverse().find((e) => e.type in ENDING_VERBS);
  const verb = ending ? ENDING_VERBS[ending.type] : `is ${lease.status}`;
  if (lease.endReason) return `${verb}: ${lease.endReason}`;
  const why = ending ?? [...logs].reverse().find((e) => REASON_LOGS.has(e.type));
  if (why) return `${verb}: ${why.message}`;
  const last = logs.at(-1);
  return last
    ? `${verb}; no end reason recorded, its last log says: ${last.message}`
    : `${verb}; no end reason recorded (see \`drydock logs ${lease.id}\`)`;
}

/** `drydock logs <id> [--follow]` */
export async function logsFlow(
  client: ApiClient,
  id: string,
  follow: boolean,
  io: Io,
  interrupts: Interrupts,
): Promise<number> {
  let after: string | undefined;
  const show = (events: LogEvent[]) => {
    for (const event of events) {
      if (io.json) io.out(`${JSON.stringify(event)}\n`);
      else io.out(formatLogLine(`${event.at}  ${event.type.padEnd(26)}`, event.message));
    }
    after = events.at(-1)?.seq ?? after;
  };
  const first = await fetchLogs(client, id, undefined);
  if (io.json && !follow) {
    printJson(io, first);
    return 0;
  }
  show(first);
  if (!follow) {
    if (first.length === 0) io.err(`drydock: no log events for ${id}\n`);
    return 0;
  }
  while (!interrupts.signal.aborted) {
    await sleep(1_000, interrupts.signal);
    if (interrupts.signal.aborted) break;
    show(await fetchLogs(client, id, after));
  }
  return exitCodeOf(interrupts.received ?? 'SIGINT');
}
