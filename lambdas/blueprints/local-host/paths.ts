/**
 * Where a local-host resource lives on disk, and the "a path may not escape the resource" rule
 * with symlinks resolved. Every directory is derived from the blueprint's root and ids (never
 * from stored data), so nothing here can name a path outside root.
 *
 *   <root>/<resourceId>/          the resource: HOME and default cwd of commands
 *   <dataDir>/local-host-commands/<blueprintId>/<resourceId>/<cmdId>/
 *                                 one started command (output, exit status, meta)
 *
 * Command state lives outside the resource, not in it: a command that cleans its own directory
 * (`git clean -ffdx`, `rm -rf ~/*`) cannot wipe the files that say how it ended. It lives outside
 * the blueprint's root too, so the root holds exactly one directory per live host.
 */
import { lstat, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import type { BlueprintContext } from '../../core/blueprint.ts';
import { DrydockError, ResourceGoneError, ValidationError } from '../../core/errors.ts';
import type { Resource } from '../../core/model.ts';
import { pathSegment, relativePathInside } from '../shared.ts';
import type { LocalHost } from './config.ts';

export function localHostRoot(ctx: BlueprintContext, blueprint: LocalHost): string {
  return resolve(blueprint.config.root ?? join(ctx.dataDir, 'local-host', blueprint.id));
}

export function isInside(path: string, root: string, options: { strictly?: boolean } = {}) {
  if (path === root) return !options.strictly;
  return path.startsWith(root.endsWith(sep) ? root : root + sep);
}

/** `<root>/<resourceId>`; the id must be one plain path segment. */
export function resourceDir(
  ctx: BlueprintContext,
  blueprint: LocalHost,
  resource: Resource,
): string {
  const root = localHostRoot(ctx, blueprint);
  const dir = join(root, pathSegment(resource.id, 'resource id'));
  if (!isInside(dir, root, { strictly: true })) {
    throw new DrydockError('invalid_resource_id', `directory '${dir}' is not below root '${root}'`);
  }
  return dir;
}

/** The state of every command started on the resource (see the layout above). */
export function resourceCommandsDir(
  ctx: BlueprintContext,
  blueprint: LocalHost,
  resource: Resource,
): string {
  return join(
    resolve(ctx.dataDir),
    'local-host-commands',
    pathSegment(blueprint.id, 'blueprint id'),
    pathSegment(resource.id, 'resource id'),
  );
}

/** `<resourceCommandsDir>/<commandId>`. */
export function commandDir(
  ctx: BlueprintContext,
  blueprint: LocalHost,
  resource: Resource,
  commandId: string,
): string {
  return join(resourceCommandsDir(ctx, blueprint, resource), pathSegment(commandId, 'command id'));
}

/** The real path of the resource directory, or ResourceGoneError if it is not there any more. */
export async function requireDir(dir: string, resource: Resource): Promise<string> {
  try {
    const real = await realpath(dir);
    if ((await stat(real)).isDirectory()) return real;
  } catch (err) {
    if (!isMissing(err)) throw err;
  }
  throw new ResourceGoneError(`directory ${dir} of resource ${resource.id} is gone`, {
    context: { resourceId: resource.id, dir },
  });
}

export function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function escapes(path: string, what: string): ValidationError {
  return new ValidationError(`${what} '${path}' resolves outside the resource directory`, {
    context: { path },
  });
}

/**
 * Resolve an existing path inside the resource, following symlinks, and refuse it if the real
 * path is outside the real resource directory.
 */
export async function resolveExisting(
  realDir: string,
  path: string,
  what: string,
  allowRoot = false,
): Promise<string> {
  const rel = relativePathInside(path, what, { allowRoot });
  const real = await realpath(join(realDir, rel));
  if (!isInside(real, realDir)) throw escapes(path, what);
  return real;
}

/**
 * Where to write `path`: the deepest part of it that exists is resolved through symlinks and
 * must be inside the resource; the parts below it do not exist yet, so they cannot be links.
 */
export async function resolveForWrite(realDir: string, path: string): Promise<string> {
  const rel = relativePathInside(path, 'path');
  let existing = join(realDir, rel);
  let rest = '';
  for (;;) {
    try {
      await lstat(existing);
      break;
    } catch (err) {
      if (!isMissing(err)) throw err;
      rest = rest === '' ? basename(existing) : join(basename(existing), rest);
      existing = dirname(existing);
    }
  }
  let real: string;
  try {
    real = await realpath(existing);
  } catch (err) {
    // It exists (lstat said so) but does not resolve: a dangling symlink, which a write would
    // follow to wherever it points.
    if (isMissing(err)) throw escapes(path, 'path');
    throw err;
  }
  if (!isInside(real, realDir)) throw escapes(path, 'path');
  return rest === '' ? real : join(real, rest);
}
