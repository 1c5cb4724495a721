/**
 * The setup state machine from the synthesized template, run under aws-local-stepfunctions on
 * the real setup handler and engine with the REAL `ec2-host` plug-in, EC2/SSM played by the
 * shared stateful fake (test/support/aws-fake/) on the harness's clock: success, capacity
 * fallback, a failing readiness command, the setup deadline, and a warm-pool pre-warm (issue 10).
 */
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { makeEc2HostBlueprint } from '../../lambdas/blueprints/ec2-host/index.ts';
import { BlueprintRegistry } from '../../lambdas/core/blueprint.ts';
import { createBlueprint, readLogs } from '../../lambdas/core/use-cases.ts';
import { setupDefinitionFromTemplate } from '../../lib/setup-definition.ts';
import { FakeAws } from '../support/aws-fake/index.ts';
import type { TestClock } from '../support/manual-queue.ts';
import {
  type SetupWorkflowHarness,
  setupWorkflowHarness,
} from '../support/setup-workflow-harness.ts';
import { failureOf } from '../support/workflow.ts';
import { synth } from './support.ts';

vi.hoisted(() => {
  if (!process.env.DRYDOCK_TEST_LOGS) process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
});

const DEPLOYMENT = 'drydock-workflow-test';
const ENV = {
  DRYDOCK_DEPLOYMENT: DEPLOYMENT,
  DRYDOCK_INSTANCE_PROFILE_ARN: 'arn:aws:iam::123456789012:instance-profile/drydock-hosts',
  DRYDOCK_COMMAND_LOG_GROUP: '/drydock/test/commands',
  DRYDOCK_SUBNET_IDS: 'subnet-0aaa,subnet-0bbb',
};

describe('the synthesized setup workflow for ec2-host (real plug-in, shared AWS fake)', () => {
  const definition = setupDefinitionFromTemplate(synth().template.toJSON());
  let clock: TestClock | undefined;
  const fake = new FakeAws({ clock: { now: () => clock?.now() ?? Date.now() } });
  let harness: SetupWorkflowHarness;
  const host = (platform: string) => ({ type: 'host', attributes: { platform } });
  const resourceOf = (id: string) => harness.system.store.getResource(id);
  const instanceOf = (instanceId: string) => fake.launched().find((i) => i.id === instanceId);
  const launchesFor = (resourceId: string) =>
    fake.sent.filter(
      (s) =>
        s.operation === 'RunInstances' &&
        JSON.stringify(s.input).includes(`"drydock:resource","Value":"${resourceId}"`),
    );

  beforeAll(async () => {
    harness = await setupWorkflowHarness({
      definition,
      registry: new BlueprintRegistry().register(makeEc2HostBlueprint({ env: ENV })),
      clients: fake.clients(),
    });
    clock = harness.system.clock;
    const blueprint = (id: string, config: object, limits: object = {}) =>
      createBlueprint(harness.system.engine, {
        id,
        type: 'ec2-host',
        attributes: { platform: id },
        limits: { maxResources: 2, ...limits },
        config: { instanceTypes: ['m7g.large', 'c7g.large'], ...config },
      });
    await blueprint('plain', {});
    await blueprint('fallback', { instanceTypes: ['m7g.xlarge', 'c7g.xlarge'] });
    await blueprint('not-ready', { readinessCommand: 'test -f /var/lib/ready' });
    // The readiness command runs for two hours; the blueprint allows ten minutes.
    await blueprint(
      'late',
      { readinessCommand: 'wait-for-provisioning' },
      { setupTimeoutSeconds: 600 },
    );
    fake.rule({ match: /test -f \/var\/lib\/ready/, exitCode: 1, stderr: 'not ready\n' });
    fake.rule({ match: /wait-for-provisioning/, durationMs: 7_200_000 });
  });

  it('success: launches, waits for running and the SSM agent, runs the readiness command, activates; its lease then activates', async () => {
    const { leaseId, resourceId } = await harness.leaseWaitingForSetup(host('plain'));

    const { result, calls } = harness.run(resourceId);
    expect(await result).toEqual({ resourceId, state: 'active', waitSeconds: 0 });
    expect(calls.length).toBeGreaterThan(2); // boot, agent and readiness waits
    const resource = await resourceOf(resourceId);
    expect(resource).toMatchObject({ status: 'active', attributes: { capacity: 'spot' } });
    const instanceId = resource?.data.instanceId as string;
    expect(instanceOf(instanceId)).toMatchObject({
      state: 'running',
      instanceType: 'm7g.large',
      subnetId: 'subnet-0aaa',
      market: 'spot',
      tags: {
        'drydock:deployment': DEPLOYMENT,
        'drydock:resource': resourceId,
        'drydock:blueprint': 'plain',
      },
    });
    expect(launchesFor(resourceId)).toHaveLength(1);
    expect(
      fake.sent.some(
        (s) =>
          s.operation === 'SendCommand' &&
          JSON.stringify(s.input).includes('cloud-init status --wait'),
      ),
    ).toBe(true);

    await harness.drain(
      async () => (await harness.system.store.getLease(leaseId))?.status === 'active',
    );
    expect(await harness.system.store.getLease(leaseId)).toMatchObject({
      status: 'active',
      resourceId,
    });
  });

  it('capacity fallback: type 1 has no spot capacity anywhere, type 2 only in subnet 2 -> the host comes up there, and its log says what was tried', async () => {
    fake.noCapacity({ instanceType: 'm7g.xlarge', market: 'spot' });
    fake.noCapacity({ instanceType: 'c7g.xlarge', subnetId: 'subnet-0aaa', market: 'spot' });
    const { resourceId } = await harness.leaseWaitingForSetup(host('fallback'));

    const { result } = harness.run(resourceId);
    expect(await result).toEqual({ resourceId, state: 'active', waitSeconds: 0 });
    const resource = await resourceOf(resourceId);
    const instanceId = resource?.data.instanceId as string;
    expect(instanceOf(instanceId)).toMatchObject({
      instanceType: 'c7g.xlarge',
      subnetId: 'subnet-0bbb',
      market: 'spot',
      state: 'running',
    });
    // Three refusals, then the launch that worked: never on-demand while a spot option is left.
    const launches = launchesFor(resourceId);
    expect(launches).toHaveLength(4);
    expect(launches.filter((s) => s.outcome === 'ok')).toHaveLength(1);
    expect(resource?.data).toMatchObject({ instanceId, market: 'spot' });
    expect(resource?.attributes.capacity).toBe('spot');
    const setupLog = (await readLogs(harness.system.engine, resourceId))
      .filter((e) => e.type === 'resource.setup-waiting')
      .map((e) => e.message);
    expect(setupLog[0]).toContain(`launched instance ${instanceId}`);
    for (const tried of [
      'm7g.xlarge spot in subnet-0aaa',
      'm7g.xlarge spot in subnet-0bbb',
      'c7g.xlarge spot in subnet-0aaa',
    ]) {
      expect(setupLog[0]).toContain(`${tried}: InsufficientInstanceCapacity`);
    }
    fake.clearCapacityRules();
  });

  it('readiness failure: the resource breaks naming the step and the command, and the instance is terminated', async () => {
    const { leaseId, resourceId } = await harness.leaseWaitingForSetup(host('not-ready'));

    const { result } = harness.run(resourceId);
    expect((await failureOf(result)).Error).toBe('Drydock.ResourceBroken');
    const resource = await resourceOf(resourceId);
    const instanceId = resource?.data.instanceId as string;
    expect(
      fake.sent.some(
        (s) =>
          s.operation === 'SendCommand' &&
          JSON.stringify(s.input).includes('test -f /var/lib/ready'),
      ),
    ).toBe(true);
    expect(resource).toMatchObject({
      status: 'broken',
      endReason: expect.stringContaining(
        `step readiness: \`test -f /var/lib/ready\` on instance ${instanceId} exited with 1`,
      ),
    });
    // The broken resource is torn down from the queue (terminate), and the lease waits again.
    await harness.drain(async () => (await resourceOf(resourceId))?.status === 'destroyed');
    expect(instanceOf(instanceId)?.state).toMatch(/^(shutting-down|terminated)$/);
    expect((await harness.system.store.getLease(leaseId))?.requeues).toBe(1);
  });

  it("deadline: a readiness command past the blueprint's setupTimeoutSeconds breaks the resource, the instance is terminated", async () => {
    const { leaseId, resourceId } = await harness.leaseWaitingForSetup(host('late'));
    const startedAt = harness.system.clock.now();

    const { result } = harness.run(resourceId);
    expect((await failureOf(result)).Error).toBe('Drydock.ResourceBroken');
    const resource = await resourceOf(resourceId);
    expect(resource).toMatchObject({
      status: 'broken',
      endReason: 'setup did not finish within 600s',
    });
    const elapsedSeconds = (harness.system.clock.now() - startedAt) / 1000;
    expect(elapsedSeconds).toBeGreaterThanOrEqual(600);
    expect(elapsedSeconds).toBeLessThan(definition.TimeoutSeconds ?? 0);

    await harness.drain(async () => (await resourceOf(resourceId))?.status === 'destroyed');
    const instanceId = resource?.data.instanceId as string;
    expect(instanceOf(instanceId)?.state).toMatch(/^(shutting-down|terminated)$/);
    expect((await harness.system.store.getLease(leaseId))?.requeues).toBe(1);
  });

  it('warm pool: a pre-warm (no lease) is set up by the same workflow, with the default capacity', async () => {
    const before = new Set(harness.started);
    await createBlueprint(harness.system.engine, {
      id: 'warm',
      type: 'ec2-host',
      attributes: { platform: 'warm' },
      limits: { maxResources: 2, minIdle: 1 },
      config: { instanceTypes: ['m7i.large'] },
    });
    const handedOver = async () => [...harness.started].some((id) => !before.has(id));
    await harness.drain(handedOver);
    expect(await handedOver()).toBe(true);
    const resourceId = [...harness.started].find((id) => !before.has(id)) as string;
    expect(await resourceOf(resourceId)).toMatchObject({ blueprintId: 'warm', leaseCount: 0 });

    const { result } = harness.run(resourceId);
    expect(await result).toEqual({ resourceId, state: 'active', waitSeconds: 0 });
    const resource = await resourceOf(resourceId);
    expect(resource).toMatchObject({ status: 'active', leaseCount: 0 });
    expect(resource?.attributes.capacity).toBe('spot');
    expect(instanceOf(resource?.data.instanceId as string)).toMatchObject({
      state: 'running',
      market: 'spot',
    });
    expect(launchesFor(resourceId)).toHaveLength(1);
  });
});
