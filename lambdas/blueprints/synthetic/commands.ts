/**
 * The synthetic command interface: scripted results, no processes. A command "runs" only in the
 * records: `start` appends a `started` record to `synthetic:<blueprintId>:commands:<hostId>`,
 * `cancel` a `cancelled` one, and `poll` works out from them and the context clock what the
 * command has printed and whether it has ended (script.ts). Nothing is kept in memory, so any
 * worker can poll or cancel a command another worker started.
 *
 * `vanish.afterCommands = N`: the host vanishes once its Nth command has ended (recorded at that
 * moment by the first poll that sees it end), and the (N+1)th start throws ResourceGoneError —
 * recording the vanish itself if no poll did. Commands are numbered by their first `started`
 * record, so a retried start of the same command id is not another command.
 */
import { z } from 'zod';
import type {
  BlueprintContext,
  CommandHandle,
  CommandInterface,
  ParsedCommand,
} from '../../core/blueprint.ts';
import { NotFoundError, ResourceGoneError, ValidationError } from '../../core/errors.ts';
import type { Lease, Resource } from '../../core/model.ts';
import { parseHandle } from '../shared.ts';
import type { Synthetic } from './config.ts';
import { findHost, type Host, recordVanish, requireLiveHost, whyGone } from './hosts.ts';
import { appendRecord, listInWriteOrder, rankAmong, syntheticScopes } from './records.ts';
import { endingOf, progressAt, type StartedCommand, scriptFor } from './script.ts';

/** The handle the engine persists on its command record: enough to find the command's records. */
const handleSchema = z.object({
  hostId: z.string().min(1),
  commandId: z.string().min(1),
  startedAtMs: z.number(),
});

export type SyntheticCommandHandle = z.output<typeof handleSchema>;

const parseSyntheticHandle = (handle: CommandHandle): SyntheticCommandHandle =>
  parseHandle(handleSchema, handle, 'synthetic');

type Records = Array<Record<string, unknown>>;

/** The first `started` record of the command: a racing duplicate start describes the same run. */
function startedOf(records: Records, commandId: string): StartedCommand | undefined {
  const r = records.find((rec) => rec.event === 'started' && rec.commandId === commandId);
  if (
    !r ||
    typeof r.command !== 'string' ||
    typeof r.startedAtMs !== 'number' ||
    typeof r.timeoutSeconds !== 'number'
  ) {
    return undefined;
  }
  return {
    commandId,
    text: r.command,
    startedAtMs: r.startedAtMs,
    timeoutSeconds: r.timeoutSeconds,
  };
}

/** When the command was first cancelled, if it was. */
function cancelledAtOf(records: Records, commandId: string): number | undefined {
  const times = records
    .filter((r) => r.event === 'cancelled' && r.commandId === commandId)
    .map((r) => r.cancelledAtMs)
    .filter((ms): ms is number => typeof ms === 'number');
  return times.length > 0 ? Math.min(...times) : undefined;
}

/** 1-based number of the command on its host; one not visible yet counts itself last. */
function commandNumber(records: Records, commandId: string): number {
  const starts = records.filter((r) => r.event === 'started');
  const { rank, distinct } = rankAmong(starts, 'commandId', commandId);
  return rank ?? distinct + 1;
}

function vanishReason(host: Host, afterCommands: number): string {
  return `host ${host.hostId} vanished after ${afterCommands} commands`;
}

export function syntheticCommand(
  ctx: BlueprintContext,
  blueprint: Synthetic,
  resource: Resource,
  lease: Lease,
): CommandInterface {
  const scopeOf = (hostId: string) => syntheticScopes.commands(blueprint.id, hostId);

  async function requireStarted(handle: SyntheticCommandHandle) {
    const records = await listInWriteOrder(ctx, scopeOf(handle.hostId));
    const started = startedOf(records, handle.commandId);
    if (!started) throw new NotFoundError('command', `${handle.hostId}:${handle.commandId}`);
    return { records, started, script: scriptFor(blueprint, started.text) };
  }

  return {
    async start(commandId: string, command: ParsedCommand): Promise<CommandHandle> {
      const host = await requireLiveHost(ctx, blueprint, resource);
      const scope = scopeOf(host.hostId);
      let records = await listInWriteOrder(ctx, scope);
      let started = startedOf(records, commandId);
      if (!started) {
        const fresh: StartedCommand = {
          commandId,
          text: command.text,
          startedAtMs: ctx.clock.now(),
          timeoutSeconds: command.timeoutSeconds,
        };
        await appendRecord(ctx, scope, {
          event: 'started',
          commandId,
          command: command.text,
          leaseId: lease.id,
          startedAtMs: fresh.startedAtMs,
          timeoutSeconds: fresh.timeoutSeconds,
        });
        records = await listInWriteOrder(ctx, scope);
        started = startedOf(records, commandId) ?? fresh;
      }
      const { afterCommands } = blueprint.config.vanish;
      if (afterCommands !== undefined && commandNumber(records, commandId) > afterCommands) {
        const reason = vanishReason(host, afterCommands);
        await recordVanish(ctx, blueprint, host, reason, ctx.clock.now());
        throw new ResourceGoneError(reason, {
          context: { hostId: host.hostId, leaseId: lease.id, commandId },
        });
      }
      const handle: SyntheticCommandHandle = {
        hostId: host.hostId,
        commandId,
        startedAtMs: started.startedAtMs,
      };
      return handle;
    },

    async poll(rawHandle, from) {
      const handle = parseSyntheticHandle(rawHandle);
      const host = await findHost(ctx, blueprint, resource.id);
      if (!host) {
        throw new ResourceGoneError(`resource ${resource.id} has no synthetic host`, {
          context: { resourceId: resource.id },
        });
      }
      if (host.hostId !== handle.hostId) {
        throw new ValidationError(
          `command ${handle.commandId} ran on host ${handle.hostId}, not on this lease's host ${host.hostId}`,
          { context: { leaseId: lease.id, handle } },
        );
      }
      const { records, started, script } = await requireStarted(handle);
      const ending = endingOf(script, started, cancelledAtOf(records, handle.commandId));
      const now = ctx.clock.now();

      // A command that ended before its host went away still reports how it ended.
      const gone = await whyGone(ctx, blueprint, host);
      if (gone !== undefined && !(ending.atMs <= (host.goneAtMs ?? Number.NEGATIVE_INFINITY))) {
        throw new ResourceGoneError(gone, {
          context: { hostId: host.hostId, leaseId: lease.id, commandId: handle.commandId },
        });
      }

      const { afterCommands } = blueprint.config.vanish;
      if (
        afterCommands !== undefined &&
        gone === undefined &&
        now >= ending.atMs &&
        commandNumber(records, handle.commandId) === afterCommands
      ) {
        await recordVanish(ctx, blueprint, host, vanishReason(host, afterCommands), ending.atMs);
      }
      return progressAt(script, started, ending, now, from);
    },

    async cancel(rawHandle) {
      // No host check: stopping a command on a host that is gone has nothing left to stop.
      const handle = parseSyntheticHandle(rawHandle);
      const { records, started, script } = await requireStarted(handle);
      if (cancelledAtOf(records, handle.commandId) !== undefined) return;
      const now = ctx.clock.now();
      if (now >= endingOf(script, started, undefined).atMs) return;
      await appendRecord(ctx, scopeOf(handle.hostId), {
        event: 'cancelled',
        commandId: handle.commandId,
        leaseId: lease.id,
        cancelledAtMs: now,
      });
    },
  };
}
