/**
 * A command's output after the engine's byte offsets. GetCommandInvocation returns only the first
 * 24,000 characters of each stream (StandardOutputContent / StandardErrorContent); the whole
 * streams go to CloudWatch Logs (CloudWatchOutputConfig), in the log streams
 * `<CommandId>/<InstanceId>/aws-runShellScript/stdout` and `.../stderr`.
 *
 * So while a stream's content is shorter than the limit it is the whole stream so far and is
 * served from the invocation; once it reaches the limit, everything after the offset is read from
 * the log stream. Offsets are bytes of UTF-8; both sources are strings of whole characters, and
 * a cut made here (the per-poll cap) never splits one.
 */
import {
  type CloudWatchLogsClient,
  GetLogEventsCommand,
  type GetLogEventsCommandOutput,
} from '@aws-sdk/client-cloudwatch-logs';
import { wholeCharacters } from '../local-host/utf8.ts';
import { translateSsmError } from './errors.ts';

/** StandardOutputContent / StandardErrorContent hold at most this many characters. */
export const INVOCATION_CONTENT_LIMIT = 24_000;

/** At most this many bytes per stream and poll: a poll stays quick and its record small. */
export const MAX_BYTES_PER_POLL = 256 * 1024;

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
export function bytesAfter(text: string, offset: number, max = MAX_BYTES_PER_POLL): StreamChunk {
  const bytes = Buffer.from(text, 'utf8');
  if (offset >= bytes.length) return { text: '', more: false, lagging: false };
  const rest = bytes.subarray(offset);
  if (rest.length <= max) return { text: rest.toString('utf8'), more: false, lagging: false };
  const cut = wholeCharacters(rest.subarray(0, max), false);
  return { text: cut.text, more: true, lagging: false };
}

/**
 * The stream after `offset`: from `content` (the invocation's) while it is under the limit,
 * otherwise from the log group, reading from the head and skipping `offset` bytes (the handle
 * is immutable JSON, so no continuation token is kept between polls).
 */
export async function streamAfter(options: {
  logs: CloudWatchLogsClient;
  logGroupName: string | undefined;
  commandId: string;
  instanceId: string;
  stream: 'stdout' | 'stderr';
  content: string;
  offset: number;
}): Promise<StreamChunk & { truncated: boolean }> {
  const { content, offset, logGroupName } = options;
  if (content.length < INVOCATION_CONTENT_LIMIT) {
    return { ...bytesAfter(content, offset), truncated: false };
  }
  if (logGroupName === undefined) {
    // No log group: the rest of the stream was never kept anywhere we can read.
    return { ...bytesAfter(content, offset), truncated: true };
  }
  const fromLogs = await readLogStream(options.logs, {
    logGroupName,
    logStreamName: logStreamName(options.commandId, options.instanceId, options.stream),
    skipBytes: offset,
    instanceId: options.instanceId,
  });
  const lagging = fromLogs.totalBytesSeen < Buffer.byteLength(content) && !fromLogs.more;
  return { ...fromLogs, lagging, truncated: false };
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
    if (kept > MAX_BYTES_PER_POLL) break;
    // startFromHead: the last page repeats its forward token.
    if (!page.nextForwardToken || page.nextForwardToken === token) break;
    token = page.nextForwardToken;
    if ((page.events ?? []).length === 0) break;
  }
  const all = Buffer.concat(parts);
  if (all.length <= MAX_BYTES_PER_POLL) {
    return { text: all.toString('utf8'), more: false, lagging: false, totalBytesSeen: seen };
  }
  const cut = wholeCharacters(all.subarray(0, MAX_BYTES_PER_POLL), false);
  return { text: cut.text, more: true, lagging: false, totalBytesSeen: seen };
}
