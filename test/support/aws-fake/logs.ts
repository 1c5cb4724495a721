/**
 * CloudWatch Logs as far as command output needs it: log groups and streams filled by the fake
 * agent, GetLogEvents and FilterLogEvents.
 *
 * GetLogEvents (docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_GetLogEvents.html):
 * events in timestamp order; without a token, startFromHead=true reads from the oldest event and
 * the default (false) returns the newest ones; at most `limit` (default and maximum 10,000)
 * events and 1 MB; "If you have reached the end of the stream, it returns the same token you
 * passed in" (nextForwardToken). A missing group or stream is ResourceNotFoundException.
 * FilterLogEvents (API_FilterLogEvents.html): events of the chosen streams of a group interleaved
 * by time; only plain filter terms are supported here (every term must occur in the message).
 */
import type {
  FilterLogEventsCommandInput,
  FilterLogEventsCommandOutput,
  GetLogEventsCommandInput,
  GetLogEventsCommandOutput,
  OutputLogEvent,
} from '@aws-sdk/client-cloudwatch-logs';
import { logsErrors } from './errors.ts';
import { paginate } from './pagination.ts';

interface StoredEvent {
  timestamp: number;
  message: string;
  ingestionTime: number;
  eventId: string;
}

const MAX_EVENTS = 10_000;
const MAX_RESPONSE_BYTES = 1_048_576;
/** Each event counts its UTF-8 message plus 26 bytes toward the 1 MB (PutLogEvents quota). */
const EVENT_OVERHEAD_BYTES = 26;

function eventBytes(e: StoredEvent): number {
  return Buffer.byteLength(e.message, 'utf8') + EVENT_OVERHEAD_BYTES;
}

/** A group name from `logGroupName` or `logGroupIdentifier` (a name or an ARN). */
function groupNameOf(input: { logGroupName?: string; logGroupIdentifier?: string }): string {
  if (input.logGroupName && input.logGroupIdentifier) {
    throw logsErrors.invalidParameter(
      'LogGroup name and LogGroup ARN are mutually exclusive parameters.',
    );
  }
  const id = input.logGroupName ?? input.logGroupIdentifier;
  if (!id)
    throw logsErrors.invalidParameter('Either logGroupName or logGroupIdentifier is required.');
  const arn = /^arn:[^:]+:logs:[^:]*:[^:]*:log-group:([^:]+)(:\*)?$/.exec(id);
  return arn ? arn[1]! : id;
}

function output(e: StoredEvent): OutputLogEvent {
  return { timestamp: e.timestamp, message: e.message, ingestionTime: e.ingestionTime };
}

export class LogStore {
  private readonly groups = new Map<string, Map<string, StoredEvent[]>>();
  private nextEventId = 0;

  createGroup(name: string): void {
    if (!this.groups.has(name)) this.groups.set(name, new Map());
  }

  /** Appends one event, creating the group and stream as the SSM agent does on first output. */
  append(
    group: string,
    stream: string,
    timestamp: number,
    message: string,
    ingestionTime: number,
  ): void {
    if (message.length === 0) return; // CloudWatch Logs refuses empty messages; the agent sends none
    this.createGroup(group);
    const streams = this.groups.get(group)!;
    const events = streams.get(stream) ?? [];
    streams.set(stream, events);
    const eventId = String(this.nextEventId++).padStart(56, '0');
    events.push({ timestamp, message, ingestionTime, eventId });
    // Keep timestamp order if a late event is older than the newest (stable for equal times).
    events.sort((a, b) => a.timestamp - b.timestamp);
  }

  /** Every event of a stream, for assertions (empty when the stream does not exist). */
  events(group: string, stream: string): Array<{ timestamp: number; message: string }> {
    return (this.groups.get(group)?.get(stream) ?? []).map((e) => ({
      timestamp: e.timestamp,
      message: e.message,
    }));
  }

  private group(name: string): Map<string, StoredEvent[]> {
    const group = this.groups.get(name);
    if (!group) throw logsErrors.resourceNotFound('The specified log group does not exist.');
    return group;
  }

  getLogEvents(input: GetLogEventsCommandInput): GetLogEventsCommandOutput {
    const streams = this.group(groupNameOf(input));
    if (!input.logStreamName) throw logsErrors.invalidParameter('logStreamName is required.');
    const stored = streams.get(input.logStreamName);
    if (!stored) throw logsErrors.resourceNotFound('The specified log stream does not exist.');
    const limit = input.limit ?? MAX_EVENTS;
    if (limit < 1 || limit > MAX_EVENTS) {
      throw logsErrors.invalidParameter(`limit must be between 1 and ${MAX_EVENTS}.`);
    }
    const events = stored.filter(
      (e) =>
        (input.startTime === undefined || e.timestamp >= input.startTime) &&
        (input.endTime === undefined || e.timestamp < input.endTime),
    );
    const position = this.position(input.nextToken, input.startFromHead ?? false, events.length);
    if (position.forward) {
      const page: StoredEvent[] = [];
      let bytes = 0;
      for (const e of events.slice(position.index, position.index + limit)) {
        if (bytes + eventBytes(e) > MAX_RESPONSE_BYTES) break;
        bytes += eventBytes(e);
        page.push(e);
      }
      return {
        events: page.map(output),
        nextForwardToken: token('f', position.index + page.length),
        nextBackwardToken: token('b', position.index),
        $metadata: { httpStatusCode: 200 },
      };
    }
    const page: StoredEvent[] = [];
    let bytes = 0;
    for (const e of events.slice(Math.max(0, position.index - limit), position.index).reverse()) {
      if (bytes + eventBytes(e) > MAX_RESPONSE_BYTES) break;
      bytes += eventBytes(e);
      page.unshift(e);
    }
    return {
      events: page.map(output),
      nextForwardToken: token('f', position.index),
      nextBackwardToken: token('b', position.index - page.length),
      $metadata: { httpStatusCode: 200 },
    };
  }

  /** Where a read starts: a token's position, else the head or the end of the stream. */
  private position(
    nextToken: string | undefined,
    startFromHead: boolean,
    length: number,
  ): { forward: boolean; index: number } {
    if (nextToken === undefined)
      return startFromHead ? { forward: true, index: 0 } : { forward: false, index: length };
    const match = /^([fb])\/(\d{56})$/.exec(nextToken);
    const index = match ? Number(match[2]) : Number.NaN;
    if (!match || index > length) {
      throw logsErrors.invalidParameter('The specified nextToken is invalid.');
    }
    return { forward: match[1] === 'f', index };
  }

  filterLogEvents(input: FilterLogEventsCommandInput): FilterLogEventsCommandOutput {
    const groupName = groupNameOf(input);
    const streams = this.group(groupName);
    if (input.logStreamNames && input.logStreamNamePrefix) {
      throw logsErrors.invalidParameter(
        'logStreamNames and logStreamNamePrefix are mutually exclusive.',
      );
    }
    const terms = filterTerms(input.filterPattern);
    const limit = input.limit ?? MAX_EVENTS;
    const selected = [...streams.entries()]
      .filter(([name]) => !input.logStreamNames || input.logStreamNames.includes(name))
      .filter(([name]) => !input.logStreamNamePrefix || name.startsWith(input.logStreamNamePrefix))
      .flatMap(([name, events]) => events.map((e) => ({ ...e, logStreamName: name })))
      .filter(
        (e) =>
          (input.startTime === undefined || e.timestamp >= input.startTime) &&
          (input.endTime === undefined || e.timestamp <= input.endTime) &&
          terms.every((term) => e.message.includes(term)),
      )
      .sort((a, b) => a.timestamp - b.timestamp || a.eventId.localeCompare(b.eventId));
    const { page, nextToken } = paginate(
      `FilterLogEvents:${groupName}`,
      selected,
      limit,
      input.nextToken,
      logsErrors.invalidParameter,
    );
    return {
      events: page.map((e) => ({
        logStreamName: e.logStreamName,
        timestamp: e.timestamp,
        message: e.message,
        ingestionTime: e.ingestionTime,
        eventId: e.eventId,
      })),
      nextToken,
      $metadata: { httpStatusCode: 200 },
    };
  }
}

function token(direction: 'f' | 'b', index: number): string {
  return `${direction}/${String(index).padStart(56, '0')}`;
}

/** Plain terms only ("Using filter patterns to match terms"): every term must occur. */
function filterTerms(pattern: string | undefined): string[] {
  const trimmed = (pattern ?? '').trim();
  if (trimmed === '') return [];
  if (/[{}[\]?%]|(^|\s)-/.test(trimmed)) {
    throw new Error(`FakeAws: FilterLogEvents supports only plain terms, not '${pattern}'`);
  }
  return (trimmed.match(/"[^"]*"|\S+/g) ?? []).map((t) => t.replace(/^"|"$/g, ''));
}
