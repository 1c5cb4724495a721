/**
 * The asynchronous command interface of a local-host lease (DESIGN §9: nothing waits on a
 * host). `start` launches the command as a detached process group led by leader.ts and
 * returns at once; `poll` reads the files the group writes; `cancel` signals the group. Any
 * worker process can poll or cancel with the handle alone: everything else is on disk.
 *
 * Stopping (timeout or cancel), spread over polls so none of them waits:
 *
 *   poll past deadline / cancel ──► publish `kill` {reason, at} ──► SIGTERM the group
 *   later poll/cancel, now ≥ at + KILL_GRACE_MS, group alive ──► SIGKILL the group
 *   later poll, group gone ──► finished {timedOut | cancelled}
 *
 * Time here is the machine's (Date.now), not ctx.clock: deadlines are about real processes,
 * and the files that carry them are read by other processes.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, renameSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { z } from 'zod';
import type {
  BlueprintContext,
  CommandHandle,
  CommandInterface,
  CommandProgress,
  OutputOffsets,
  ParsedCommand,
} from '../../core/blueprint.ts';
import { DrydockError, NotFoundError, ValidationError } from '../../core/errors.ts';
import type { Resource } from '../../core/model.ts';
import { parseHandle } from '../shared.ts';
import {
  type CommandMeta,
  commandOver,
  goneSchema,
  type KillRecord,
  killSchema,
  metaSchema,
  publishOnce,
  readChunk,
  readRecord,
} from './command-files.ts';
import type { LocalHost } from './config.ts';
import {
  exitRecordSchema,
  LEADER_SOURCE,
  LEADER_SPEC_VARIABLE,
  type LeaderSpec,
} from './leader.ts';
import {
  commandDir,
  isInside,
  isMissing,
  requireDir,
  resolveExisting,
  resourceCommandsDir,
  resourceDir,
} from './paths.ts';
import { groupRunning, signalGroup } from './process-group.ts';

/** After SIGTERM, how long a command's process group gets before SIGKILL. */
export const KILL_GRACE_MS = 2_000;
/** How long a second start waits for the first one's meta.json (a racing start launching). */
const START_RACE_WAIT_MS = 5_000;
const FALLBACK_PATH = '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin';

/** The handle persisted on the command record: enough to find the command's files and group. */
export const localCommandHandleSchema = z.object({
  /** The command directory, relative to the data dir when it is inside it. */
  dir: z.string().min(1),
  pid: z.number().int().positive(),
  pgid: z.number().int().positive(),
  startedAt: z.number(),
});
export type LocalCommandHandle = z.infer<typeof localCommandHandleSchema>;

export function localCommand(
  ctx: BlueprintContext,
  blueprint: LocalHost,
  resource: Resource,
): CommandInterface {
  const dirOf = (commandId: string) => commandDir(ctx, blueprint, resource, commandId);

  function handleOf(dir: string, meta: CommandMeta): LocalCommandHandle {
    const rel = relative(ctx.dataDir, dir);
    return {
      dir: isInside(dir, resolve(ctx.dataDir)) ? rel : dir,
      pid: meta.pid,
      pgid: meta.pgid,
      startedAt: meta.startedAt,
    };
  }

  /** The command directory a handle names; it must be one of this resource's. */
  function locate(handle: CommandHandle): string {
    const { dir } = parseHandle(localCommandHandleSchema, handle, 'local-host');
    const absolute = isAbsolute(dir) ? dir : resolve(ctx.dataDir, dir);
    if (
      dirname(absolute) !== resourceCommandsDir(ctx, blueprint, resource) ||
      absolute !== dirOf(basename(absolute))
    ) {
      throw new ValidationError(`command handle '${dir}' is not a command of ${resource.id}`, {
        context: { handle, resourceId: resource.id },
      });
    }
    return absolute;
  }

  async function requireMeta(dir: string): Promise<CommandMeta> {
    const meta = await readRecord(dir, 'meta.json', metaSchema);
    if (!meta) throw new NotFoundError('command', basename(dir));
    return meta;
  }

  /** Another start claimed this command: wait (bounded) for it to record the launch. */
  async function launchedBefore(dir: string): Promise<LocalCommandHandle> {
    const deadline = performance.now() + START_RACE_WAIT_MS;
    for (;;) {
      const meta = await readRecord(dir, 'meta.json', metaSchema);
      if (meta) return handleOf(dir, meta);
      if (performance.now() > deadline) {
        throw new DrydockError(
          'command_start_lost',
          `command ${basename(dir)} was claimed in ${dir} but its launch was never recorded ` +
            '(the starting process died between claiming and launching it)',
          { context: { dir, resourceId: resource.id } },
        );
      }
      await new Promise((done) => setTimeout(done, 20));
    }
  }

  async function resolveCwd(realDir: string, cwd: string | undefined): Promise<string> {
    if (cwd === undefined) return realDir;
    try {
      return await resolveExisting(realDir, cwd, 'cwd', true);
    } catch (err) {
      if (isMissing(err)) {
        throw new ValidationError(`cwd '${cwd}' does not exist in the resource directory`);
      }
      throw err;
    }
  }

  /** SIGTERM the group once (recording why), or SIGKILL it once the grace has passed. */
  async function stop(dir: string, pgid: number, reason: KillRecord['reason']): Promise<void> {
    const now = Date.now();
    const { record, ours } = await publishOnce(dir, 'kill', { reason, at: now }, killSchema);
    if (ours) signalGroup(pgid, 'SIGTERM');
    else if (now - record.at >= KILL_GRACE_MS) signalGroup(pgid, 'SIGKILL');
  }

  /** How the command ended, or undefined while it runs; escalates a stop that is under way. */
  async function observe(dir: string, meta: CommandMeta) {
    let exit = await readRecord(dir, 'exit', exitRecordSchema);
    const kill = await readRecord(dir, 'kill', killSchema);
    // Ended by itself (commandOver): done, even with a daemon left running in the background.
    if (exit && commandOver({ exit, kill })) return { exit, kill, endedAt: exit.at };
    // Being stopped (or not recorded yet): done only once the whole group is gone.
    let gone = await readRecord(dir, 'gone', goneSchema);
    if (!gone && !(await groupRunning(meta.pgid))) {
      ({ record: gone } = await publishOnce(dir, 'gone', { at: Date.now() }, goneSchema));
    }
    if (gone) {
      // Seen gone: over (commandOver) whatever else it recorded. The leader records the end
      // before it exits: read again, it may have just done so.
      exit ??= await readRecord(dir, 'exit', exitRecordSchema);
      return { exit, kill, endedAt: exit?.at ?? gone.at };
    }
    const overdue = Date.now() >= meta.startedAt + meta.timeoutSeconds * 1000;
    if (kill || overdue) await stop(dir, meta.pgid, kill?.reason ?? 'timeout');
    return undefined;
  }

  return {
    async start(commandId, command: ParsedCommand) {
      const dir = dirOf(commandId);
      const realDir = await requireDir(resourceDir(ctx, blueprint, resource), resource);
      const recorded = await readRecord(dir, 'meta.json', metaSchema);
      if (recorded) return handleOf(dir, recorded);
      const cwd = await resolveCwd(realDir, command.cwd);
      await mkdir(dirname(dir), { recursive: true });

      // From the claim to meta.json nothing awaits, so no other start in this process runs in
      // between; a start in another process finds the claim and waits for meta.json.
      try {
        mkdirSync(dir);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') return launchedBefore(dir);
        throw err;
      }
      const [file, args] =
        command.kind === 'argv'
          ? [command.argv[0], command.argv.slice(1)]
          : [blueprint.config.shell, ['-c', command.script]];
      const spec: LeaderSpec = {
        file,
        args,
        cwd,
        // HOME is the resource directory: caches and dotfiles a command writes stay in it and
        // go away with it. Nothing else of the worker's environment leaks in but PATH.
        env: { PATH: process.env.PATH ?? FALLBACK_PATH, HOME: realDir, ...command.env },
        maxOutputBytes: blueprint.config.maxOutputBytes,
        dir,
      };
      const startedAt = Date.now();
      const stdout = openSync(join(dir, 'stdout'), 'wx');
      const stderr = openSync(join(dir, 'stderr'), 'wx');
      let pid: number | undefined;
      try {
        const leader = spawn(process.execPath, ['-e', LEADER_SOURCE, dir], {
          cwd,
          env: { [LEADER_SPEC_VARIABLE]: JSON.stringify(spec) },
          detached: true,
          stdio: ['ignore', stdout, stderr],
        });
        // Nothing of ours waits for the leader; a failed spawn is reported through pid.
        leader.on('error', () => {});
        leader.unref();
        pid = leader.pid;
      } finally {
        closeSync(stdout);
        closeSync(stderr);
      }
      if (pid === undefined) {
        throw new DrydockError('command_not_started', `could not launch ${process.execPath}`, {
          context: { dir, resourceId: resource.id },
        });
      }
      // detached: the leader called setsid, so its pid is the group id.
      const meta: CommandMeta = {
        pid,
        pgid: pid,
        startedAt,
        timeoutSeconds: command.timeoutSeconds,
      };
      writeFileSync(join(dir, '.meta.json.tmp'), JSON.stringify(meta));
      renameSync(join(dir, '.meta.json.tmp'), join(dir, 'meta.json'));
      return handleOf(dir, meta);
    },

    async poll(handle, from: OutputOffsets): Promise<CommandProgress> {
      const dir = locate(handle);
      await requireDir(resourceDir(ctx, blueprint, resource), resource);
      const meta = await requireMeta(dir);
      // How it ended is read before the output: the leader records the end only after all
      // output is written, so a finished poll always carries the last of it.
      const ended = await observe(dir, meta);
      const [stdout, stderr] = await Promise.all([
        readChunk(dir, 'stdout', from.stdout, ended !== undefined),
        readChunk(dir, 'stderr', from.stderr, ended !== undefined),
      ]);
      if (!ended || stdout.more || stderr.more) {
        return { state: 'running', stdout: stdout.text, stderr: stderr.text };
      }
      const { exit, kill } = ended;
      const progress: CommandProgress = {
        state: 'finished',
        stdout: stdout.text,
        stderr: stderr.text,
        exitCode: exit?.code ?? null,
        timedOut: kill?.reason === 'timeout',
        durationMs: Math.max(0, ended.endedAt - meta.startedAt),
      };
      if (kill?.reason === 'cancel') progress.cancelled = true;
      if (exit && exit.truncated.length > 0) progress.truncated = true;
      return progress;
    },

    // Stops the group even if the resource directory is gone: the command's state lives beside
    // it (paths.ts), and a runaway tree is worth stopping either way.
    async cancel(handle) {
      const dir = locate(handle);
      const meta = await readRecord(dir, 'meta.json', metaSchema);
      if (!meta) return;
      // observe() records a group that is gone, so its pgid is never signalled afterwards.
      if (await observe(dir, meta)) return;
      await stop(dir, meta.pgid, 'cancel');
    },
  };
}
