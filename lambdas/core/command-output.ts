/**
 * A command's output on its record: a bounded tail per stream, with byte offsets, so a holder
 * can read "everything after byte N" while the command runs and is told exactly what was cut.
 *
 * Why a tail: a DynamoDB item holds at most 400 KB, and a build can write megabytes. The record
 * keeps the last MAX_STORED_OUTPUT_BYTES of each stream; a reader that falls behind by more than
 * that learns how many bytes it missed (`skipped`) instead of silently getting a gap.
 */
import type { OutputOffsets } from './blueprint.ts';
import type { CommandRecord, StreamTail } from './model.ts';

/**
 * Output kept per stream on the command record. Each tail is stored once: in `output` while the
 * command runs, in `result` once it has ended (then `output` keeps only the byte extents), so
 * the two tails (192 KiB) plus a script of up to 64 KiB stay under DynamoDB's 400 KB.
 */
export const MAX_STORED_OUTPUT_BYTES = 96 * 1024;

export type StreamName = 'stdout' | 'stderr';
const STREAMS: readonly StreamName[] = ['stdout', 'stderr'];

const EMPTY: StreamTail = { text: '', start: 0, end: 0 };

type WithOutput = Pick<CommandRecord, 'output' | 'result'>;

/** The output on a record (an empty tail per stream before the first poll). */
function outputOf(command: WithOutput): Record<StreamName, StreamTail> {
  const tail = (stream: StreamName): StreamTail => {
    const kept = command.output?.[stream] ?? EMPTY;
    // Ended: the text lives in `result` (see MAX_STORED_OUTPUT_BYTES).
    return command.result ? { ...kept, text: command.result[stream] } : kept;
  };
  return { stdout: tail('stdout'), stderr: tail('stderr') };
}

/** The output extents of an ended command, whose text is stored in its result. */
export function extentsOnly(
  output: Record<StreamName, StreamTail>,
): Record<StreamName, StreamTail> {
  return {
    stdout: { ...output.stdout, text: '' },
    stderr: { ...output.stderr, text: '' },
  };
}

/** Bytes recorded so far per stream: where the next poll reads from. */
export function recordedOffsets(command: WithOutput): OutputOffsets {
  const output = outputOf(command);
  return { stdout: output.stdout.end, stderr: output.stderr.end };
}

/** Append what a poll returned, keeping the last `max` bytes of each stream. */
export function appendOutput(
  command: WithOutput,
  fresh: Record<StreamName, string>,
  max = MAX_STORED_OUTPUT_BYTES,
): Record<StreamName, StreamTail> {
  const output = outputOf(command);
  const next = { ...output };
  for (const stream of STREAMS) {
    const added = fresh[stream];
    if (!added) continue;
    const tail = output[stream];
    const end = tail.end + Buffer.byteLength(added, 'utf8');
    const kept = keepLastBytes(tail.text + added, max);
    next[stream] = { text: kept.text, start: end - kept.bytes, end };
  }
  return next;
}

/** What a reader asking from `from` gets of one stream. */
export interface StreamRead {
  from: number;
  to: number;
  text: string;
  /** Bytes between `from` and the oldest kept byte that were cut from the record. */
  skipped?: number;
}

export type ReadCommandOutput = Record<StreamName, StreamRead>;

export function readOutput(command: WithOutput, from: Partial<OutputOffsets>): ReadCommandOutput {
  const output = outputOf(command);
  const read = (stream: StreamName): StreamRead => {
    const tail = output[stream];
    const asked = Math.max(0, Math.min(from[stream] ?? 0, tail.end));
    const begin = Math.max(asked, tail.start);
    const text = Buffer.from(tail.text, 'utf8')
      .subarray(begin - tail.start)
      .toString('utf8');
    return {
      from: asked,
      to: tail.end,
      text,
      ...(begin > asked ? { skipped: begin - asked } : {}),
    };
  };
  return { stdout: read('stdout'), stderr: read('stderr') };
}

/** The last `max` bytes of text, starting on a whole UTF-8 character. */
function keepLastBytes(text: string, max: number): { text: string; bytes: number } {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= max) return { text, bytes: bytes.length };
  let cut = bytes.length - max;
  // Continuation bytes are 10xxxxxx: move forward to the start of a character.
  while (cut < bytes.length && ((bytes[cut] ?? 0) & 0xc0) === 0x80) cut++;
  const kept = bytes.subarray(cut);
  return { text: kept.toString('utf8'), bytes: kept.length };
}
