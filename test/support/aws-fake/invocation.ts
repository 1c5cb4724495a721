/**
 * One command invocation (a command on one instance) and its status at any moment, replayed
 * from what happened: when it was sent, when the instance was reachable, the script, a cancel.
 * Nothing is stored per tick, so the status is the same whenever and however often it is read.
 *
 * Statuses and StatusDetails follow "Understanding command statuses"
 * (docs.aws.amazon.com/systems-manager/latest/userguide/monitor-commands.html) and the
 * GetCommandInvocation StatusDetails list (API_GetCommandInvocation.html):
 *
 *   sent ──readyAt──▶ Pending ─(agent reachable)─▶ InProgress ─▶ Success | Failed (exit code)
 *                      │  └ unreachable at readyAt: Delayed (retried when it is back)
 *                      ├ not delivered by ExpiresAfter: TimedOut / "Delivery Timed Out"
 *                      ├ deregistered before delivery: Failed / "Undeliverable"
 *                      └ CancelCommand: Cancelled
 *   InProgress ─ executionTimeout elapsed: TimedOut / "Execution Timed Out"
 *              ─ CancelCommand: Cancelling, then Cancelled once the agent has stopped it
 *                (unless the script ended first: a finished command stays finished)
 *
 * ResponseCode: -1 while the command has not run ("the command hasn't started running on the
 * managed node, or it wasn't received by the node", API_GetCommandInvocation.html); the exit
 * code when it ended; 137 when the Linux agent killed it on timeout or cancel (amazon-ssm-agent
 * appconfig: CommandStoppedPreemptivelyExitCode = 137, SIGKILL).
 *
 * What the service *reports* lags the agent while the instance is unreachable: an agent that
 * lost its connection keeps running the script, but its progress, exit and output reach the
 * service only when it is back. A command whose agent never comes back expires at ExpiresAfter
 * ("If a command expires, it changes status to DeliveryTimedOut for all invocations that have
 * the status InProgress, Pending, or Delayed", API_Command.html).
 */
import type { ManagedInstance } from './instances.ts';
import type { Script } from './rules.ts';

export type InvocationStatus =
  | 'Pending'
  | 'InProgress'
  | 'Delayed'
  | 'Success'
  | 'Cancelled'
  | 'TimedOut'
  | 'Failed'
  | 'Cancelling';

export const KILLED_EXIT_CODE = 137;
export const NOT_RUN_RESPONSE_CODE = -1;

export interface InvocationState {
  status: InvocationStatus;
  details: string;
  responseCode: number;
  terminal: boolean;
  /** When the agent started the script (undefined: it never got it). */
  startedAt?: number;
  endedAt?: number;
}

export interface Invocation {
  commandId: string;
  instance: ManagedInstance;
  script: Script;
  sentAt: number;
  /** When the service first tries to hand it to the agent. */
  readyAt: number;
  /** ExpiresAfter: sentAt + TimeoutSeconds + executionTimeout (monitor-commands.html). */
  expiresAt: number;
  executionTimeoutMs: number;
  cancelDelayMs: number;
  cancelAt?: number;
}

function ended(
  status: InvocationStatus,
  details: string,
  responseCode: number,
  endedAt: number,
  startedAt?: number,
): InvocationState {
  return { status, details, responseCode, terminal: true, endedAt, startedAt };
}

/** When the agent received it, if it has by `t`: never after a cancel, expiry or deregistration. */
export function deliveredAt(inv: Invocation, t: number): number | undefined {
  const bound = Math.min(t, inv.expiresAt - 1, (inv.cancelAt ?? Number.POSITIVE_INFINITY) - 1);
  return inv.instance.firstReachable(inv.readyAt, bound);
}

/** How the script ends once delivered at `d`; on a tie the script's own exit wins the race. */
function scriptEnd(inv: Invocation, d: number): InvocationState {
  const exit = inv.script.exitCode;
  const candidates = [
    ended(
      exit === 0 ? 'Success' : 'Failed',
      exit === 0 ? 'Success' : 'Failed',
      exit,
      d + inv.script.durationMs,
      d,
    ),
    ended('TimedOut', 'Execution Timed Out', KILLED_EXIT_CODE, d + inv.executionTimeoutMs, d),
  ];
  if (inv.cancelAt !== undefined) {
    candidates.push(
      ended('Cancelled', 'Cancelled', KILLED_EXIT_CODE, inv.cancelAt + inv.cancelDelayMs, d),
    );
  }
  return candidates.reduce((first, c) => (c.endedAt! < first.endedAt! ? c : first));
}

/** What is true at `t` on the agent and in the service together. */
export function trueStateAt(inv: Invocation, t: number): InvocationState {
  const d = deliveredAt(inv, t);
  if (d === undefined) {
    const endings = [
      inv.cancelAt === undefined ? undefined : ended('Cancelled', 'Cancelled', -1, inv.cancelAt),
      inv.instance.deregisteredAt === undefined
        ? undefined
        : ended('Failed', 'Undeliverable', -1, Math.max(inv.instance.deregisteredAt, inv.sentAt)),
      ended('TimedOut', 'Delivery Timed Out', -1, inv.expiresAt),
    ].filter((e): e is InvocationState => e !== undefined && e.endedAt! <= t);
    const first = endings.reduce<InvocationState | undefined>(
      (a, e) => (a === undefined || e.endedAt! < a.endedAt! ? e : a),
      undefined,
    );
    if (first) return first;
    const status = t >= inv.readyAt ? 'Delayed' : 'Pending';
    return { status, details: status, responseCode: NOT_RUN_RESPONSE_CODE, terminal: false };
  }
  const end = scriptEnd(inv, d);
  if (t >= end.endedAt!) return end;
  const cancelling = inv.cancelAt !== undefined && inv.cancelAt <= t;
  return {
    status: cancelling ? 'Cancelling' : 'InProgress',
    details: cancelling ? 'Cancelling' : 'InProgress',
    responseCode: NOT_RUN_RESPONSE_CODE,
    terminal: false,
    startedAt: d,
  };
}

/** What GetCommandInvocation reports at `now`, and until when the agent's output has arrived. */
export function reportedStateAt(
  inv: Invocation,
  now: number,
): { state: InvocationState; outputUntil: number } {
  const truth = trueStateAt(inv, now);
  const silent = inv.instance.silentSince(now);
  if (silent === undefined || truth.startedAt === undefined) {
    return { state: truth, outputUntil: Math.min(now, truth.endedAt ?? now) };
  }
  const heard = trueStateAt(inv, silent);
  if (heard.terminal) return { state: heard, outputUntil: heard.endedAt! };
  if (now >= inv.expiresAt) {
    return {
      state: ended('TimedOut', 'Delivery Timed Out', -1, inv.expiresAt, heard.startedAt),
      outputUntil: silent,
    };
  }
  const cancelling = inv.cancelAt !== undefined && inv.cancelAt <= now;
  return {
    state: {
      ...heard,
      status: cancelling ? 'Cancelling' : 'InProgress',
      details: cancelling ? 'Cancelling' : 'InProgress',
    },
    outputUntil: silent,
  };
}
