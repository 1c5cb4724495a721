import { StateMachine, type StateMachineDefinition } from 'aws-local-stepfunctions';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import type { Lease } from '../../lambdas/core/model.ts';
import { createBlueprint, readLogs } from '../../lambdas/core/use-cases.ts';
import type { SetupEvent, SetupOutput } from '../../lambdas/handlers/setup.ts';
import { loadSetupWorkflow } from '../../lib/local/setup-driver.ts';
import type { AslDefinition } from '../../lib/setup-definition.ts';
import { TestClock } from '../support/manual-queue.ts';
import { failureOf } from '../support/workflow.ts';
import { type HandlerEnv, handlerEnv, lambdaContext } from './support.ts';

vi.hoisted(() => {
  if (!process.env.DRYDOCK_TEST_LOGS) process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
});

const clock = new TestClock();
/** Resources whose setup the engine asked to start (what StartExecution would have run). */
const setupsStarted = new Set<string>();
let env: HandlerEnv;
let definition: AslDefinition;

async function invokeSetup(event: SetupEvent): Promise<SetupOutput> {
  const output = (await env.handlers.setup(event, lambdaContext('setup'))) as SetupOutput;
  // The Wait state is overridden to 0 s: let the time it would have waited pass on the clock.
  if (output.state === 'pending') clock.advance(output.waitSeconds * 1000);
  return output;
}

/** Runs the setup workflow for a resource; `advance` replaces the Advance task if given. */
function runWorkflow(
  resourceId: string,
  advance: (event: SetupEvent) => Promise<SetupOutput> = invokeSetup,
) {
  const calls: SetupEvent[] = [];
  const machine = new StateMachine(definition as unknown as StateMachineDefinition);
  const execution = machine.run(
    { resourceId },
    {
      overrides: {
        taskResourceLocalHandlers: {
          Advance: async (input) => {
            calls.push(input as SetupEvent);
            return (await advance(input as SetupEvent)) as never;
          },
          BreakResource: async (input) => {
            calls.push(input as SetupEvent);
            return (await invokeSetup(input as SetupEvent)) as never;
          },
        },
        waitTimeOverrides: { WaitForSetup: 0 },
        retryIntervalOverrides: { Advance: 0, BreakResource: 0 },
      },
    },
  );
  return { result: execution.result as Promise<unknown>, calls };
}

async function leaseOf(id: string): Promise<Lease> {
  return (await env.api({ method: 'GET', path: `/v1/leases/${id}` })).body.lease;
}

/** Requests a lease and drives the worker until its resource's setup was handed to the workflow. */
async function leaseWaitingForSetup(
  platform: string,
): Promise<{ leaseId: string; resourceId: string }> {
  const created = await env.api({
    method: 'POST',
    path: '/v1/leases',
    body: { type: 'host', attributes: { platform } },
  });
  const leaseId = created.body.lease.id as string;
  const resourceId = await env.driveWorker(async () => {
    const lease = await leaseOf(leaseId);
    return lease.status === 'acquired' && lease.resourceId && setupsStarted.has(lease.resourceId)
      ? lease.resourceId
      : undefined;
  });
  return { leaseId, resourceId };
}

beforeAll(async () => {
  definition = await loadSetupWorkflow();
  env = await handlerEnv({
    clock,
    startSetup: async (resourceId) => {
      setupsStarted.add(resourceId);
    },
  });
  const engine = env.engine;
  const slow = { activation: { delaySeconds: 30 } };
  await createBlueprint(engine, {
    id: 'slow',
    type: 'synthetic',
    attributes: { platform: 'slow' },
    limits: { maxResources: 2 },
    config: slow,
  });
  await createBlueprint(engine, {
    id: 'flaky',
    type: 'synthetic',
    attributes: { platform: 'flaky' },
    limits: { maxResources: 2 },
    config: {
      activation: { ...slow.activation, failTimes: 1, failMessage: 'cloud-init exploded' },
    },
  });
  await createBlueprint(engine, {
    id: 'doomed',
    type: 'synthetic',
    attributes: { platform: 'doomed' },
    limits: { maxResources: 2 },
    config: slow,
  });
});

describe('the setup workflow with the setup handler', () => {
  it('is the definition the stack deploys', () => {
    expect(definition.StartAt).toBe('Advance');
    expect(Object.keys(definition.States)).toEqual(
      expect.arrayContaining(['Advance', 'WaitForSetup', 'BreakResource']),
    );
  });

  it('success: setup waits for the host to boot, the resource activates and so does its lease', async () => {
    const { leaseId, resourceId } = await leaseWaitingForSetup('slow');
    expect((await env.engine.store.getResource(resourceId))?.status).toBe('pending');

    const { result, calls } = runWorkflow(resourceId);
    expect(await result).toEqual({ resourceId, state: 'active', waitSeconds: 0 });
    expect(calls.length).toBeGreaterThan(1); // it waited at least once
    expect(calls.every((c) => c.action === 'advance')).toBe(true);
    expect((await env.engine.store.getResource(resourceId))?.status).toBe('active');

    // The activation woke the lease through the queue.
    const lease = await env.driveWorker(async () => {
      const now = await leaseOf(leaseId);
      return now.status === 'active' ? now : undefined;
    });
    expect(lease.resourceId).toBe(resourceId);
    const resourceLog = (await readLogs(env.engine, resourceId)).map((e) => e.type);
    expect(resourceLog).toEqual(
      expect.arrayContaining(['resource.setup-waiting', 'resource.activated']),
    );
  });

  it('failure: activation fails, the resource breaks and its lease goes back to pending', async () => {
    const { leaseId, resourceId } = await leaseWaitingForSetup('flaky');

    const { result, calls } = runWorkflow(resourceId);
    expect((await failureOf(result)).Error).toBe('Drydock.ResourceBroken');
    expect(calls.map((c) => c.action)).toEqual(['advance']);
    const broken = await env.engine.store.getResource(resourceId);
    expect(broken?.status).toBe('broken');
    expect(broken?.endReason).toMatch(/activation failed: .*cloud-init exploded/);

    // Not the lease's fault: it is sent back to pending and allocated again (a new host).
    const requeued = await env.driveWorker(async () => {
      const now = await leaseOf(leaseId);
      return now.requeues === 1 && now.resourceId !== resourceId ? now : undefined;
    });
    expect(['pending', 'acquired']).toContain(requeued.status);
    const log = (await readLogs(env.engine, leaseId)).filter((e) => e.type === 'lease.requeued');
    expect(log).toHaveLength(1);
    expect(log[0]?.message).toMatch(/cloud-init exploded.*allocating again/);
    await env.driveWorker(
      async () => (await env.engine.store.getResource(resourceId))?.status === 'destroyed',
    );
  });

  it('a step that keeps throwing is caught into BreakResource, which breaks the resource with the Cause', async () => {
    const { leaseId, resourceId } = await leaseWaitingForSetup('doomed');
    const bootFailure = async (): Promise<SetupOutput> => {
      const error = new Error('instance i-0abc never reached running');
      error.name = 'HostBootError';
      throw error;
    };

    const { result, calls } = runWorkflow(resourceId, bootFailure);
    expect(await failureOf(result)).toEqual({
      Error: 'HostBootError',
      Cause: expect.stringContaining('never reached running'),
    });
    expect(calls.at(-1)).toMatchObject({
      resourceId,
      action: 'fail',
      error: { Error: 'HostBootError' },
    });
    const broken = await env.engine.store.getResource(resourceId);
    expect(broken).toMatchObject({
      status: 'broken',
      endReason: 'setup failed (HostBootError): instance i-0abc never reached running',
    });
    const blueprintLog = (await readLogs(env.engine, 'doomed')).map((e) => e.message);
    expect(blueprintLog.some((m) => m.includes('never reached running'))).toBe(true);

    const requeued = await env.driveWorker(async () => {
      const now = await leaseOf(leaseId);
      return now.requeues === 1 ? now : undefined;
    });
    expect(requeued.resourceId).not.toBe(resourceId);
  });
});

describe('the setup handler alone', () => {
  const step = (event: SetupEvent) =>
    env.handlers.setup(event, lambdaContext('setup')) as Promise<SetupOutput>;

  it('a resource that does not exist is broken (there is nothing to set up)', async () => {
    expect(await step({ resourceId: 'res-missing', action: 'advance' })).toEqual({
      resourceId: 'res-missing',
      state: 'broken',
      waitSeconds: 0,
    });
    expect(
      await step({ resourceId: 'res-missing', action: 'fail', error: { Error: 'X', Cause: 'y' } }),
    ).toMatchObject({ state: 'broken' });
  });

  it('fail leaves a resource that already became active alone', async () => {
    const { resourceId } = await leaseWaitingForSetup('slow');
    const { result } = runWorkflow(resourceId);
    await result;
    expect(
      await step({ resourceId, action: 'fail', error: { Error: 'States.Timeout', Cause: 'late' } }),
    ).toEqual({ resourceId, state: 'active', waitSeconds: 0 });
    expect((await env.engine.store.getResource(resourceId))?.status).toBe('active');
  });

  it('refuses an event outside its contract', async () => {
    await expect(step({ resourceId: '', action: 'sideways' } as never)).rejects.toThrow(
      /invalid setup event: resourceId: .*; action: /,
    );
  });

  it("keeps a Lambda error's message, not its stack trace", async () => {
    const { setupFailureReason } = await import('../../lambdas/handlers/setup.ts');
    const cause = JSON.stringify({
      errorType: 'TemporaryError',
      errorMessage: 'DynamoDB is throttling',
      trace: ['TemporaryError: DynamoDB is throttling', '    at x (/var/task/index.mjs:1:1)'],
    });
    expect(setupFailureReason({ Error: 'TemporaryError', Cause: cause })).toBe(
      'setup failed (TemporaryError): DynamoDB is throttling',
    );
    expect(setupFailureReason(undefined)).toBe('setup failed: no cause given');
  });
});
