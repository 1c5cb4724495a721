/**
 * The files of one started command, in its command directory (paths.ts, commandDir):
 *
 *   meta.json   who leads the group and when it started; written by the starter
 *   stdout      the command's output, written by the group leader (capped)
 *   stderr
 *   exit        how the command ended; written by the group leader itself (leader.ts)
 *   kill        why and since when we are stopping it; written by whoever first decided to
 *               (a poll past the deadline, or cancel), so any process can escalate to SIGKILL
 *   gone        when the group was first seen gone; from then on nobody signals its pgid (the
 *               kernel may hand it to an unrelated group) and the duration stays put
 *
 * Every file is published atomically (written aside, then renamed or linked into place): a
 * reader in another process sees all of it or nothing.
 */
import { randomBytes } from 'node:crypto';
import { link, open, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { DrydockError } from '../../core/errors.ts';
import { POLL_MAX_BYTES, wholeCharacters } from '../utf8.ts';
import { isMissing } from './paths.ts';

export const metaSchema = z.object({
  pid: z.number().int().positive(),
  pgid: z.number().int().positive(),
  /** Epoch ms, taken just before the launch. */
  startedAt: z.number(),
  timeoutSeconds: z.number().positive(),
});
export type CommandMeta = z.infer<typeof metaSchema>;

export const killSchema = z.object({
  reason: z.enum(['timeout', 'cancel']),
  /** Epoch ms of the SIGTERM; SIGKILL follows KILL_GRACE_MS later. */
  at: z.number(),
});
export type KillRecord = z.infer<typeof killSchema>;

export const goneSchema = z.object({
  /** Epoch ms when a poll or cancel first saw the process group gone. */
  at: z.number(),
});

/**
 * Whether a command is over, from its records: it ended by itself (an exit record and no stop
 * under way: a daemon it left running on purpose does not keep it going), or its group was seen
 * gone. Once over, nobody signals its pgid again: the kernel may have handed it to another group.
 */
export function commandOver(records: { exit?: unknown; kill?: unknown; gone?: unknown }): boolean {
  if (records.gone !== undefined) return true;
  return records.exit !== undefined && records.kill === undefined;
}

/** A file's JSON checked by `schema`, or undefined if the file does not exist (yet). */
export async function readRecord<T>(
  dir: string,
  name: string,
  schema: z.ZodType<T>,
): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, name), 'utf8');
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw err;
  }
  const parsed = schema.safeParse(JSON.parse(text));
  if (!parsed.success) {
    throw new DrydockError('corrupt_command_state', `${join(dir, name)} is not a valid record`, {
      context: { dir, name, issues: parsed.error.issues.map((i) => i.message) },
    });
  }
  return parsed.data;
}

function asideName(dir: string, name: string): string {
  return join(dir, `.${name}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/**
 * Write `record` as `name` only if there is none yet (atomically: `link` fails if the name
 * exists); returns the record that is there now and whether it is ours.
 */
export async function publishOnce<T>(
  dir: string,
  name: string,
  record: T,
  schema: z.ZodType<T>,
): Promise<{ record: T; ours: boolean }> {
  const aside = asideName(dir, name);
  await writeFile(aside, JSON.stringify(record));
  try {
    await link(aside, join(dir, name));
    return { record, ours: true };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const existing = await readRecord(dir, name, schema);
    if (existing === undefined) throw err;
    return { record: existing, ours: false };
  } finally {
    await unlink(aside);
  }
}

export interface Chunk {
  text: string;
  /** There is more after this chunk already (the next poll gets it). */
  more: boolean;
}

/**
 * What `stream` holds after byte `offset`, as whole characters, at most POLL_MAX_BYTES.
 * `ended`: nothing will be written any more, so an incomplete character at the very end is
 * garbage, not the first half of something.
 */
export async function readChunk(
  dir: string,
  stream: 'stdout' | 'stderr',
  offset: number,
  ended: boolean,
): Promise<Chunk> {
  let file: Awaited<ReturnType<typeof open>>;
  try {
    file = await open(join(dir, stream), 'r');
  } catch (err) {
    if (isMissing(err)) return { text: '', more: false };
    throw err;
  }
  try {
    const { size } = await file.stat();
    if (offset >= size) return { text: '', more: false };
    const wanted = Math.min(size - offset, POLL_MAX_BYTES);
    const buffer = Buffer.alloc(wanted);
    const { bytesRead } = await file.read(buffer, 0, wanted, offset);
    const atEnd = offset + bytesRead >= size;
    const { text, consumed } = wholeCharacters(buffer.subarray(0, bytesRead), ended && atEnd);
    return { text, more: offset + consumed < size };
  } finally {
    await file.close();
  }
}
