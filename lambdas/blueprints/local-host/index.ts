/**
 * `local-host`: each resource is a directory on this machine, and commands run as real
 * processes in it (detached process groups that outlive the worker: commands.ts). Used by local
 * mode and by tests that need real processes and files.
 *
 * The directory is `<root>/<resourceId>`, always derived from the blueprint's root and the
 * resource id (never from stored data), so destroy can only ever remove a directory below root.
 * Changing `root` on a blueprint with live resources orphans their directories.
 */
import { constants } from 'node:fs';
import { access, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type {
  BlueprintContext,
  BlueprintType,
  FilesystemInterface,
  HealthResult,
} from '../../core/blueprint.ts';
import { NotFoundError } from '../../core/errors.ts';
import type { Resource } from '../../core/model.ts';
import { commandOver, goneSchema, killSchema, metaSchema, readRecord } from './command-files.ts';
import { localCommand } from './commands.ts';
import { type LocalHost, type LocalHostConfig, localHostConfigSchema } from './config.ts';
import { exitRecordSchema } from './leader.ts';
import {
  isMissing,
  requireDir,
  resolveExisting,
  resolveForWrite,
  resourceCommandsDir,
  resourceDir,
} from './paths.ts';
import { groupRunning, signalGroup } from './process-group.ts';

export type { LocalCommandHandle } from './commands.ts';
export { type LocalHostConfig, localHostConfigSchema } from './config.ts';
export { commandDir, resourceDir } from './paths.ts';

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

/** SIGKILL every command of the resource still running: nothing may outlive its resource. */
async function killCommands(commandsDir: string): Promise<void> {
  let ids: string[];
  try {
    ids = await readdir(commandsDir);
  } catch (err) {
    if (isMissing(err)) return;
    throw err;
  }
  for (const id of ids) {
    const dir = join(commandsDir, id);
    const [meta, exit, kill, gone] = await Promise.all([
      readRecord(dir, 'meta.json', metaSchema),
      readRecord(dir, 'exit', exitRecordSchema),
      readRecord(dir, 'kill', killSchema),
      readRecord(dir, 'gone', goneSchema),
    ]);
    // Over: its pgid may belong to someone else by now.
    if (!meta || commandOver({ exit, kill, gone })) continue;
    if (await groupRunning(meta.pgid)) signalGroup(meta.pgid, 'SIGKILL');
  }
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

  // allocateResource sets the platform this process runs on unless the blueprint declares one.
  producesAttributes: () => ['platform'],

  cannotEverServe(blueprint, lease) {
    const wants = lease.attributes.platform;
    if (wants === undefined || blueprint.attributes.platform !== undefined) return undefined;
    return wants === process.platform
      ? undefined
      : `makes hosts on this machine (platform=${process.platform}), lease wants platform=${wants}`;
  },

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
    // resourceDir and resourceCommandsDir guarantee single segments strictly below root.
    const dir = resourceDir(ctx, blueprint, resource);
    const commandsDir = resourceCommandsDir(ctx, blueprint, resource);
    await killCommands(commandsDir);
    await rm(dir, { recursive: true, force: true });
    await rm(commandsDir, { recursive: true, force: true });
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
