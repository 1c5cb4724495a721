/**
 * A filesystem interface through commands: files travel as base64 inside the command script
 * (put) or its output (get), so nothing but SSM is needed on the host. Paths are relative to the
 * working directory and may not leave it, symlinks included (checked on the host with
 * `realpath`, after the lexical check here).
 */
import type { FilesystemInterface } from '../../core/blueprint.ts';
import { DrydockError, NotFoundError, ValidationError } from '../../core/errors.ts';
import type { Clock } from '../../core/ports.ts';
import { relativePathInside } from '../shared.ts';
import { type HousekeepingCommands, housekeeping, runToEnd, type Sleep, tail } from './run.ts';
import { shellQuote } from './script.ts';

/** The largest file put or get moves: it travels through command parameters and output. */
export const MAX_FILE_BYTES = 1024 * 1024;
/** Base64 characters per script line, and lines per command (SendCommand parameters stay small). */
const LINE_CHARS = 4_000;
const LINES_PER_COMMAND = 12;

const NOT_FOUND = 44;
const TOO_LARGE = 45;
const ESCAPES = 46;

/** Shell lines that resolve `rel` inside `workDir` into $t, refusing a symlink escape. */
function resolveLines(workDir: string, rel: string): string[] {
  return [
    `mkdir -p -- ${shellQuote(workDir)} || exit 1`,
    `w=$(realpath -- ${shellQuote(workDir)}) || exit 1`,
    `t=$(realpath -m -- "$w"/${shellQuote(rel)}) || exit ${ESCAPES}`,
    `case "$t" in "$w"/*) ;; *) exit ${ESCAPES} ;; esac`,
  ];
}

export function commandFilesystem(options: {
  commands: HousekeepingCommands;
  workDir: string;
  clock: Clock;
  sleep: Sleep;
  timeoutSeconds: number;
  user?: string;
}): FilesystemInterface {
  const { commands, workDir, timeoutSeconds } = options;
  const run = (script: string, what: string) =>
    runToEnd(commands, housekeeping(script, timeoutSeconds), {
      clock: options.clock,
      sleep: options.sleep,
      what,
    });

  function check(exitCode: number | null, stderr: string, path: string, what: string): void {
    if (exitCode === 0) return;
    if (exitCode === NOT_FOUND) throw new NotFoundError('file', path);
    if (exitCode === TOO_LARGE) {
      throw new ValidationError(`file '${path}' is larger than ${MAX_FILE_BYTES} bytes`, {
        context: { path },
      });
    }
    if (exitCode === ESCAPES) {
      throw new ValidationError(`path '${path}' escapes the working directory`, {
        context: { path },
      });
    }
    throw new DrydockError(
      'file_error',
      `${what} '${path}' failed (exit ${exitCode}): ${tail(stderr, 500)}`,
      {
        context: { path },
      },
    );
  }

  return {
    async put(path, content) {
      const rel = relativePathInside(path, 'path');
      const bytes =
        typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.from(content);
      if (bytes.length > MAX_FILE_BYTES) {
        throw new ValidationError(
          `file '${path}' has ${bytes.length} bytes; at most ${MAX_FILE_BYTES} can be put`,
          { context: { path } },
        );
      }
      const encoded = bytes.toString('base64');
      const lines: string[] = [];
      for (let i = 0; i < encoded.length; i += LINE_CHARS) {
        lines.push(
          `printf %s ${shellQuote(encoded.slice(i, i + LINE_CHARS))} | base64 -d >> "$t.drydock-part" || exit 1`,
        );
      }
      const batches: string[][] = [];
      for (let i = 0; i < lines.length; i += LINES_PER_COMMAND) {
        batches.push(lines.slice(i, i + LINES_PER_COMMAND));
      }
      if (batches.length === 0) batches.push([]);
      for (const [i, batch] of batches.entries()) {
        const first = i === 0;
        const last = i === batches.length - 1;
        const script = [
          ...resolveLines(workDir, rel),
          ...(first ? ['mkdir -p -- "$(dirname -- "$t")" && : > "$t.drydock-part" || exit 1'] : []),
          ...batch,
          ...(last ? ['mv -f -- "$t.drydock-part" "$t" || exit 1'] : []),
          ...(last && options.user ? [`chown -- ${shellQuote(options.user)} "$t" || exit 1`] : []),
        ].join('\n');
        const done = await run(script, `put of '${path}'`);
        check(done.exitCode, done.stderr, path, 'put of');
      }
    },
    async get(path) {
      const rel = relativePathInside(path, 'path');
      const script = [
        ...resolveLines(workDir, rel),
        `test -f "$t" || exit ${NOT_FOUND}`,
        `test "$(stat -c %s -- "$t")" -le ${MAX_FILE_BYTES} || exit ${TOO_LARGE}`,
        'base64 -w0 -- "$t"',
      ].join('\n');
      const done = await run(script, `get of '${path}'`);
      check(done.exitCode, done.stderr, path, 'get of');
      return new Uint8Array(Buffer.from(done.stdout.trim(), 'base64'));
    },
  };
}
