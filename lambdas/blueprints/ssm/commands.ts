/**
 * The command interface of a host reached through SSM Run Command (AWS-RunShellScript), shared
 * by every blueprint type whose hosts are SSM managed instances. It knows an instance, a working
 * directory and a log group; nothing about pools or resources.
 *
 * start (idempotent by the drydock command id), its records in `ssm-command:<id>`:
 *
 * ```
 * a handle recorded? ── yes ──────────────────────────────────────────▶ return it
 *      │ no
 * an intent recorded? ── yes ─▶ ListCommands(instance, last hour): Comment `drydock <id>`?
 *      │ no                        yes ─▶ record its handle, return it;  no ─▶ send (below)
 * record the intent ─▶ SendCommand(Comment `drydock <id>`) ─▶ record the handle ─▶ return it
 * ```
 *
 * SendCommand has no client token, so the Comment is the idempotency key, and ListCommands (which
 * cannot filter on it) is asked only when an earlier start may have sent without recording.
 * The window left: ListCommands is eventually consistent, so a retry within seconds of a crash
 * *between SendCommand and the handle record* could miss the first command and send a second;
 * so could two starts of one command racing from their first record. The engine records the
 * handle right after start and starts a command from one worker, so this needs a crash in that
 * instant and a redelivery faster than SSM's listing.
 */
import { createHash } from 'node:crypto';
import type { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import {
  CancelCommandCommand,
  GetCommandInvocationCommand,
  type GetCommandInvocationCommandOutput,
  ListCommandsCommand,
  SendCommandCommand,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import { z } from 'zod';
import type {
  BlueprintContext,
  CommandInterface,
  CommandProgress,
  ParsedCommand,
} from '../../core/blueprint.ts';
import { DrydockError, ResourceGoneError } from '../../core/errors.ts';
import type { Clock } from '../../core/ports.ts';
import { parseHandle, relativePathInside } from '../shared.ts';
import { errorName, translateSsmError } from './errors.ts';
import { streamAfter } from './output.ts';
import { commandScript } from './script.ts';

export const RUN_SHELL_SCRIPT = 'AWS-RunShellScript';

/** Right after SendCommand, GetCommandInvocation may not know the invocation yet: this long. */
export const INVOCATION_VISIBLE_WITHIN_MS = 60_000;

export const ssmHandleSchema = z.object({
  ssmCommandId: z.string(),
  instanceId: z.string(),
  sentAtMs: z.number(),
  timeoutSeconds: z.number(),
  logGroupName: z.string().optional(),
});
export type SsmCommandHandle = z.infer<typeof ssmHandleSchema>;

export interface SsmCommandOptions {
  ssm: SSMClient;
  logs: CloudWatchLogsClient;
  records: BlueprintContext['records'];
  clock: Clock;
  instanceId: string;
  /** Absolute directory on the host the command runs in (created if missing). */
  workDir: string;
  /** Where SSM sends the whole output; without one, output past 24,000 characters is lost. */
  logGroupName: string | undefined;
  /** Run as this user (runuser) instead of root. */
  user?: string;
}

/**
 * The SSM command interface, plus `send`: one SendCommand with no idempotency bookkeeping, for
 * housekeeping commands (files, cleanup, health ping) whose ids are never retried — a retried
 * housekeeping step sends again, and its scripts are idempotent.
 */
export interface SsmCommands extends CommandInterface {
  send(command: ParsedCommand): Promise<SsmCommandHandle>;
}

/** The Comment housekeeping commands carry (they have no drydock command id). */
export const HOUSEKEEPING_COMMENT = 'drydock housekeeping';

/** The Comment that names a drydock command on SSM (at most 100 characters). */
export function commentFor(commandId: string): string {
  const comment = `drydock ${commandId}`;
  return comment.length <= 100
    ? comment
    : `drydock #${createHash('sha256').update(commandId).digest('hex').slice(0, 32)}`;
}

const recordScope = (commandId: string) => `ssm-command:${commandId}`;

/** The service answered (an error response): the request was refused, not lost in transit. */
function answeredBySsm(err: unknown): boolean {
  const status = (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
  return typeof status === 'number' && status >= 400 && status < 500;
}

export function ssmCommandInterface(options: SsmCommandOptions): SsmCommands {
  const { ssm, logs, records, clock, instanceId } = options;

  /** What earlier starts of this command left: its handle, or whether one was about to send. */
  async function earlierStart(
    commandId: string,
  ): Promise<{ handle?: SsmCommandHandle; intended: boolean }> {
    let intents = 0;
    for (const record of await records.list(recordScope(commandId))) {
      const parsed = ssmHandleSchema.safeParse(record.handle);
      if (parsed.success) return { handle: parsed.data, intended: true };
      if (record.intent === true) intents++;
      // SSM answered an earlier SendCommand with an error: that one was certainly not sent.
      if (record.notSent === true) intents--;
    }
    return { intended: intents > 0 };
  }

  /** The command an earlier start sent but did not record, found by its Comment. */
  async function findSent(commandId: string): Promise<SsmCommandHandle | undefined> {
    const comment = commentFor(commandId);
    const after = new Date(clock.now() - 3_600_000).toISOString();
    let token: string | undefined;
    for (let page = 0; page < 10; page++) {
      const out = await ssm
        .send(
          new ListCommandsCommand({
            InstanceId: instanceId,
            Filters: [{ key: 'InvokedAfter', value: after }],
            ...(token === undefined ? {} : { NextToken: token }),
          }),
        )
        .catch((err) => {
          throw translateSsmError(err, 'ListCommands', instanceId);
        });
      const found = out.Commands?.find((c) => c.Comment === comment && c.CommandId);
      if (found?.CommandId) {
        return {
          ssmCommandId: found.CommandId,
          instanceId,
          sentAtMs: found.RequestedDateTime?.getTime() ?? clock.now(),
          timeoutSeconds: Number(found.Parameters?.executionTimeout?.[0] ?? 3600),
          ...(found.CloudWatchOutputConfig?.CloudWatchLogGroupName
            ? { logGroupName: found.CloudWatchOutputConfig.CloudWatchLogGroupName }
            : {}),
        };
      }
      token = out.NextToken;
      if (!token) break;
    }
    return undefined;
  }

  /** The script of `command` in this interface's working directory, checked before any send. */
  function scriptOf(command: ParsedCommand): string[] {
    const cwd = relativePathInside(command.cwd ?? '.', 'cwd', { allowRoot: true });
    return commandScript({
      workDir: options.workDir,
      cwd,
      ...(command.env ? { env: command.env } : {}),
      command,
      ...(options.user ? { user: options.user } : {}),
    });
  }

  /** One SendCommand. `onRefused` runs when SSM answered with an error (nothing was sent). */
  async function sendCommand(
    lines: string[],
    command: ParsedCommand,
    comment: string,
    onRefused: () => Promise<void> = async () => {},
  ): Promise<SsmCommandHandle> {
    const sentAtMs = clock.now();
    const out = await ssm
      .send(
        new SendCommandCommand({
          InstanceIds: [instanceId],
          DocumentName: RUN_SHELL_SCRIPT,
          Comment: comment,
          Parameters: {
            commands: lines,
            executionTimeout: [String(command.timeoutSeconds)],
          },
          // The command expires (DeliveryTimedOut) this long after sending if the agent has not
          // finished it: past the execution timeout, so a long command on a live host never does.
          TimeoutSeconds: Math.max(30, command.timeoutSeconds + 60),
          ...(options.logGroupName
            ? {
                CloudWatchOutputConfig: {
                  CloudWatchOutputEnabled: true,
                  CloudWatchLogGroupName: options.logGroupName,
                },
              }
            : {}),
        }),
      )
      .catch(async (err) => {
        if (answeredBySsm(err)) await onRefused();
        throw translateSsmError(err, 'SendCommand', instanceId);
      });
    const ssmCommandId = out.Command?.CommandId;
    if (!ssmCommandId) {
      throw new DrydockError(
        'cloud_error',
        `SendCommand on instance ${instanceId} returned no command id`,
      );
    }
    return {
      ssmCommandId,
      instanceId,
      sentAtMs,
      timeoutSeconds: command.timeoutSeconds,
      ...(options.logGroupName ? { logGroupName: options.logGroupName } : {}),
    };
  }

  async function send(command: ParsedCommand): Promise<SsmCommandHandle> {
    return sendCommand(scriptOf(command), command, HOUSEKEEPING_COMMENT);
  }

  async function start(commandId: string, command: ParsedCommand) {
    // Built first: a bad env name is refused before anything is sent.
    const lines = scriptOf(command);
    const earlier = await earlierStart(commandId);
    if (earlier.handle) return earlier.handle;
    if (earlier.intended) {
      const found = await findSent(commandId);
      if (found) {
        await records.append(recordScope(commandId), { handle: found });
        return found;
      }
    } else {
      await records.append(recordScope(commandId), { intent: true, at: clock.now() });
    }
    const handle = await sendCommand(lines, command, commentFor(commandId), async () => {
      await records.append(recordScope(commandId), { notSent: true });
    });
    await records.append(recordScope(commandId), { handle });
    return handle;
  }

  async function invocation(
    handle: SsmCommandHandle,
  ): Promise<GetCommandInvocationCommandOutput | undefined> {
    try {
      return await ssm.send(
        new GetCommandInvocationCommand({
          CommandId: handle.ssmCommandId,
          InstanceId: handle.instanceId,
        }),
      );
    } catch (err) {
      // Eventual consistency: right after SendCommand the invocation may not exist yet.
      if (
        errorName(err) === 'InvocationDoesNotExist' &&
        clock.now() - handle.sentAtMs < INVOCATION_VISIBLE_WITHIN_MS
      ) {
        return undefined;
      }
      if (errorName(err) === 'InvocationDoesNotExist' || errorName(err) === 'InvalidCommandId') {
        throw new ResourceGoneError(
          `command ${handle.ssmCommandId} on instance ${handle.instanceId} is unknown to SSM (${errorName(err)})`,
          { cause: err, context: { instanceId: handle.instanceId } },
        );
      }
      throw translateSsmError(err, 'GetCommandInvocation', handle.instanceId);
    }
  }

  async function cancel(raw: Record<string, unknown>) {
    const handle = parseHandle(ssmHandleSchema, raw, 'SSM');
    try {
      await ssm.send(
        new CancelCommandCommand({
          CommandId: handle.ssmCommandId,
          InstanceIds: [handle.instanceId],
        }),
      );
    } catch (err) {
      // Nothing left to stop: the command or the instance is gone (cancelling an ended command
      // is accepted by SSM and changes nothing).
      if (errorName(err) === 'InvalidCommandId' || errorName(err) === 'InvalidInstanceId') return;
      throw translateSsmError(err, 'CancelCommand', handle.instanceId);
    }
  }

  async function poll(raw: Record<string, unknown>, from: { stdout: number; stderr: number }) {
    const handle = parseHandle(ssmHandleSchema, raw, 'SSM');
    const inv = await invocation(handle);
    const stream = (name: 'stdout' | 'stderr', content: string | undefined, offset: number) =>
      streamAfter({
        logs,
        logGroupName: handle.logGroupName,
        commandId: handle.ssmCommandId,
        instanceId: handle.instanceId,
        stream: name,
        content: content ?? '',
        finished: ended,
        offset,
      });
    const status = statusOf(inv, handle);
    const ended = status.state === 'finished';
    // Before the invocation is visible there is no output yet either.
    const [stdout, stderr] = inv
      ? await Promise.all([
          stream('stdout', inv.StandardOutputContent, from.stdout),
          stream('stderr', inv.StandardErrorContent, from.stderr),
        ])
      : [undefined, undefined];
    const output = { stdout: stdout?.text ?? '', stderr: stderr?.text ?? '' };
    // A command still running past its timeout is the engine's to stop (command-runner,
    // COMMAND_KILL_GRACE_SECONDS); an agent that went silent ends in SSM's delivery timeout.
    if (status.state === 'running')
      return { state: 'running', ...output } satisfies CommandProgress;
    // Finished, but output is still to come (cut by the per-poll cap, or the log group lags);
    // the engine's deadline bounds the wait.
    const pending = [stdout, stderr].some((s) => s?.more || s?.lagging);
    if (pending) return { state: 'running', ...output } satisfies CommandProgress;
    return finished(handle, inv, output, status, stdout, stderr);
  }

  function finished(
    handle: SsmCommandHandle,
    inv: GetCommandInvocationCommandOutput | undefined,
    output: { stdout: string; stderr: string },
    status: Omit<Ended, 'state'>,
    ...streams: Array<{ truncated: boolean } | undefined>
  ): CommandProgress {
    const start = Date.parse(inv?.ExecutionStartDateTime ?? '');
    const end = Date.parse(inv?.ExecutionEndDateTime ?? '');
    const durationMs =
      Number.isFinite(start) && Number.isFinite(end)
        ? Math.max(0, end - start)
        : Math.max(0, clock.now() - handle.sentAtMs);
    return {
      state: 'finished',
      ...output,
      exitCode: status.exitCode,
      timedOut: status.timedOut,
      ...(status.cancelled ? { cancelled: true } : {}),
      ...(streams.some((s) => s?.truncated) ? { truncated: true } : {}),
      durationMs,
    };
  }

  return { start, send, poll, cancel };
}

type Ended = { state: 'finished'; exitCode: number | null; timedOut: boolean; cancelled?: boolean };

/**
 * Each GetCommandInvocation status (SSM API reference, "Understanding command statuses"):
 * Pending, InProgress, Delayed (the agent is unreachable; SSM retries) and Cancelling are still
 * running; Success and Failed carry the script's ResponseCode; TimedOut is an execution timeout
 * (StatusDetails `Execution Timed Out`) or a delivery timeout, which means the instance never
 * took the command; Cancelled; Undeliverable (the instance does not exist or is not registered);
 * Terminated (the system stopped it: a killed command, exit code null).
 */
export function statusOf(
  inv: GetCommandInvocationCommandOutput | undefined,
  handle: SsmCommandHandle,
): { state: 'running' } | Ended {
  if (!inv) return { state: 'running' };
  const where = `instance ${handle.instanceId}`;
  // Undeliverable and Terminated are StatusDetails (the SDK's Status enum has neither): look first.
  if (inv.StatusDetails === 'Undeliverable') {
    throw new ResourceGoneError(
      `command ${handle.ssmCommandId} is undeliverable to ${where} (it no longer exists or is not registered with SSM)`,
      { context: { instanceId: handle.instanceId } },
    );
  }
  if (inv.StatusDetails === 'Terminated')
    return { state: 'finished', exitCode: null, timedOut: false };
  switch (inv.Status) {
    case 'Success':
    case 'Failed':
      return { state: 'finished', exitCode: inv.ResponseCode ?? null, timedOut: false };
    case 'TimedOut':
      if (inv.StatusDetails === 'Delivery Timed Out' || inv.StatusDetails === 'DeliveryTimedOut') {
        throw new ResourceGoneError(
          `command ${handle.ssmCommandId} was never delivered to ${where} (delivery timed out: the host is offline)`,
          { context: { instanceId: handle.instanceId } },
        );
      }
      return { state: 'finished', exitCode: null, timedOut: true };
    case 'Cancelled':
      return { state: 'finished', exitCode: null, timedOut: false, cancelled: true };
    default:
      // Pending, InProgress, Delayed, Cancelling (and any status added later).
      return { state: 'running' };
  }
}
