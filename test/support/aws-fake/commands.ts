/**
 * SSM Run Command on the fake instances: SendCommand, GetCommandInvocation, CancelCommand, and
 * the agent's streaming of output into CloudWatch Logs.
 *
 * - SendCommand (docs.aws.amazon.com/systems-manager/latest/APIReference/API_SendCommand.html):
 *   only AWS-RunShellScript is known (others: InvalidDocument); an instance that is unknown,
 *   deregistered or not Online is refused with InvalidInstanceId ("SSM Agent isn't registered
 *   with the SSM endpoint"; the brief of issue 9 asks for offline too); TimeoutSeconds 30–2592000
 *   (default 3600); the document's executionTimeout 1–172800 seconds (default 3600).
 * - GetCommandInvocation (API_GetCommandInvocation.html): InvocationDoesNotExist for a while
 *   after SendCommand (the service is eventually consistent; callers retry, see
 *   github.com/aws/aws-sdk/issues/86); StandardOutputContent is "the first 24,000 characters
 *   written by the plugin to stdout", StandardErrorContent "the first 8,000 characters ... to
 *   stderr" (amazon-ssm-agent: MaxStdoutLength 24000, MaxStderrLength 8000, with its
 *   "---Output truncated---" suffix inside the limit), and both are empty unless the status is
 *   Success or Failed ("If the command hasn't finished running ... this string is empty").
 *   StandardOutputUrl/StandardErrorUrl are empty: no S3 bucket was given.
 * - CloudWatch output ("Configuring Amazon CloudWatch Logs for Run Command",
 *   docs.aws.amazon.com/systems-manager/latest/userguide/sysman-rc-setting-up-cwlogs.html): the
 *   agent streams the complete output, as it is produced, to the streams
 *   `<CommandId>/<InstanceId>/aws-runShellScript/stdout` and `.../stderr`; the group defaults
 *   to `aws/ssm/AWS-RunShellScript` (API_CloudWatchOutputConfig.html). A stream exists once the
 *   first output of that kind arrives.
 */
import { randomUUID } from 'node:crypto';
import type {
  CancelCommandCommandInput,
  CloudWatchOutputConfig,
  Command,
  GetCommandInvocationCommandInput,
  GetCommandInvocationCommandOutput,
  ListCommandsCommandInput,
  ListCommandsCommandOutput,
  SendCommandCommandInput,
} from '@aws-sdk/client-ssm';
import type { Clock } from '../../../lambdas/core/ports.ts';
import { ssmErrors } from './errors.ts';
import type { InstanceRegistry } from './instances.ts';
import { type Invocation, reportedStateAt, trueStateAt } from './invocation.ts';
import type { LogStore } from './logs.ts';
import { type CommandRule, type OutputChunk, type StreamName, scriptFor } from './rules.ts';

export const RUN_SHELL_SCRIPT = 'AWS-RunShellScript';
export const PLUGIN_NAME = 'aws:runShellScript';
/** The plugin's name in stream names: ':' is not allowed in a log stream name. */
const PLUGIN_STREAM_ID = 'aws-runShellScript';
const DEFAULT_LOG_GROUP = `aws/ssm/${RUN_SHELL_SCRIPT}`;
const CONTENT_LIMIT: Record<StreamName, number> = { stdout: 24_000, stderr: 8_000 };
const TRUNCATED_SUFFIX: Record<StreamName, string> = {
  stdout: '\n---Output truncated---',
  stderr: '\n---Error truncated----',
};

export interface CommandTiming {
  /** GetCommandInvocation answers InvocationDoesNotExist for this long after SendCommand. */
  invocationVisibleAfterMs: number;
  /** From SendCommand until the service hands the command to the agent. */
  deliveryDelayMs: number;
  /** From CancelCommand until the agent has killed a running script. */
  cancelDelayMs: number;
}

interface FakeCommand {
  id: string;
  script: string;
  parameters: Record<string, string[]>;
  comment: string | undefined;
  requestedAt: number;
  timeoutSeconds: number;
  cloudWatch: CloudWatchOutputConfig;
  invocations: Map<string, Invocation & { emitted: number }>;
}

export function logStreamName(commandId: string, instanceId: string, stream: StreamName): string {
  return `${commandId}/${instanceId}/${PLUGIN_STREAM_ID}/${stream}`;
}

function integerParameter(
  value: string | undefined,
  name: string,
  min: number,
  max: number,
  fallback: number,
): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < min || parsed > max) {
    throw ssmErrors.invalidParameters(
      `Parameter "${name}" "${value}" is not valid: an integer from ${min} to ${max} is required.`,
    );
  }
  return parsed;
}

/** The first `limit` characters, the agent's suffix taking the last place when cut. */
function truncated(text: string, stream: StreamName): string {
  const limit = CONTENT_LIMIT[stream];
  if (text.length <= limit) return text;
  const suffix = TRUNCATED_SUFFIX[stream];
  return text.slice(0, limit - suffix.length) + suffix;
}

function isoDuration(ms: number): string {
  return `PT${(ms / 1000).toFixed(3)}S`;
}

export class CommandStore {
  private readonly commands = new Map<string, FakeCommand>();

  constructor(
    private readonly clock: Clock,
    private readonly instances: InstanceRegistry,
    private readonly logs: LogStore,
    private readonly rules: readonly CommandRule[],
    private readonly timing: CommandTiming,
  ) {}

  send(input: SendCommandCommandInput): Command {
    const now = this.clock.now();
    if (input.DocumentName !== RUN_SHELL_SCRIPT) {
      throw ssmErrors.invalidDocument(`Document with name ${input.DocumentName} does not exist.`);
    }
    if (input.Targets?.length) {
      throw new Error('FakeAws: SendCommand with Targets is not modelled; pass InstanceIds');
    }
    const ids = input.InstanceIds ?? [];
    if (ids.length === 0 || ids.length > 50) {
      throw ssmErrors.validation('InstanceIds must name 1 to 50 managed nodes.');
    }
    if (new Set(ids).size !== ids.length) {
      throw ssmErrors.duplicateInstanceId('Instance Id is duplicated in the request.');
    }
    const instances = ids.map((id) => {
      const instance = this.instances.get(id);
      if (instance?.ping !== 'Online') {
        throw ssmErrors.invalidInstanceId(
          `Instances [[${id}]] not in a valid state for account 123456789012`,
        );
      }
      if (instance.platform !== 'Linux') {
        throw new Error(`FakeAws: ${RUN_SHELL_SCRIPT} on Windows instance ${id} is not modelled`);
      }
      return instance;
    });
    const parameters = (input.Parameters ?? {}) as Record<string, string[]>;
    const lines = parameters.commands;
    if (!Array.isArray(lines) || lines.length === 0) {
      throw ssmErrors.invalidParameters('Parameter "commands" is required.');
    }
    const executionTimeout = integerParameter(
      parameters.executionTimeout?.[0],
      'executionTimeout',
      1,
      172_800,
      3600,
    );
    const timeoutSeconds = input.TimeoutSeconds ?? 3600;
    if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 30 || timeoutSeconds > 2_592_000) {
      throw ssmErrors.validation(
        `1 validation error detected: Value '${timeoutSeconds}' at 'timeoutSeconds' failed to satisfy constraint: Member must have value between 30 and 2592000`,
      );
    }
    const cloudWatch: CloudWatchOutputConfig = input.CloudWatchOutputConfig?.CloudWatchOutputEnabled
      ? {
          CloudWatchOutputEnabled: true,
          CloudWatchLogGroupName:
            input.CloudWatchOutputConfig.CloudWatchLogGroupName || DEFAULT_LOG_GROUP,
        }
      : { CloudWatchOutputEnabled: false, CloudWatchLogGroupName: '' };
    // The deployed stack creates the group (and an agent allowed to would create it): it
    // exists from the send, while each stream appears only with its first output.
    if (cloudWatch.CloudWatchOutputEnabled)
      this.logs.createGroup(cloudWatch.CloudWatchLogGroupName!);
    const id = randomUUID();
    const script = lines.join('\n');
    const expiresAt = now + (timeoutSeconds + executionTimeout) * 1000;
    const command: FakeCommand = {
      id,
      script,
      parameters,
      comment: input.Comment,
      requestedAt: now,
      timeoutSeconds,
      cloudWatch,
      invocations: new Map(
        instances.map((instance) => [
          instance.id,
          {
            commandId: id,
            instance,
            script: scriptFor(this.rules, script),
            sentAt: now,
            readyAt: now + this.timing.deliveryDelayMs,
            expiresAt,
            executionTimeoutMs: executionTimeout * 1000,
            cancelDelayMs: this.timing.cancelDelayMs,
            emitted: 0,
          },
        ]),
      ),
    };
    this.commands.set(id, command);
    return {
      CommandId: id,
      DocumentName: RUN_SHELL_SCRIPT,
      DocumentVersion: '$DEFAULT',
      Comment: input.Comment ?? '',
      ExpiresAfter: new Date(expiresAt),
      Parameters: parameters,
      InstanceIds: ids,
      Targets: [],
      RequestedDateTime: new Date(now),
      Status: 'Pending',
      StatusDetails: 'Pending',
      TimeoutSeconds: timeoutSeconds,
      TargetCount: ids.length,
      CompletedCount: 0,
      ErrorCount: 0,
      DeliveryTimedOutCount: 0,
      MaxConcurrency: input.MaxConcurrency ?? '50',
      MaxErrors: input.MaxErrors ?? '0',
      CloudWatchOutputConfig: cloudWatch,
    };
  }

  /** Cancels the invocations that have not ended; one that already finished stays finished. */
  cancel(input: CancelCommandCommandInput): void {
    const command = input.CommandId ? this.commands.get(input.CommandId) : undefined;
    if (!command) throw ssmErrors.invalidCommandId(`Command ID ${input.CommandId} is not valid.`);
    const now = this.clock.now();
    for (const id of input.InstanceIds ?? [...command.invocations.keys()]) {
      const invocation = command.invocations.get(id);
      if (!invocation)
        throw ssmErrors.invalidInstanceId(`Instance ${id} is not targeted by this command.`);
      if (invocation.cancelAt === undefined && !trueStateAt(invocation, now).terminal) {
        invocation.cancelAt = now;
      }
    }
  }

  getInvocation(input: GetCommandInvocationCommandInput): GetCommandInvocationCommandOutput {
    const now = this.clock.now();
    if (!input.CommandId || !/^[0-9a-f-]{36}$/.test(input.CommandId)) {
      throw ssmErrors.invalidCommandId(`Command ID ${input.CommandId} is not valid.`);
    }
    if (input.PluginName !== undefined && input.PluginName !== PLUGIN_NAME) {
      throw ssmErrors.validation(`Plugin ${input.PluginName} is not in the document.`);
    }
    const command = this.commands.get(input.CommandId);
    const invocation = command?.invocations.get(input.InstanceId ?? '');
    if (
      !command ||
      !invocation ||
      now < command.requestedAt + this.timing.invocationVisibleAfterMs
    ) {
      throw ssmErrors.invocationDoesNotExist('');
    }
    const { state } = reportedStateAt(invocation, now);
    const finished = state.status === 'Success' || state.status === 'Failed';
    const start = state.startedAt;
    const end = state.terminal ? state.endedAt : undefined;
    return {
      CommandId: command.id,
      InstanceId: invocation.instance.id,
      Comment: command.comment ?? '',
      DocumentName: RUN_SHELL_SCRIPT,
      DocumentVersion: '$DEFAULT',
      PluginName: PLUGIN_NAME,
      ResponseCode: state.responseCode,
      ExecutionStartDateTime: start === undefined ? '' : new Date(start).toISOString(),
      ExecutionElapsedTime: start === undefined ? '' : isoDuration((end ?? now) - start),
      ExecutionEndDateTime:
        end === undefined || start === undefined ? '' : new Date(end).toISOString(),
      Status: state.status,
      StatusDetails: state.details,
      StandardOutputContent: finished ? truncated(this.output(invocation, 'stdout'), 'stdout') : '',
      StandardOutputUrl: '',
      StandardErrorContent: finished ? truncated(this.output(invocation, 'stderr'), 'stderr') : '',
      StandardErrorUrl: '',
      CloudWatchOutputConfig: command.cloudWatch,
      $metadata: { httpStatusCode: 200 },
    };
  }

  /** The whole of one stream of a finished invocation. */
  private output(invocation: Invocation, stream: StreamName): string {
    const { state } = reportedStateAt(invocation, this.clock.now());
    return this.printedBy(invocation, state.endedAt ?? this.clock.now())
      .filter((c) => c.stream === stream)
      .map((c) => c.text)
      .join('');
  }

  /** The chunks the script has printed by `t`. */
  private printedBy(invocation: Invocation, t: number): OutputChunk[] {
    const startedAt = trueStateAt(invocation, t).startedAt;
    if (startedAt === undefined) return [];
    return invocation.script.chunks.filter((c) => startedAt + c.afterMs <= t);
  }

  /**
   * Brings CloudWatch Logs up to date: each chunk the service has received becomes one event,
   * stamped with when it was printed. Called before every fake API call, so log reads see
   * exactly what has arrived by "now".
   */
  syncLogs(): void {
    const now = this.clock.now();
    for (const command of this.commands.values()) {
      if (!command.cloudWatch.CloudWatchOutputEnabled) continue;
      for (const invocation of command.invocations.values()) {
        const { outputUntil } = reportedStateAt(invocation, now);
        const printed = this.printedBy(invocation, outputUntil);
        const startedAt = trueStateAt(invocation, outputUntil).startedAt ?? 0;
        for (const chunk of printed.slice(invocation.emitted)) {
          this.logs.append(
            command.cloudWatch.CloudWatchLogGroupName!,
            logStreamName(command.id, invocation.instance.id, chunk.stream),
            startedAt + chunk.afterMs,
            chunk.text,
            now,
          );
        }
        invocation.emitted = Math.max(invocation.emitted, printed.length);
      }
    }
  }

  /**
   * ListCommands (docs.aws.amazon.com/systems-manager/latest/APIReference/API_ListCommands.html)
   * by InstanceId with the `InvokedAfter` filter, one page. Eventually consistent like
   * GetCommandInvocation: a command is listed only `invocationVisibleAfterMs` after it was sent.
   */
  list(input: ListCommandsCommandInput): ListCommandsCommandOutput {
    const now = this.clock.now();
    const after = input.Filters?.find((f) => f.key === 'InvokedAfter')?.value;
    const afterMs = after === undefined ? Number.NEGATIVE_INFINITY : Date.parse(after);
    const unknownFilter = input.Filters?.find((f) => f.key !== 'InvokedAfter');
    if (unknownFilter) {
      throw new Error(`FakeAws.ListCommands: filter '${unknownFilter.key}' is not modelled`);
    }
    const listed = [...this.commands.values()].filter(
      (c) =>
        (input.InstanceId === undefined || c.invocations.has(input.InstanceId)) &&
        c.requestedAt >= afterMs &&
        now >= c.requestedAt + this.timing.invocationVisibleAfterMs,
    );
    return {
      Commands: listed.map((c) => ({
        CommandId: c.id,
        Comment: c.comment ?? '',
        DocumentName: RUN_SHELL_SCRIPT,
        RequestedDateTime: new Date(c.requestedAt),
        InstanceIds: [...c.invocations.keys()],
      })),
      $metadata: { httpStatusCode: 200 },
    };
  }

  /** For assertions: a command's script, first instance and reported status. */
  describe(
    commandId: string,
  ): { instanceId: string; status: string; statusDetails: string; script: string } | undefined {
    const command = this.commands.get(commandId);
    const first = command?.invocations.values().next().value;
    if (!command || !first) return undefined;
    const { state } = reportedStateAt(first, this.clock.now());
    return {
      instanceId: first.instance.id,
      status: state.status,
      statusDetails: state.details,
      script: command.script,
    };
  }
}
