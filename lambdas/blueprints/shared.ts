/**
 * Small helpers shared by the plug-ins: the lexical half of the "a path may not escape the
 * resource" rule, ids as directory names, and reading back a command handle the engine kept. (Command specs are checked
 * once, by the engine: core/command-spec.ts.) Plug-in specific behaviour stays in its folder.
 */
import { posix } from 'node:path';
import type { z } from 'zod';
import { DrydockError, ValidationError } from '../core/errors.ts';
import { formatZodIssues } from '../core/validation.ts';

/**
 * A command handle as the plug-in wrote it (the engine persists it and hands it back), or a
 * ValidationError saying what kind of handle was expected and every problem with it.
 */
export function parseHandle<S extends z.ZodType>(
  schema: S,
  handle: unknown,
  what: string,
): z.output<S> {
  const parsed = schema.safeParse(handle);
  if (!parsed.success) {
    throw new ValidationError(
      `not a ${what} command handle: ${formatZodIssues(parsed.error, { root: '(handle)' })}`,
      { context: { handle } },
    );
  }
  return parsed.data;
}

/**
 * Normalise a caller-supplied path to a relative POSIX path inside a root, or throw a
 * ValidationError naming it. Only lexical: plug-ins with real files must also check symlinks.
 * `.` (the root itself) is allowed only when `allowRoot` is set (a cwd, not a file).
 */
export function relativePathInside(
  path: string,
  what: string,
  options: { allowRoot?: boolean } = {},
): string {
  if (typeof path !== 'string' || path === '' || path.includes('\0')) {
    throw new ValidationError(`${what} '${String(path)}' is not a valid relative path`, {
      context: { path },
    });
  }
  if (posix.isAbsolute(path) || /^[A-Za-z]:[\\/]/.test(path)) {
    throw new ValidationError(
      `${what} '${path}' is absolute; give a path relative to the resource`,
      {
        context: { path },
      },
    );
  }
  const normalised = posix.normalize(path.replaceAll('\\', '/'));
  if (normalised === '..' || normalised.startsWith('../')) {
    throw new ValidationError(`${what} '${path}' escapes the resource root`, { context: { path } });
  }
  const trimmed = normalised.replace(/\/+$/, '');
  if ((trimmed === '.' || trimmed === '') && !options.allowRoot) {
    throw new ValidationError(`${what} '${path}' names the resource root, not a file`, {
      context: { path },
    });
  }
  return trimmed === '' ? '.' : trimmed;
}

const PATH_SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

/**
 * An id used as one directory name (on this machine or on a host): one plain path segment, so
 * it cannot climb (`..`), nest (`a/b`) or hide (`.x`). `what` names it: `resource id`, ….
 */
export function pathSegment(id: string, what: string): string {
  if (!PATH_SEGMENT.test(id)) {
    throw new DrydockError('invalid_id', `${what} '${id}' is not a safe directory name`, {
      context: { id, what },
    });
  }
  return id;
}
