/**
 * The synthetic command interface: scripted results, no processes.
 */
import type { BlueprintContext, CommandInterface, CommandResult } from '../../core/blueprint.ts';
import { ResourceGoneError } from '../../core/errors.ts';
import type { Lease, Resource } from '../../core/model.ts';
import { parseCommandSpec, waitUnlessAborted } from '../shared.ts';
import type { Synthetic } from './config.ts';
import { recordVanish, requireLiveHost } from './hosts.ts';
import { syntheticScopes, takeTicket } from './records.ts';

function echoOutput(text: string): string {
  return `${text.replace(/^echo(?:\s+|$)/, '')}\n`;
}

export function syntheticCommand(
  ctx: BlueprintContext,
  blueprint: Synthetic,
  resource: Resource,
  lease: Lease,
): CommandInterface {
  return {
    async run(spec, options = {}): Promise<CommandResult> {
      const command = parseCommandSpec(spec);
      const host = await requireLiveHost(ctx, blueprint, resource);
      const started = performance.now();
      const { afterCommands } = blueprint.config.vanish;
      const n = await takeTicket(ctx, syntheticScopes.commands(blueprint.id, host.hostId), {
        leaseId: lease.id,
        command: command.text,
      });
      if (afterCommands !== undefined && n > afterCommands) {
        // Only reachable when commands race past the limit; the Nth command recorded the vanish.
        const reason = `host ${host.hostId} vanished after ${afterCommands} commands`;
        await recordVanish(ctx, blueprint, host, reason, ctx.clock.now());
        throw new ResourceGoneError(reason, {
          context: { hostId: host.hostId, leaseId: lease.id },
        });
      }

      const rule = blueprint.config.commands.find((r) => new RegExp(r.match).test(command.text));
      const delayMs = rule?.delayMs ?? 0;
      const waitMs = Math.min(delayMs, command.timeoutMs);
      const finished =
        (waitMs > 0 ? await waitUnlessAborted(waitMs, options.signal) : !options.signal?.aborted) &&
        delayMs <= command.timeoutMs;
      const result: CommandResult = finished
        ? {
            exitCode: rule?.exitCode ?? 0,
            stdout: rule ? rule.stdout : echoOutput(command.text),
            stderr: rule?.stderr ?? '',
            timedOut: false,
            durationMs: Math.round(performance.now() - started),
          }
        : {
            exitCode: null,
            stdout: '',
            stderr: '',
            timedOut: true,
            durationMs: Math.round(performance.now() - started),
          };

      if (afterCommands !== undefined && n === afterCommands) {
        await recordVanish(
          ctx,
          blueprint,
          host,
          `host ${host.hostId} vanished after ${afterCommands} commands`,
          ctx.clock.now(),
        );
      }
      return result;
    },
  };
}
