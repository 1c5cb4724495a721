/**
 * `local-host`: each resource is a directory on this machine, and commands run as real child
 * processes in it. Used by local mode and by tests that need real processes and files.
 *
 * The directory is `<root>/<resourceId>`, always derived from the blueprint's root and the
 * resource id (never from stored data), so destroy can only ever remove a directory below root.
 * Changing `root` on a blueprint with live resources orphans their directories.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { constants } from 'node:fs';
import {
  access,
  lstat,
  mkdir,
  readdir,
  readFile,
  realpath,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { z } from 'zod';
import type {
  BlueprintContext,
  BlueprintType,
  CommandInterface,
  CommandResult,
  ConfiguredBlueprint,
  FilesystemInterface,
  HealthResult,
} from '../../core/blueprint.ts';
import {
  DrydockError,
  NotFoundError,
  ResourceGoneError,
  ValidationError,
} from '../../core/errors.ts';
import type { Resource } from '../../core/model.ts';
import { parseCommandSpec, relativePathInside, waitUnlessAborted } from '../shared.ts';

export const localHostConfigSchema = z
  .object({
    /**
     * Absolute directory holding one sub-directory per resource.
     * @default `<dataDir>/local-host/<blueprintId>`
     */
    root: z
      .string()
      .refine(isAbsolute, {
        error: (issue) => `root must be an absolute path (got '${issue.input}')`,
      })
      .optional(),
    /** Shell that runs `script` commands as `<shell> -c <script>`. @default '/bin/sh' */
    shell: z.string().min(1).default('/bin/sh'),
    /** Per stream (stdout, stderr); the rest is dropped and `truncated` set. @default 1 MiB */
    maxOutputBytes: z
      .number()
      .int()
      .positive()
      .default(1024 * 1024),
  })
  .strict();

export type LocalHostConfig = z.output<typeof localHostConfigSchema>;
type LocalHost = ConfiguredBlueprint<LocalHostConfig>;

/** After SIGTERM, how long a timed-out command's process group gets before SIGKILL. */
export const KILL_GRACE_MS = 2_000;
/** After SIGKILL, how long to wait for the pipes to close (a setsid escapee may hold them). */
const PIPE_CLOSE_GRACE_MS = 1_000;
const FALLBACK_PATH = '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin';

// ---- paths -------------------------------------------------------------------------------

export function localHostRoot(ctx: BlueprintContext, blueprint: LocalHost): string {
  return resolve(blueprint.config.root ?? join(ctx.dataDir, 'local-host', blueprint.id));
}

function isInside(path: string, root: string, options: { strictly?: boolean } = {}): boolean {
  if (path === root) return !options.strictly;
  return path.startsWith(root.endsWith(sep) ? root : root + sep);
}

/** `<root>/<resourceId>`; the id must be one plain path segment. */
export function resourceDir(
  ctx: BlueprintContext,
  blueprint: LocalHost,
  resource: Resource,
): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(resource.id)) {
    throw new DrydockError(
      'invalid_resource_id',
      `resource id '${resource.id}' is not a safe directory name`,
      {
        context: { resourceId: resource.id },
      },
    );
  }
  const root = localHostRoot(ctx, blueprint);
  const dir = join(root, resource.id);
  if (!isInside(dir, root, { strictly: true })) {
    throw new DrydockError('invalid_resource_id', `directory '${dir}' is not below root '${root}'`);
  }
  return dir;
}

/** The real path of the resource directory, or ResourceGoneError if it is not there any more. */
async function requireDir(dir: string, resource: Resource): Promise<string> {
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

function isMissing(err: unknown): boolean {
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
async function resolveExisting(realDir: string, path: string, what: string, allowRoot = false) {
  const rel = relativePathInside(path, what, { allowRoot });
  const real = await realpath(join(realDir, rel));
  if (!isInside(real, realDir)) throw escapes(path, what);
  return real;
}

/**
 * Where to write `path`: the deepest part of it that exists is resolved through symlinks and
 * must be inside the resource; the parts below it do not exist yet, so they cannot be links.
 */
async function resolveForWrite(realDir: string, path: string): Promise<string> {
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

// ---- processes ---------------------------------------------------------------------------

/** Signal a whole process group; false if the group no longer exists. */
function signalGroup(pid: number | undefined, signal: NodeJS.Signals | 0): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(-pid, signal);
    return true;
  } catch (err) {
    // EPERM: something in the group still exists but is not ours to signal.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether anything in the process group is still running. On Linux an unreaped zombie does not
 * count (containers often run an init that reaps late); elsewhere any member counts.
 */
async function groupRunning(pid: number | undefined): Promise<boolean> {
  if (!signalGroup(pid, 0)) return false;
  if (process.platform !== 'linux') return true;
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return true;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      // "<pid> (<comm>) <state> <ppid> <pgrp> ..."; comm may contain spaces and parentheses.
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(pgrp) === pid && state !== 'Z') return true;
    } catch {
      // The process exited while we looked.
    }
  }
  return false;
}

/**
 * SIGTERM the whole process group, give it KILL_GRACE_MS to go away, then SIGKILL what is left.
 * Grandchildren get the same grace as the leader (a `git` cleaning up its lock file after the
 * shell above it died).
 */
async function terminateGroup(pid: number | undefined, closed: Promise<unknown>): Promise<void> {
  if (!signalGroup(pid, 'SIGTERM')) return;
  const graceEnd = performance.now() + KILL_GRACE_MS;
  const grace = new AbortController();
  await Promise.race([closed, waitUnlessAborted(KILL_GRACE_MS, grace.signal)]);
  grace.abort();
  while ((await groupRunning(pid)) && performance.now() < graceEnd) await waitUnlessAborted(20);
  signalGroup(pid, 'SIGKILL');
}

interface Capture {
  text(): string;
  readonly truncated: boolean;
}

/** Keep the first `limit` bytes; drain the rest, so the child never blocks on a full pipe. */
function capture(stream: Readable, limit: number): Capture {
  const chunks: Buffer[] = [];
  let size = 0;
  let truncated = false;
  stream.on('data', (chunk: Buffer) => {
    const room = limit - size;
    if (chunk.length > room) truncated = true;
    if (room > 0) {
      const kept = chunk.subarray(0, room);
      chunks.push(kept);
      size += kept.length;
    }
  });
  return {
    text: () => Buffer.concat(chunks).toString('utf8'),
    get truncated() {
      return truncated;
    },
  };
}

interface ProcessSpec {
  file: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  timeoutMs: number;
  maxOutputBytes: number;
  signal?: AbortSignal;
}

/**
 * Run one child process in its own process group. The command is finished when the process has
 * exited and its output pipes are closed (a background job that keeps them open keeps it
 * running). On timeout or abort the whole group is terminated — grandchildren included — and
 * the result says timedOut with the output captured so far.
 */
export async function runProcess(spec: ProcessSpec): Promise<CommandResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  if (spec.signal?.aborted) {
    return { exitCode: null, stdout: '', stderr: '', timedOut: true, durationMs: 0 };
  }
  const child: ChildProcess = spawn(spec.file, spec.args, {
    cwd: spec.cwd,
    env: spec.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout = capture(child.stdout as Readable, spec.maxOutputBytes);
  const stderr = capture(child.stderr as Readable, spec.maxOutputBytes);
  let spawnError: Error | undefined;
  child.on('error', (err) => {
    spawnError = err;
  });
  const closed = new Promise<{ code: number | null }>((done) => {
    child.on('close', (code) => done({ code }));
  });

  const stop = new AbortController();
  const deadline = waitUnlessAborted(
    spec.timeoutMs,
    spec.signal ? AbortSignal.any([stop.signal, spec.signal]) : stop.signal,
  ).then(() => 'deadline' as const);
  const first = await Promise.race([closed, deadline]);
  stop.abort();

  if (first !== 'deadline') {
    const result: CommandResult = {
      exitCode: spawnError ? 127 : first.code,
      stdout: stdout.text(),
      stderr: spawnError ? `${stderr.text()}${spawnError.message}\n` : stderr.text(),
      timedOut: false,
      durationMs: elapsed(),
    };
    if (stdout.truncated || stderr.truncated) result.truncated = true;
    return result;
  }

  await terminateGroup(child.pid, closed);
  const pipeGrace = new AbortController();
  const pipesClosed = await Promise.race([
    closed.then(() => true),
    waitUnlessAborted(PIPE_CLOSE_GRACE_MS, pipeGrace.signal).then(() => false),
  ]);
  pipeGrace.abort();
  if (!pipesClosed) {
    // Something outside the group (it called setsid) still holds our pipes; stop listening.
    child.stdout?.destroy();
    child.stderr?.destroy();
  }
  const result: CommandResult = {
    exitCode: null,
    stdout: stdout.text(),
    stderr: stderr.text(),
    timedOut: true,
    durationMs: elapsed(),
  };
  if (stdout.truncated || stderr.truncated) result.truncated = true;
  return result;
}

// ---- interfaces --------------------------------------------------------------------------

function localCommand(
  ctx: BlueprintContext,
  blueprint: LocalHost,
  resource: Resource,
): CommandInterface {
  return {
    async run(spec, options = {}) {
      const command = parseCommandSpec(spec);
      const dir = resourceDir(ctx, blueprint, resource);
      const realDir = await requireDir(dir, resource);
      let cwd = realDir;
      if (spec.cwd !== undefined) {
        try {
          cwd = await resolveExisting(realDir, spec.cwd, 'cwd', true);
        } catch (err) {
          if (isMissing(err)) {
            throw new ValidationError(`cwd '${spec.cwd}' does not exist in the resource directory`);
          }
          throw err;
        }
      }
      // HOME is the resource directory: caches and dotfiles a command writes stay in it and go
      // away with it. Nothing else of the worker's environment leaks in but PATH.
      const env = { PATH: process.env.PATH ?? FALLBACK_PATH, HOME: realDir, ...spec.env };
      const [file, args] =
        command.kind === 'argv'
          ? [command.argv[0], command.argv.slice(1)]
          : [blueprint.config.shell, ['-c', command.script]];
      return runProcess({
        file,
        args,
        cwd,
        env,
        timeoutMs: command.timeoutMs,
        maxOutputBytes: blueprint.config.maxOutputBytes,
        ...(options.signal ? { signal: options.signal } : {}),
      });
    },
  };
}

function localFilesystem(
  ctx: BlueprintContext,
  blueprint: LocalHost,
  resource: Resource,
): FilesystemInterface {
  return {
    async put(path, content) {
      const realDir = await requireDir(resourceDir(ctx, blueprint, resource), resource);
      const target = await resolveForWrite(realDir, path);
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, content);
    },
    async get(path) {
      const realDir = await requireDir(resourceDir(ctx, blueprint, resource), resource);
      try {
        const real = await resolveExisting(realDir, path, 'path');
        return new Uint8Array(await readFile(real));
      } catch (err) {
        if (isMissing(err)) throw new NotFoundError('file', path);
        throw err;
      }
    },
  };
}

// ---- the plug-in -------------------------------------------------------------------------

export const localHostBlueprint: BlueprintType<LocalHostConfig> = {
  type: 'local-host',
  description: 'Each resource is a directory on this machine; commands run as local processes.',
  resourceTypes: ['host'],
  configSchema: localHostConfigSchema,

  activatesLater: () => false,

  // The directory is checked when commands run (a missing one makes the resource suspect), so
  // a lease on an active host is acquired and activated in one transaction.
  needsLeaseActivation: () => false,

  async allocateResource(_ctx, blueprint) {
    // The directory is created in activateResource (the resource id is not known yet, and
    // nothing may outlive a failed allocation transaction). Operator attributes win.
    return blueprint.attributes.platform === undefined
      ? { attributes: { platform: process.platform } }
      : {};
  },

  async activateResource(ctx, blueprint, resource) {
    const dir = resourceDir(ctx, blueprint, resource);
    await mkdir(dir, { recursive: true });
    return { state: 'active', data: { dir } };
  },

  async activateLease(ctx, blueprint, resource) {
    await requireDir(resourceDir(ctx, blueprint, resource), resource);
  },

  async destroyResource(ctx, blueprint, resource) {
    // resourceDir guarantees a single segment strictly below root.
    await rm(resourceDir(ctx, blueprint, resource), { recursive: true, force: true });
  },

  async healthCheck(ctx, blueprint, resource): Promise<HealthResult> {
    const dir = resourceDir(ctx, blueprint, resource);
    try {
      if (!(await stat(dir)).isDirectory()) {
        return { healthy: false, reason: `${dir} is not a directory` };
      }
      await access(dir, constants.W_OK);
      return { healthy: true };
    } catch (err) {
      return isMissing(err)
        ? { healthy: false, reason: `directory ${dir} is missing` }
        : { healthy: false, reason: `directory ${dir} is not usable: ${(err as Error).message}` };
    }
  },

  command: localCommand,
  filesystem: localFilesystem,
};
