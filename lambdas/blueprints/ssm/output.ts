/**
 * A command's output after the engine's byte offsets. SSM keeps it in two places:
 *
 * - GetCommandInvocation's StandardOutputContent / StandardErrorContent: empty until the command
 *   has finished, then the first 24,000 (stdout) / 8,000 (stderr) characters, ending in the
 *   agent's `---Output truncated---` / `---Error truncated----` line when cut;
 * - CloudWatch Logs (CloudWatchOutputConfig): the whole streams, as they are produced, in
 *   `<CommandId>/<InstanceId>/aws-runShellScript/stdout` and `.../stderr`.
 *
 * So a running command's output comes from the log streams. Once it has finished, the log
 * streams are still read (they hold everything), except when they lag behind a content that was
 * not cut: then the content is the whole stream. Offsets are bytes of UTF-8; both sources are
 * strings of whole characters, and a cut made here (the per-poll cap) never splits one.
 */
import {
  type CloudWatchLogsClient,
  GetLogEventsCommand,
  type GetLogEventsCommandOutput,
} from '@aws-sdk/client-cloudwatch-logs';
import { POLL_MAX_BYTES, wholeCharacters } from '../utf8.ts';
import { translateSsmError } from './errors.ts';

/** What the agent ends a cut StandardOutputContent / StandardErrorContent with. */
const TRUNCATED_MARKERS = ['---Output truncated---', '---Error truncated----'];

/** Whether an invocation's content was cut by the service (the rest is only in the logs). */
export function contentTruncated(content: string): boolean {
  const trimmed = content.trimEnd();
  return TRUNCATED_MARKERS.some((m) => trimmed.endsWith(m));
}

/** SSM's log stream for one stream of one invocation of AWS-RunShellScript. */
export function logStreamName(
  commandId: string,
  instanceId: string,
  stream: 'stdout' | 'stderr',
): string {
  return `${commandId}/${instanceId}/aws-runShellScript/${stream}`;
}

export interface StreamChunk {
  text: string;
  /** More of the stream is known to exist beyond `text` (the per-poll cap cut it). */
  more: boolean;
  /**
   * The stream was read from the log group and the log group holds less than the invocation
   * already showed: its delivery lags, so what follows may not have arrived yet.
   */
  lagging: boolean;
}

/** Bytes of `text` after `offset`, at most `max`, cut at a character boundary. */
export function bytesAfter(text: string, offset: number, max = POLL_MAX_BYTES): StreamChunk {
  const bytes = Buffer.from(text, 'utf8');
  if (offset >= bytes.length) return { text: '', more: false, lagging: false };
  const rest = bytes.subarray(offset);
  if (rest.length <= max) return { text: rest.toString('utf8'), more: false, lagging: false };
  const cut = wholeCharacters(rest.subarray(0, max), false);
  return { text: cut.text, more: true, lagging: false };
}

/** The stream after `offset` (see the top of this file for which source is read when). */
export async function streamAfter(options: {
  logs: CloudWatchLogsClient;
  logGroupName: string | undefined;
  commandId: string;
  instanceId: string;
  stream: 'stdout' | 'stderr';
  /** The invocation's content ('' while it runs). */
  content: string;
  finished: boolean;
  offset: number;
}): Promise<StreamChunk & { truncated: boolean }> {
  const { content, offset, logGroupName, finished } = options;
  const cut = contentTruncated(content);
  if (logGroupName === undefined) {
    // No log group: only the finished content exists, and what it cut was never kept.
    return { ...bytesAfter(content, offset), truncated: cut };
  }
  const fromLogs = await readLogStream(options.logs, {
    logGroupName,
    logStreamName: logStreamName(options.commandId, options.instanceId, options.stream),
    skipBytes: offset,
    instanceId: options.instanceId,
  });
  const contentBytes = Buffer.byteLength(content, 'utf8');
  if (finished && fromLogs.totalBytesSeen < contentBytes && !fromLogs.more) {
    // The logs lag behind what the invocation already shows. An uncut content is the whole
    // stream; a cut one means the rest is still on its way to the logs.
    if (!cut) return { ...bytesAfter(content, offset), truncated: false };
    return { ...fromLogs, lagging: true, truncated: false };
  }
  return { ...fromLogs, truncated: false };
}

async function readLogStream(
  logs: CloudWatchLogsClient,
  options: { logGroupName: string; logStreamName: string; skipBytes: number; instanceId: string },
): Promise<StreamChunk & { totalBytesSeen: number }> {
  const parts: Buffer[] = [];
  let seen = 0;
  let kept = 0;
  let token: string | undefined;
  for (;;) {
    let page: GetLogEventsCommandOutput;
    try {
      page = await logs.send(
        new GetLogEventsCommand({
          logGroupName: options.logGroupName,
          logStreamName: options.logStreamName,
          startFromHead: true,
          ...(token === undefined ? {} : { nextToken: token }),
        }),
      );
    } catch (err) {
      // The stream appears with the first output: no stream yet means nothing to read yet.
      if ((err as { name?: string }).name === 'ResourceNotFoundException') break;
      throw translateSsmError(err, 'GetLogEvents', options.instanceId);
    }
    for (const event of page.events ?? []) {
      const bytes = Buffer.from(event.message ?? '', 'utf8');
      const start = Math.max(0, options.skipBytes - seen);
      seen += bytes.length;
      if (start < bytes.length) {
        parts.push(bytes.subarray(start));
        kept += bytes.length - start;
      }
    }
    if (kept > POLL_MAX_BYTES) break;
    // startFromHead: the last page repeats its forward token.
    if (!page.nextForwardToken || page.nextForwardToken === token) break;
    token = page.nextForwardToken;
    if ((page.events ?? []).length === 0) break;
  }
  const all = Buffer.concat(parts);
  if (all.length <= POLL_MAX_BYTES) {
    return { text: all.toString('utf8'), more: false, lagging: false, totalBytesSeen: seen };
  }
  const cut = wholeCharacters(all.subarray(0, POLL_MAX_BYTES), false);
  return { text: cut.text, more: true, lagging: false, totalBytesSeen: seen };
}
