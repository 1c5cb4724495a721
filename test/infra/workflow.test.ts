import { Duration } from 'aws-cdk-lib';
import { StateMachine, type StateMachineDefinition } from 'aws-local-stepfunctions';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import {
  blueprintInputSchema,
  MAX_SETUP_TIMEOUT_SECONDS,
} from '../../lambdas/core/blueprint-schema.ts';
import { createBlueprint, readLogs } from '../../lambdas/core/use-cases.ts';
import { SETUP_STATES } from '../../lib/constructs/setup-workflow.ts';
import { type AslDefinition, setupDefinitionFromTemplate } from '../../lib/setup-definition.ts';
import {
  type SetupWorkflowHarness,
  setupWorkflowHarness,
} from '../support/setup-workflow-harness.ts';
import { failureOf } from '../support/workflow.ts';
import { arnOf, logicalId, synth } from './support.ts';

vi.hoisted(() => {
  if (!process.env.DRYDOCK_TEST_LOGS) process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
});

describe('SetupWorkflow', () => {
  const { stack, template } = synth();
  const definition = setupDefinitionFromTemplate(template.toJSON());
  const setupArn = `arn:aws:lambda:us-east-1:123456789012:function:${logicalId(stack.setupFunction)}`;

  it('is one standard state machine, traced, logging everything', () => {
    template.resourceCountIs('AWS::StepFunctions::StateMachine', 1);
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineType: 'STANDARD',
      TracingConfiguration: { Enabled: true },
      LoggingConfiguration: {
        Level: 'ALL',
        IncludeExecutionData: true,
        Destinations: [
          { CloudWatchLogsLogGroup: { LogGroupArn: arnOf(stack.setupWorkflow.logGroup) } },
        ],
      },
    });
    const logGroup =
      template.findResources('AWS::Logs::LogGroup')[logicalId(stack.setupWorkflow.logGroup)];
    expect(logGroup?.Properties.LogGroupName).toMatch(/^\/aws\/vendedlogs\/states\//);
  });

  it('lets its role invoke the setup function only', () => {
    const policies = Object.values(template.findResources('AWS::IAM::Policy')).filter(
      (p) =>
        JSON.stringify(p.Properties.Roles) ===
        JSON.stringify([{ Ref: logicalId(stack.setupWorkflow.stateMachine.role) }]),
    );
    const invoke = policies
      .flatMap((p) => p.Properties.PolicyDocument.Statement)
      .filter((s) => [s.Action].flat().includes('lambda:InvokeFunction'));
    expect(invoke.flatMap((s) => s.Resource)).toEqual([
      arnOf(stack.setupFunction),
      { 'Fn::Join': ['', [arnOf(stack.setupFunction), ':*']] },
    ]);
  });

  it('starts at Advance, with a deadline past the longest setup a blueprint may ask for', () => {
    expect(definition.StartAt).toBe('Advance');
    // A blueprint may ask for up to a day of setup (limits.setupTimeoutSeconds); the workflow
    // must outlive that deadline by more than one WaitForSetup (900 s), so the setup handler
    // can break the overdue resource itself. A standard workflow may run for a year.
    expect(MAX_SETUP_TIMEOUT_SECONDS).toBe(86400);
    expect(definition.TimeoutSeconds).toBe(25 * 3600);
    expect(definition.TimeoutSeconds).toBeGreaterThan(MAX_SETUP_TIMEOUT_SECONDS + 900);
    expect(definition.TimeoutSeconds).toBeLessThanOrEqual(365 * 24 * 3600);
    expect(() =>
      blueprintInputSchema.parse({
        id: 'b',
        type: 'synthetic',
        limits: { setupTimeoutSeconds: MAX_SETUP_TIMEOUT_SECONDS + 1 },
      }),
    ).toThrow();
  });

  it('takes its deadline from setupTimeout', () => {
    const longer = synth({ setupTimeout: Duration.minutes(45) }).template.toJSON();
    expect(setupDefinitionFromTemplate(longer).TimeoutSeconds).toBe(45 * 60);
  });

  it('keeps the state names tests override by', () => {
    expect(Object.keys(definition.States).sort()).toEqual(Object.values(SETUP_STATES).sort());
    expect(SETUP_STATES).toMatchObject({
      advance: 'Advance',
      wait: 'WaitForSetup',
      breakResource: 'BreakResource',
    });
  });

  it('advances with the setup handler, retrying Lambda errors and throttling with backoff', () => {
    const advance = definition.States.Advance;
    expect(advance).toMatchObject({
      Type: 'Task',
      Resource: setupArn,
      Parameters: { 'resourceId.$': '$.resourceId', action: 'advance' },
      Next: 'Done?',
    });
    const retry = advance?.Retry as {
      ErrorEquals: string[];
      BackoffRate: number;
      MaxAttempts: number;
    }[];
    expect(retry[0]?.ErrorEquals).toEqual(
      expect.arrayContaining(['Lambda.ServiceException', 'Lambda.TooManyRequestsException']),
    );
    expect(retry[0]?.BackoffRate).toBeGreaterThan(1);
    expect(retry[0]?.MaxAttempts).toBeGreaterThan(1);
  });

  it('catches every error of Advance into BreakResource, keeping the error', () => {
    expect(definition.States.Advance?.Catch).toEqual([
      { ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'BreakResource' },
    ]);
    expect(definition.States.BreakResource).toMatchObject({
      Type: 'Task',
      Resource: setupArn,
      Parameters: { 'resourceId.$': '$.resourceId', action: 'fail', 'error.$': '$.error' },
      Next: 'SetupFailed',
    });
    expect(definition.States.SetupFailed).toEqual({
      Type: 'Fail',
      ErrorPath: '$.error.Error',
      CausePath: '$.error.Cause',
    });
  });

  it('chooses on $.state and waits $.waitSeconds between steps', () => {
    expect(definition.States['Done?']).toEqual({
      Type: 'Choice',
      Choices: [
        { Variable: '$.state', StringEquals: 'active', Next: 'ResourceActive' },
        { Variable: '$.state', StringEquals: 'broken', Next: 'ResourceBroken' },
        { Variable: '$.state', StringEquals: 'pending', Next: 'WaitForSetup' },
      ],
      Default: 'UnexpectedSetupState',
    });
    expect(definition.States.WaitForSetup).toEqual({
      Type: 'Wait',
      SecondsPath: '$.waitSeconds',
      Next: 'Advance',
    });
    expect(definition.States.ResourceActive).toEqual({ Type: 'Succeed' });
    expect(definition.States.ResourceBroken).toMatchObject({
      Type: 'Fail',
      Error: 'Drydock.ResourceBroken',
    });
  });

  describe('runs locally (aws-local-stepfunctions)', () => {
    type Event = {
      resourceId: string;
      action: 'advance' | 'fail';
      error?: { Error: string; Cause: string };
    };

    async function run(advance: (event: Event) => unknown, calls: Event[] = []) {
      const machine = new StateMachine(definition as unknown as StateMachineDefinition);
      const execution = machine.run(
        { resourceId: 'res-1' },
        {
          overrides: {
            taskResourceLocalHandlers: {
              Advance: async (input) => {
                calls.push(input as Event);
                return advance(input as Event) as never;
              },
              BreakResource: async (input) => {
                calls.push(input as Event);
                return { resourceId: (input as Event).resourceId, state: 'broken' };
              },
            },
            waitTimeOverrides: { WaitForSetup: 0 },
            retryIntervalOverrides: { Advance: 0, BreakResource: 0 },
          },
        },
      );
      return { result: await execution.result, calls };
    }

    it('loops through WaitForSetup until the resource is active', async () => {
      let step = 0;
      const { result, calls } = await run(({ resourceId }) => ({
        resourceId,
        state: ++step < 3 ? 'pending' : 'active',
        waitSeconds: 10,
      }));
      expect(result).toEqual({ resourceId: 'res-1', state: 'active', waitSeconds: 10 });
      expect(calls).toEqual(Array(3).fill({ resourceId: 'res-1', action: 'advance' }));
    });

    it('fails as ResourceBroken when setup reports the resource broken', async () => {
      const calls: Event[] = [];
      const outcome = run(
        ({ resourceId }) => ({ resourceId, state: 'broken', waitSeconds: 0 }),
        calls,
      );
      expect((await failureOf(outcome)).Error).toBe('Drydock.ResourceBroken');
      expect(calls.map((c) => c.action)).toEqual(['advance']);
    });

    it('breaks the resource with the error when Advance keeps throwing', async () => {
      const calls: Event[] = [];
      const outcome = run(() => {
        const error = new Error('instance i-0abc never reached running');
        error.name = 'HostBootError';
        throw error;
      }, calls);
      expect(await failureOf(outcome)).toEqual({
        Error: 'HostBootError',
        Cause: expect.stringContaining('never reached running'),
      });
      const advances = calls.filter((c) => c.action === 'advance');
      expect(advances.length).toBeGreaterThan(1); // handler errors are retried before breaking
      expect(calls.at(-1)).toEqual({
        resourceId: 'res-1',
        action: 'fail',
        error: { Error: 'HostBootError', Cause: expect.stringContaining('never reached running') },
      });
    });

    it('breaks the resource when setup answers outside its contract', async () => {
      const calls: Event[] = [];
      const outcome = run(
        ({ resourceId }) => ({ resourceId, state: 'sideways', waitSeconds: 0 }),
        calls,
      );
      expect(await failureOf(outcome)).toEqual({
        Error: 'Drydock.UnexpectedSetupState',
        Cause: expect.stringContaining('"state":"sideways"'),
      });
      expect(calls.at(-1)).toMatchObject({
        action: 'fail',
        error: { Error: 'Drydock.UnexpectedSetupState' },
      });
    });
  });
});

describe('the synthesized setup workflow with the real setup handler (DynamoDB Local)', () => {
  const definition = setupDefinitionFromTemplate(synth().template.toJSON());
  let harness: SetupWorkflowHarness;
  const host = (platform: string) => ({ type: 'host', attributes: { platform } });
  const resourceOf = (id: string) => harness.system.store.getResource(id);
  const leaseOf = async (id: string) => harness.system.store.getLease(id);

  beforeAll(async () => {
    harness = await setupWorkflowHarness({ definition });
    const engine = harness.system.engine;
    const blueprint = (id: string, config: object, limits: object = {}) =>
      createBlueprint(engine, {
        id,
        type: 'synthetic',
        attributes: { platform: id },
        limits: { maxResources: 2, ...limits },
        config,
      });
    await blueprint('slow', { activation: { delaySeconds: 30 } });
    await blueprint('flaky', {
      activation: { delaySeconds: 30, failTimes: 1, failMessage: 'cloud-init exploded' },
    });
    // Boots in two hours; the blueprint allows ten minutes.
    await blueprint('late', { activation: { delaySeconds: 7200 } }, { setupTimeoutSeconds: 600 });
  });

  it('success: waits while the host boots, activates it, and its lease then activates', async () => {
    const { leaseId, resourceId } = await harness.leaseWaitingForSetup(host('slow'));
    expect((await resourceOf(resourceId))?.status).toBe('pending');

    const { result, calls } = harness.run(resourceId);
    expect(await result).toEqual({ resourceId, state: 'active', waitSeconds: 0 });
    expect(calls.length).toBeGreaterThan(1); // it waited at least once
    expect(calls.every((c) => c.action === 'advance')).toBe(true);
    expect((await resourceOf(resourceId))?.status).toBe('active');

    await harness.drain(async () => (await leaseOf(leaseId))?.status === 'active');
    expect(await leaseOf(leaseId)).toMatchObject({ status: 'active', resourceId });
    const log = (await readLogs(harness.system.engine, resourceId)).map((e) => e.type);
    expect(log).toEqual(expect.arrayContaining(['resource.setup-waiting', 'resource.activated']));
  });

  it('step failure: the resource breaks with the reason, the lease goes back to waiting, the blueprint counts it', async () => {
    const { leaseId, resourceId } = await harness.leaseWaitingForSetup(host('flaky'));

    const { result, calls } = harness.run(resourceId);
    expect((await failureOf(result)).Error).toBe('Drydock.ResourceBroken');
    expect(calls.map((c) => c.action)).toEqual(['advance']);
    expect(await resourceOf(resourceId)).toMatchObject({
      status: 'broken',
      endReason: expect.stringMatching(/activation failed: .*cloud-init exploded/),
    });
    const blueprintLog = await readLogs(harness.system.engine, 'flaky');
    expect(blueprintLog.some((e) => e.message.includes('cloud-init exploded'))).toBe(true);

    await harness.drain(async () => ((await leaseOf(leaseId))?.requeues ?? 0) >= 1);
    const lease = await leaseOf(leaseId);
    expect(lease?.requeues).toBe(1);
    expect(lease?.resourceId).not.toBe(resourceId);
  });

  it("deadline: a setup past its blueprint's setupTimeoutSeconds breaks, inside the workflow's own timeout", async () => {
    const { leaseId, resourceId } = await harness.leaseWaitingForSetup(host('late'));
    const startedAt = harness.system.clock.now();

    const { result, calls } = harness.run(resourceId);
    expect((await failureOf(result)).Error).toBe('Drydock.ResourceBroken');
    expect(await resourceOf(resourceId)).toMatchObject({
      status: 'broken',
      endReason: 'setup did not finish within 600s',
    });
    // It gave up at the deadline, not at the boot's end two hours later, and long before the
    // state machine's own timeout would have cut the execution off.
    const elapsedSeconds = (harness.system.clock.now() - startedAt) / 1000;
    expect(elapsedSeconds).toBeGreaterThanOrEqual(600);
    expect(elapsedSeconds).toBeLessThan(600 + 900 + 1);
    expect(elapsedSeconds).toBeLessThan(definition.TimeoutSeconds ?? 0);
    expect(calls.every((c) => c.action === 'advance')).toBe(true);

    await harness.drain(async () => ((await leaseOf(leaseId))?.requeues ?? 0) >= 1);
    expect((await leaseOf(leaseId))?.requeues).toBe(1);
  });
});

describe('setupDefinitionFromTemplate', () => {
  it('returns plain ASL: no CloudFormation intrinsics left', () => {
    const definition: AslDefinition = setupDefinitionFromTemplate(synth().template.toJSON());
    expect(JSON.stringify(definition)).not.toMatch(/Fn::|"Ref"/);
    expect(Object.keys(definition.States)).toEqual(
      expect.arrayContaining(['Advance', 'WaitForSetup', 'BreakResource']),
    );
  });

  it('says what is wrong with a template without exactly one state machine', () => {
    expect(() => setupDefinitionFromTemplate({ Resources: {} })).toThrow(
      'expected one AWS::StepFunctions::StateMachine in the template, found 0',
    );
    const machine = {
      Type: 'AWS::StepFunctions::StateMachine',
      Properties: { DefinitionString: '{}' },
    };
    expect(() => setupDefinitionFromTemplate({ Resources: { A: machine, B: machine } })).toThrow(
      'found 2 (A, B)',
    );
  });

  it('refuses intrinsics it cannot resolve', () => {
    const template = {
      Resources: {
        M: {
          Type: 'AWS::StepFunctions::StateMachine',
          Properties: { DefinitionString: { 'Fn::Select': [0, ['{}']] } },
        },
      },
    };
    expect(() => setupDefinitionFromTemplate(template)).toThrow('cannot resolve Fn::Select');
  });
});
