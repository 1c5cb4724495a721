/**
 * `drydock lease`, `drydock exec`, `drydock release`: acquire a lease and wait for it while
 * showing its log as it happens, run commands on it, and give it back.
 *
 * Whatever happens after the lease was requested — the command fails, the wait times out,
 * Ctrl-C, an API error — a lease this process asked for is released before it exits (unless
 * the holder asked to keep it: `drydock lease` without a command). When a lease ends without
 * becoming active, the exit message is the lease's own recorded reason, never a generic one.
 */
import { randomUUID } from 'node:crypto';
import type { Lease, LogEvent, WorkingCopySpec } from '../../lambdas/core/model.ts';
import { describeWaitProgress } from '../../lambdas/core/wait-reasons.ts';
import type { ApiClient } from './api.ts';
import {
  type CommandPacing,
  type CommandSession,
  reportCommand,
  runCommand,
} from './command-stream.ts';
import { exitCodeOf, type Interrupts, sleep } from './interrupts.ts';
import { endCause, fetchLogs } from './logs.ts';
import { CliError, EXIT, formatDuration, type Io, printJson } from './output.ts';
import { Progress } from './progress.ts';
import { holdSecondsFrom, keepRenewing } from './renewal.ts';

/** Lease JSON as the API returns it (docs/api-contract.md). */
export type ApiLease = Omit<Lease, 'waitSeq' | 'slotLocks' | 'sweepAt' | 'checkedAt' | 'data'> & {
  /** The resource holding this lease (a working copy's host lease). */
  heldBy?: string;
};

const ENDED = new Set(['released', 'broken', 'destroyed']);

// ---- waiting for a lease ------------------------------------------------------------------

type WaitOutcome =
  | { kind: 'active'; lease: ApiLease }
  | { kind: 'ended'; lease: ApiLease }
  | { kind: 'timeout'; lease: ApiLease }
  | { kind: 'interrupted'; lease: ApiLease | undefined };

interface Session extends CommandSession {
  /** Every log event of the lease seen so far. */
  logs: LogEvent[];
}

/** Prints the lease's new log events; how many there were. */
async function showNewLogs(session: Session, leaseId: string): Promise<number> {
  const after = session.logs.at(-1)?.seq;
  const events = await fetchLogs(session.client, leaseId, after);
  for (const event of events) {
    session.logs.push(event);
    session.progress.line(event.message);
  }
  return events.length;
}

/**
 * Without a terminal (CI logs) there is no status line: a line is printed whenever nothing
 * else was for this long, so a wait never looks like a hang. Under 10 s with the poll's jitter.
 */
export const PROGRESS_LINE_EVERY_MS = 9_000;

/** The progress line: place in line (asked of the API only now), time waited, the reason. */
async function progressLine(session: Session, leaseId: string): Promise<void> {
  const { lease, waitingAhead } = await session.client.get<{
    lease: ApiLease;
    waitingAhead?: number;
  }>(`/v1/leases/${encodeURIComponent(leaseId)}`, { query: { place: 'true' } });
  session.progress.line(
    describeWaitProgress({
      leaseId,
      status: lease.status,
      elapsedSeconds: session.progress.elapsedSeconds(),
      ...(waitingAhead === undefined ? {} : { ahead: waitingAhead }),
      ...(lease.waitReason ? { reason: lease.waitReason } : {}),
    }),
  );
}

async function getLease(client: ApiClient, id: string): Promise<ApiLease> {
  return (await client.get<{ lease: ApiLease }>(`/v1/leases/${encodeURIComponent(id)}`)).lease;
}

async function waitUntilActive(
  session: Session,
  leaseId: string,
  deadline: number,
): Promise<WaitOutcome> {
  const { client, progress, interrupts } = session;
  let interval = 250;
  let lease: ApiLease | undefined;
  let lastLineAt = Date.now();
  for (;;) {
    if (interrupts.signal.aborted) return { kind: 'interrupted', lease };
    if ((await showNewLogs(session, leaseId)) > 0) lastLineAt = Date.now();
    lease = await getLease(client, leaseId);
    if (lease.status === 'active') return { kind: 'active', lease };
    if (ENDED.has(lease.status)) {
      await showNewLogs(session, leaseId);
      return { kind: 'ended', lease };
    }
    if (interrupts.signal.aborted) return { kind: 'interrupted', lease };
    if (Date.now() >= deadline) return { kind: 'timeout', lease };
    if (!session.io.tty && Date.now() - lastLineAt >= PROGRESS_LINE_EVERY_MS) {
      await progressLine(session, leaseId);
      lastLineAt = Date.now();
    }
    progress.status(
      describeWaitProgress({
        leaseId,
        status: lease.status,
        elapsedSeconds: progress.elapsedSeconds(),
        ...(lease.waitReason ? { reason: lease.waitReason } : {}),
      }),
    );
    await sleep(Math.max(0, Math.min(interval, deadline - Date.now())), interrupts.signal);
    interval = Math.min(1_000, Math.round(interval * 1.25));
  }
}

// ---- releasing ----------------------------------------------------------------------------

async function release(session: Session, leaseId: string): Promise<boolean> {
  try {
    const { lease } = await session.client.post<{ lease: ApiLease }>(
      `/v1/leases/${encodeURIComponent(leaseId)}/release`,
      {},
      { retry: true },
    );
    session.progress.line(`released ${leaseId} (${lease.status})`);
    return true;
  } catch (err) {
    session.progress.line(
      `could not release ${leaseId}: ${(err as Error).message}\nrelease it with \`drydock release ${leaseId}\` (it expires by itself at the end of its TTL)`,
    );
    return false;
  }
}

// ---- the commands -------------------------------------------------------------------------

export interface LeaseOptions {
  type: string;
  attributes: Record<string, string>;
  blueprintIds?: string[];
  ttlSeconds?: number;
  /** Give up waiting for the lease to activate after this long. */
  timeoutSeconds: number;
  commandTimeoutSeconds?: number;
  /** Run this on the lease, then release it. */
  command: string[];
  /**
   * Hold the lease only while this process renews it (renewal.ts). @default
   * holdSecondsFrom(process.env): 90 s
   */
  holdSeconds?: number;
  /** A working-copy lease's repositories (--repo, --merge). */
  workingCopy?: WorkingCopySpec;
  /** The command's working directory (a working copy: relative to it; default its first clone). */
  cwd?: string;
}

/** `drydock lease`: returns the exit status. */
export async function leaseFlow(
  client: ApiClient,
  options: LeaseOptions,
  io: Io,
  interrupts: Interrupts,
  pacing?: CommandPacing,
): Promise<number> {
  const progress = new Progress(io);
  const session: Session = { client, io, progress, interrupts, pacing, logs: [] };
  // A retried POST with the same key returns the same lease instead of making a second one.
  const idempotencyKey = randomUUID();
  const holdSeconds = 'holdSeconds' in options ? options.holdSeconds : holdSecondsFrom();
  const { lease: requested } = await client.post<{ lease: ApiLease }>(
    '/v1/leases',
    {
      type: options.type,
      ...(Object.keys(options.attributes).length ? { attributes: options.attributes } : {}),
      ...(options.blueprintIds?.length ? { blueprintIds: options.blueprintIds } : {}),
      ...(options.ttlSeconds ? { ttlSeconds: options.ttlSeconds } : {}),
      ...(holdSeconds ? { holdSeconds } : {}),
      // The server breaks the lease at the same deadline, so it ends even if this process dies.
      waitTimeoutSeconds: options.timeoutSeconds,
      ...(options.workingCopy ? { workingCopy: options.workingCopy } : {}),
    },
    { headers: { 'Idempotency-Key': idempotencyKey }, retry: true },
  );
  const leaseId = requested.id;
  // Held while this process lives: killed without a chance to release, the lease still ends.
  const renewal = holdSeconds
    ? keepRenewing(client, leaseId, holdSeconds, (text) => progress.line(text))
    : undefined;
  interrupts.pending = `lease ${leaseId} may still be held: release it with \`drydock release ${leaseId}\``;
  progress.line(
    `requested ${leaseId}; waiting up to ${formatDuration(options.timeoutSeconds)} for it to activate (Ctrl-C releases it)`,
  );

  let keep = false;
  let ended = false;
  try {
    const waited = await waitUntilActive(
      session,
      leaseId,
      Date.now() + options.timeoutSeconds * 1000,
    );
    switch (waited.kind) {
      case 'interrupted':
        progress.line(`${interrupts.received ?? 'interrupted'}: releasing ${leaseId}`);
        return exitCodeOf(interrupts.received ?? 'SIGINT');
      case 'ended': {
        ended = true;
        const cause = endCause(waited.lease, session.logs);
        if (io.json) printJson(io, { lease: waited.lease });
        throw new CliError(`lease ${leaseId} ${cause}`);
      }
      case 'timeout':
        throw new CliError(
          `gave up after ${formatDuration(options.timeoutSeconds)}: lease ${leaseId} was still ${waited.lease.status}${
            waited.lease.waitReason ? ` (${waited.lease.waitReason})` : ''
          }, so it was released; raise --timeout to wait longer`,
          EXIT.timeout,
        );
      case 'active':
        break;
    }
    const lease = waited.lease;
    progress.line(
      `${leaseId} active after ${formatDuration(progress.elapsedSeconds())} on ${lease.resourceId ?? '?'} (activated ${lease.activatedAt ?? '?'}${
        lease.expiresAt ? `, expires ${lease.expiresAt}` : ''
      })`,
    );

    if (options.command.length === 0) {
      keep = true;
      // Handed over to the user, who releases it (or its TTL does): this process stops renewing.
      if (renewal) {
        renewal.stop();
        await client.post(
          `/v1/leases/${encodeURIComponent(leaseId)}/renew`,
          { drop: true },
          { retry: true },
        );
      }
      if (io.json) printJson(io, { lease });
      else {
        io.out(`${leaseId}\n`);
        progress.line(`release it with \`drydock release ${leaseId}\``);
      }
      return 0;
    }

    const ran = await runCommand(
      session,
      leaseId,
      options.command,
      options.commandTimeoutSeconds,
      options.cwd,
    );
    const code = reportCommand(session, ran);
    if (ran.kind === 'interrupted') progress.line(`releasing ${leaseId}`);
    if (io.json) printJson(io, { lease, command: ran.command });
    return code;
  } catch (err) {
    if (options.command.length > 0 && err instanceof CliError && err.exitCode === EXIT.failure) {
      // With a command, "drydock failed" must not look like the command's own exit 1.
      throw new CliError(err.message, EXIT.cannotRun);
    }
    throw err;
  } finally {
    renewal?.stop();
    if (!keep && !ended) await release(session, leaseId);
    interrupts.pending = undefined;
    progress.clear();
  }
}

/** `drydock exec <lease> -- <command...>`: the command's exit status. */
export async function execFlow(
  client: ApiClient,
  leaseId: string,
  argv: string[],
  timeoutSeconds: number | undefined,
  io: Io,
  interrupts: Interrupts,
  pacing?: CommandPacing,
): Promise<number> {
  const progress = new Progress(io);
  const session: CommandSession = { client, io, progress, interrupts, pacing };
  const ran = await runCommand(session, leaseId, argv, timeoutSeconds);
  const code = reportCommand(session, ran);
  if (io.json) printJson(io, { command: ran.command });
  return code;
}

/** `drydock release <lease...>` */
export async function releaseFlow(client: ApiClient, ids: string[], io: Io): Promise<number> {
  const released: ApiLease[] = [];
  const failures: string[] = [];
  for (const id of ids) {
    try {
      const before = await getLease(client, id).catch(() => undefined);
      const { lease } = await client.post<{ lease: ApiLease }>(
        `/v1/leases/${encodeURIComponent(id)}/release`,
        {},
        { retry: true },
      );
      released.push(lease);
      if (!io.json) {
        io.out(
          before && ENDED.has(before.status)
            ? `${id} was already ${before.status}${before.endReason ? ` (${before.endReason})` : ''}\n`
            : `${id} released\n`,
        );
      }
    } catch (err) {
      failures.push(`${id}: ${(err as Error).message}`);
    }
  }
  if (io.json) printJson(io, released);
  if (failures.length > 0) throw new CliError(failures.join('\n'));
  return 0;
}
