/**
 * The setup state machine from the synthesized template, run under aws-local-stepfunctions on
 * the real setup handler and engine, for the two ec2-host scenarios of issue 10: capacity
 * fallback and a failing readiness command.
 *
 * STAND-IN: the `ec2-host` plug-in (lambdas/blueprints/ec2-host/) is written on another branch
 * and is not on this one, so these scenarios run a minimal test-only plug-in with the same
 * config field names and the same observable contract (types x subnets in order, spot before
 * on-demand, readiness over "SSM", terminate on failure), over an in-test capacity table. When
 * the real plug-in lands, pass it and the shared AWS fake's clients to setupWorkflowHarness
 * (`plugins`, `clients`) and delete `fakeEc2Host`; the scenarios' assertions stay.
 */
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import type { BlueprintType } from '../../lambdas/core/blueprint.ts';
import { createBlueprint, readLogs } from '../../lambdas/core/use-cases.ts';
import { setupDefinitionFromTemplate } from '../../lib/setup-definition.ts';
import {
  type SetupWorkflowHarness,
  setupWorkflowHarness,
} from '../support/setup-workflow-harness.ts';
import { failureOf } from '../support/workflow.ts';
import { synth } from './support.ts';

vi.hoisted(() => {
  if (!process.env.DRYDOCK_TEST_LOGS) process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
});

type Market = 'spot' | 'on-demand';

interface FakeInstance {
  id: string;
  resourceId: string;
  instanceType: string;
  subnetId: string;
  market: Market;
  state: 'pending' | 'running' | 'terminated';
}

/** What the stand-in plug-in launches into: which (market, type, subnet) has capacity. */
class FakeCapacity {
  readonly open = new Set<string>();
  readonly instances = new Map<string, FakeInstance>();
  launchCalls = 0;
  readinessExitCode = 0;
  readinessCommands: string[] = [];

  allow(market: Market, instanceType: string, subnetId: string): void {
    this.open.add(`${market}/${instanceType}/${subnetId}`);
  }

  has(market: Market, instanceType: string, subnetId: string): boolean {
    return this.open.has(`${market}/${instanceType}/${subnetId}`);
  }
}

const fakeConfigSchema = z
  .object({
    instanceTypes: z.array(z.string()).min(1),
    subnetIds: z.array(z.string()).min(1),
    capacity: z.enum(['spot', 'spot-then-on-demand', 'on-demand']).default('spot-then-on-demand'),
    readinessCommand: z.string().default('cloud-init status --wait'),
  })
  .strict();
type FakeConfig = z.output<typeof fakeConfigSchema>;

function fakeEc2Host(cloud: FakeCapacity): BlueprintType<FakeConfig> {
  const markets = (mode: FakeConfig['capacity']): Market[] =>
    mode === 'spot' ? ['spot'] : mode === 'on-demand' ? ['on-demand'] : ['spot', 'on-demand'];
  return {
    type: 'fake-ec2-host',
    description: 'Test stand-in for ec2-host (see the file comment).',
    resourceTypes: ['host'],
    configSchema: fakeConfigSchema,
    activatesLater: () => true,
    async allocateResource() {
      return {};
    },
    async activateResource(_ctx, blueprint, resource) {
      const { config } = blueprint;
      const instanceId = resource.data.instanceId as string | undefined;
      if (!instanceId) {
        const tried: string[] = [];
        for (const market of markets(config.capacity)) {
          for (const instanceType of config.instanceTypes) {
            for (const subnetId of config.subnetIds) {
              cloud.launchCalls++;
              if (!cloud.has(market, instanceType, subnetId)) {
                tried.push(
                  `${instanceType} in ${subnetId} (${market}): InsufficientInstanceCapacity`,
                );
                continue;
              }
              const id = `i-${resource.id}`;
              cloud.instances.set(id, {
                id,
                resourceId: resource.id,
                instanceType,
                subnetId,
                market,
                state: 'pending',
              });
              return {
                state: 'pending',
                checkAgainSeconds: 10,
                message: `launched ${id} (${instanceType} in ${subnetId}, ${market}) after ${tried.length} tries: ${tried.join('; ') || 'none'}`,
                data: { instanceId: id, capacity: market },
              };
            }
          }
        }
        throw new Error(`launch: no capacity: ${tried.join('; ')}`);
      }
      const instance = cloud.instances.get(instanceId);
      if (!instance || instance.state === 'terminated') {
        throw new Error(`wait-running: ${instanceId} is gone`);
      }
      if (instance.state === 'pending') {
        instance.state = 'running';
        return { state: 'pending', checkAgainSeconds: 15, message: `${instanceId} is booting` };
      }
      cloud.readinessCommands.push(config.readinessCommand);
      if (cloud.readinessExitCode !== 0) {
        throw new Error(
          `readiness: '${config.readinessCommand}' exited ${cloud.readinessExitCode} on ${instanceId}`,
        );
      }
      return { state: 'active' };
    },
    async destroyResource(_ctx, _blueprint, resource) {
      const instance = cloud.instances.get(resource.data.instanceId as string);
      if (instance) instance.state = 'terminated';
    },
    async healthCheck() {
      return { healthy: true };
    },
  };
}

describe('the synthesized setup workflow for ec2-host scenarios (stand-in plug-in)', () => {
  const definition = setupDefinitionFromTemplate(synth().template.toJSON());
  const cloud = new FakeCapacity();
  let harness: SetupWorkflowHarness;
  const host = (platform: string) => ({ type: 'host', attributes: { platform } });

  beforeAll(async () => {
    harness = await setupWorkflowHarness({ definition, plugins: [fakeEc2Host(cloud)] });
    const blueprint = (id: string, config: Partial<FakeConfig>) =>
      createBlueprint(harness.system.engine, {
        id,
        type: 'fake-ec2-host',
        attributes: { platform: id },
        limits: { maxResources: 2 },
        config: {
          instanceTypes: ['m7g.large', 'c7g.large'],
          subnetIds: ['subnet-a', 'subnet-b'],
          ...config,
        },
      });
    await blueprint('fallback', {});
    await blueprint('not-ready', { readinessCommand: 'test -f /var/lib/ready' });
  });

  it('capacity fallback: type 1 has no spot capacity anywhere, type 2 only in subnet 2 -> the host comes up there, and its log says what was tried', async () => {
    cloud.allow('spot', 'c7g.large', 'subnet-b');
    cloud.allow('on-demand', 'm7g.large', 'subnet-a'); // on-demand comes only after every spot option
    const { resourceId } = await harness.leaseWaitingForSetup(host('fallback'));

    const { result } = harness.run(resourceId);
    expect(await result).toEqual({ resourceId, state: 'active', waitSeconds: 0 });
    expect(cloud.instances.get(`i-${resourceId}`)).toMatchObject({
      instanceType: 'c7g.large',
      subnetId: 'subnet-b',
      market: 'spot',
      state: 'running',
    });
    expect(cloud.launchCalls).toBe(4);
    expect((await harness.system.store.getResource(resourceId))?.data).toMatchObject({
      instanceId: `i-${resourceId}`,
      capacity: 'spot',
    });
    const setupLog = (await readLogs(harness.system.engine, resourceId))
      .filter((e) => e.type === 'resource.setup-waiting')
      .map((e) => e.message);
    expect(setupLog[0]).toContain('after 3 tries');
    for (const tried of [
      'm7g.large in subnet-a (spot)',
      'm7g.large in subnet-b (spot)',
      'c7g.large in subnet-a (spot)',
    ]) {
      expect(setupLog[0]).toContain(`${tried}: InsufficientInstanceCapacity`);
    }
  });

  it('readiness failure: the resource breaks naming the step and the command, and the instance is terminated', async () => {
    cloud.allow('spot', 'm7g.large', 'subnet-a');
    cloud.readinessExitCode = 1;
    const { leaseId, resourceId } = await harness.leaseWaitingForSetup(host('not-ready'));

    const { result } = harness.run(resourceId);
    expect((await failureOf(result)).Error).toBe('Drydock.ResourceBroken');
    expect(cloud.readinessCommands).toContain('test -f /var/lib/ready');
    expect(await harness.system.store.getResource(resourceId)).toMatchObject({
      status: 'broken',
      endReason: expect.stringContaining(
        `readiness: 'test -f /var/lib/ready' exited 1 on i-${resourceId}`,
      ),
    });
    // The broken resource is torn down from the queue (terminate), and the lease waits again.
    await harness.drain(
      async () => (await harness.system.store.getResource(resourceId))?.status === 'destroyed',
    );
    expect(cloud.instances.get(`i-${resourceId}`)?.state).toBe('terminated');
    expect((await harness.system.store.getLease(leaseId))?.requeues).toBe(1);
  });
});
