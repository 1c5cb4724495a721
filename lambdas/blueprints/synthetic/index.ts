/**
 * `synthetic`: hosts that exist only as data. The tool for reproducing every race and failure
 * case: scripted allocation/activation/lease-activation failures, slow boots, hosts that vanish,
 * scripted commands (output that arrives over time, exit codes, timeouts, cancels).
 *
 * Every piece of state lives in ctx.records, never in memory (records.ts lists the scopes and how
 * they are ordered and counted across worker processes). Rooms: config.ts (the script),
 * records.ts (scopes, write order, tickets), hosts.ts (the host bill), script.ts (how a scripted
 * command plays out over time), commands.ts and files.ts (the lease's interfaces); this file is
 * the plug-in.
 */
import type { ActivationStep, BlueprintType, HealthResult } from '../../core/blueprint.ts';
import { ResourceGoneError, TemporaryError } from '../../core/errors.ts';
import { isoAt } from '../../core/ports.ts';
import { syntheticCommand } from './commands.ts';
import { type SyntheticConfig, SyntheticFailure, syntheticConfigSchema } from './config.ts';
import { syntheticFilesystem } from './files.ts';
import { appendHostEvent, findHost, requireLiveHost, whyGone } from './hosts.ts';
import { activationFails, callNumberWhileFailing, syntheticScopes } from './records.ts';

// Tests, the bench and the engine suites read the bill through these; they import from here.
export {
  type SyntheticConfig,
  SyntheticFailure,
  syntheticConfigSchema,
} from './config.ts';
export {
  type HostEvent,
  type HostEventKind,
  type HostTimeline,
  hostTimeline,
} from './hosts.ts';
export { inWriteOrder, syntheticScopes } from './records.ts';

export const syntheticBlueprint: BlueprintType<SyntheticConfig> = {
  type: 'synthetic',
  description:
    'Hosts that exist only as records: scripted delays, failures, vanishing, command results.',
  resourceTypes: ['host'],
  configSchema: syntheticConfigSchema,

  activatesLater: (blueprint) => blueprint.config.activation.delaySeconds > 0,

  // Lease activation only has work when failures are scripted; otherwise the allocator
  // acquires and activates in one transaction.
  needsLeaseActivation: (blueprint) => blueprint.config.leaseActivation.failTimes > 0,

  async allocateResource(ctx, blueprint, lease) {
    const { failTimes: limit, failMessage } = blueprint.config.allocation;
    const n = await callNumberWhileFailing(ctx, syntheticScopes.allocations(blueprint.id), limit, {
      leaseId: lease.id,
    });
    if (n !== undefined) {
      throw new TemporaryError(`${failMessage} (allocation ${n} of ${limit} scripted to fail)`, {
        context: { blueprintId: blueprint.id, leaseId: lease.id },
      });
    }
    // Nothing is created here: the host appears in activateResource, after the allocation
    // transaction has committed, so a failed transaction leaves no host behind.
    return {};
  },

  async activateResource(ctx, blueprint, resource): Promise<ActivationStep> {
    let host = await findHost(ctx, blueprint, resource.id);
    if (!host) {
      // Fail before creating anything: a failed activation never leaves a live host.
      if (await activationFails(ctx, blueprint, resource)) {
        throw new SyntheticFailure(blueprint.config.activation.failMessage, {
          blueprintId: blueprint.id,
          resourceId: resource.id,
        });
      }
      // The host id is derived from the resource id (like an EC2 ClientToken), so two racing
      // activations of one resource describe the same host, never two.
      await appendHostEvent(ctx, blueprint, {
        event: 'created',
        hostId: `synthetic-${resource.id}`,
        resourceId: resource.id,
        at: isoAt(ctx.clock),
      });
      host = await findHost(ctx, blueprint, resource.id);
      if (!host) {
        throw new TemporaryError(`host record for resource ${resource.id} is not visible yet`);
      }
    }
    const gone = await whyGone(ctx, blueprint, host);
    if (gone !== undefined) {
      throw new ResourceGoneError(gone, {
        context: { resourceId: resource.id, hostId: host.hostId },
      });
    }
    const readyAtMs = host.createdAtMs + blueprint.config.activation.delaySeconds * 1000;
    const remainingMs = readyAtMs - ctx.clock.now();
    if (remainingMs > 0) {
      const checkAgainSeconds = Math.max(1, Math.ceil(remainingMs / 1000));
      return {
        state: 'pending',
        checkAgainSeconds,
        message: `host ${host.hostId} is booting; ready in about ${checkAgainSeconds}s`,
        data: { hostId: host.hostId },
      };
    }
    return { state: 'active', data: { hostId: host.hostId } };
  },

  async activateLease(ctx, blueprint, resource, lease) {
    await requireLiveHost(ctx, blueprint, resource);
    const { failTimes: limit, failMessage } = blueprint.config.leaseActivation;
    const n = await callNumberWhileFailing(
      ctx,
      syntheticScopes.leaseActivations(blueprint.id),
      limit,
      { leaseId: lease.id, resourceId: resource.id },
    );
    if (n !== undefined) {
      throw new SyntheticFailure(
        `${failMessage} (lease activation ${n} of ${limit} scripted to fail)`,
        {
          blueprintId: blueprint.id,
          resourceId: resource.id,
          leaseId: lease.id,
        },
      );
    }
  },

  // No releaseLease: nothing to clean per lease, so a released lease is torn down in one
  // transaction (lambdas/core/destroy-at-once.ts).

  async destroyResource(ctx, blueprint, resource) {
    const host = await findHost(ctx, blueprint, resource.id);
    if (!host || host.destroyed) return;
    await appendHostEvent(ctx, blueprint, {
      event: 'destroyed',
      hostId: host.hostId,
      resourceId: resource.id,
      at: isoAt(ctx.clock),
    });
  },

  async healthCheck(ctx, blueprint, resource): Promise<HealthResult> {
    const host = await findHost(ctx, blueprint, resource.id);
    if (!host) return { healthy: false, reason: `resource ${resource.id} has no synthetic host` };
    const gone = await whyGone(ctx, blueprint, host);
    return gone === undefined ? { healthy: true } : { healthy: false, reason: gone };
  },

  command: syntheticCommand,
  filesystem: syntheticFilesystem,
};
