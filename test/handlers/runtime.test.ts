/**
 * The handlers' shared runtime: configuration from the environment, who is an admin, the
 * composition root's engine and its setup-workflow starter, and the sweep handler.
 */
import { DescribeExecutionCommand, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createBlueprint, requestLease } from '../../lambdas/core/use-cases.ts';
import {
  buildEngineFromEnvironment,
  engineFromEnvironment,
} from '../../lambdas/handlers/composition.ts';
import { isAdmin, readEnvironment } from '../../lambdas/handlers/runtime.ts';
import {
  executionArn,
  MAX_SETUP_ATTEMPTS,
  setupExecutionName,
} from '../../lambdas/handlers/setup-starter.ts';
import { TestClock } from '../support/manual-queue.ts';
import {
  ADMIN,
  ADMIN_ROLE,
  CI,
  HANDLER_TEST_SETTINGS,
  type HandlerEnv,
  handlerEnv,
  lambdaContext,
} from './support.ts';

vi.hoisted(() => {
  if (!process.env.DRYDOCK_TEST_LOGS) process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
});

describe('readEnvironment', () => {
  it('names every missing or bad variable in one error', () => {
    expect(() =>
      readEnvironment({ QUEUE_URL: '', SETUP_STATE_MACHINE_ARN: 'arn:aws:lambda:nope' }),
    ).toThrow(
      /misconfigured: TABLE_NAME: required .*; QUEUE_URL: must not be empty; SETUP_STATE_MACHINE_ARN: not a state machine ARN/,
    );
  });

  it('treats empty optional variables as unset', () => {
    expect(
      readEnvironment({
        TABLE_NAME: 't',
        QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/q',
        SETUP_STATE_MACHINE_ARN: '',
        DRYDOCK_DATA_DIR: '',
      }),
    ).toEqual({
      TABLE_NAME: 't',
      QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/q',
    });
  });
});

describe('isAdmin', () => {
  it('admits listed principals, everyone for *, and the sessions of a listed role', () => {
    expect(isAdmin(CI, `${CI}, ${ADMIN_ROLE}`)).toBe(true);
    expect(isAdmin(CI, '*')).toBe(true);
    expect(isAdmin(CI, ADMIN_ROLE)).toBe(false);
    expect(isAdmin(CI, '')).toBe(false);
    expect(isAdmin(ADMIN, ADMIN_ROLE)).toBe(true);
    expect(isAdmin(ADMIN, 'arn:aws:iam::123456789012:role/team/drydock-admin')).toBe(true);
    expect(isAdmin(ADMIN, 'arn:aws:iam::999999999999:role/drydock-admin')).toBe(false);
    expect(isAdmin(ADMIN, 'arn:aws:iam::123456789012:role/drydock-admin-2')).toBe(false);
  });
});

describe('the setup-workflow starter', () => {
  const sfn = mockClient(SFNClient);
  const arn = 'arn:aws:states:us-east-1:123456789012:stateMachine:DrydockSetup';
  /** What the stack sets (the table and queue are never touched by these tests). */
  const environment = {
    TABLE_NAME: 'drydock',
    QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/drydock-updates',
  };
  const engine = (env: NodeJS.ProcessEnv) => buildEngineFromEnvironment(env);

  afterEach(() => {
    sfn.reset();
  });

  it('starts one execution per resource, named after it; a second start is harmless', async () => {
    sfn
      .on(StartExecutionCommand)
      .resolvesOnce({ executionArn: `${arn}:setup-res-1`, startDate: new Date() })
      .rejectsOnce(
        Object.assign(new Error('Execution Already Exists'), { name: 'ExecutionAlreadyExists' }),
      );
    sfn.on(DescribeExecutionCommand).resolves({ status: 'RUNNING' });
    const start = engine({ ...environment, SETUP_STATE_MACHINE_ARN: arn }).startSetup;
    expect(start).toBeDefined();
    await start?.('res-1');
    await start?.('res-1');
    const calls = sfn.commandCalls(StartExecutionCommand).map((c) => c.args[0].input);
    expect(calls).toEqual([
      { stateMachineArn: arn, name: 'setup-res-1', input: '{"resourceId":"res-1"}' },
      { stateMachineArn: arn, name: 'setup-res-1', input: '{"resourceId":"res-1"}' },
    ]);
  });

  it('starts the next attempt when the execution under the name has ended (timed out, stopped)', async () => {
    const taken = () =>
      Object.assign(new Error('Execution Already Exists'), { name: 'ExecutionAlreadyExists' });
    sfn
      .on(StartExecutionCommand)
      .rejectsOnce(taken())
      .rejectsOnce(taken())
      .resolvesOnce({ executionArn: `${arn}:setup-res-3-r3`, startDate: new Date() });
    sfn
      .on(DescribeExecutionCommand)
      .resolvesOnce({ status: 'TIMED_OUT' })
      .resolvesOnce({ status: 'ABORTED' });
    await engine({ ...environment, SETUP_STATE_MACHINE_ARN: arn }).startSetup?.('res-3');
    expect(sfn.commandCalls(StartExecutionCommand).map((c) => c.args[0].input.name)).toEqual([
      'setup-res-3',
      'setup-res-3-r2',
      'setup-res-3-r3',
    ]);
    expect(sfn.commandCalls(DescribeExecutionCommand).map((c) => c.args[0].input)).toEqual([
      { executionArn: 'arn:aws:states:us-east-1:123456789012:execution:DrydockSetup:setup-res-3' },
      {
        executionArn: 'arn:aws:states:us-east-1:123456789012:execution:DrydockSetup:setup-res-3-r2',
      },
    ]);
  });

  it('does not start another attempt while the execution under the name runs', async () => {
    sfn
      .on(StartExecutionCommand)
      .rejects(
        Object.assign(new Error('Execution Already Exists'), { name: 'ExecutionAlreadyExists' }),
      );
    sfn.on(DescribeExecutionCommand).resolvesOnce({ status: 'FAILED' }).resolves({
      status: 'RUNNING',
    });
    await engine({ ...environment, SETUP_STATE_MACHINE_ARN: arn }).startSetup?.('res-4');
    expect(sfn.commandCalls(StartExecutionCommand)).toHaveLength(2);
    expect(sfn.commandCalls(DescribeExecutionCommand)).toHaveLength(2);
  });

  it('gives up, naming the executions, when every attempt ended with the resource pending', async () => {
    sfn
      .on(StartExecutionCommand)
      .rejects(
        Object.assign(new Error('Execution Already Exists'), { name: 'ExecutionAlreadyExists' }),
      );
    sfn.on(DescribeExecutionCommand).resolves({ status: 'TIMED_OUT' });
    const start = engine({ ...environment, SETUP_STATE_MACHINE_ARN: arn }).startSetup;
    await expect(start?.('res-5')).rejects.toMatchObject({
      code: 'workflow_failure',
      message: expect.stringContaining('setup-res-5*'),
    });
    expect(sfn.commandCalls(StartExecutionCommand)).toHaveLength(MAX_SETUP_ATTEMPTS);
  });

  it('reports throttling as temporary and anything else as a failure', async () => {
    sfn
      .on(StartExecutionCommand)
      .rejectsOnce(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }))
      .rejectsOnce(
        Object.assign(new Error('no such machine'), { name: 'StateMachineDoesNotExist' }),
      );
    const start = engine({ ...environment, SETUP_STATE_MACHINE_ARN: arn }).startSetup;
    await expect(start?.('res-2')).rejects.toMatchObject({ code: 'temporary' });
    await expect(start?.('res-2')).rejects.toMatchObject({
      code: 'workflow_failure',
      message: expect.stringContaining('no such machine'),
    });
  });

  it('is absent without SETUP_STATE_MACHINE_ARN (setup is then driven from the queue)', () => {
    expect(engine(environment).startSetup).toBeUndefined();
  });

  it('names executions within the Step Functions limits', () => {
    expect(setupExecutionName('res-mh1k2x3a0f3c2d1e0b')).toBe('setup-res-mh1k2x3a0f3c2d1e0b');
    expect(setupExecutionName(`res:${'x'.repeat(100)}`)).toMatch(/^setup-res_x+$/);
    expect(setupExecutionName(`res:${'x'.repeat(100)}`)).toHaveLength(80);
    expect(setupExecutionName('res-1', 2)).toBe('setup-res-1-r2');
    expect(setupExecutionName(`res:${'x'.repeat(100)}`, 5)).toMatch(/^setup-res_x+-r5$/);
    expect(setupExecutionName(`res:${'x'.repeat(100)}`, 5)).toHaveLength(80);
    expect(executionArn(arn, 'setup-res-1')).toBe(
      'arn:aws:states:us-east-1:123456789012:execution:DrydockSetup:setup-res-1',
    );
  });
});

describe("the container's engine", () => {
  it('is built on first use, once, from the environment; a misconfiguration names itself', () => {
    const saved = { TABLE_NAME: process.env.TABLE_NAME, QUEUE_URL: process.env.QUEUE_URL };
    delete process.env.TABLE_NAME;
    process.env.QUEUE_URL = 'https://sqs.us-east-1.amazonaws.com/123456789012/q';
    try {
      expect(() => engineFromEnvironment()).toThrow(/misconfigured: TABLE_NAME: required/);
      process.env.TABLE_NAME = 'drydock';
      const engine = engineFromEnvironment();
      expect(engineFromEnvironment()).toBe(engine);
    } finally {
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
  });
});

describe('the sweep handler', () => {
  let env: HandlerEnv;
  const clock = new TestClock();

  beforeAll(async () => {
    env = await handlerEnv({ clock });
  });

  it('runs the sweep and returns its report: a lease whose message was lost is re-driven', async () => {
    expect(env.tableName).toBeTruthy();
    await createBlueprint(env.engine, { id: 'pool', type: 'synthetic' });
    const lease = await requestLease(env.engine, { type: 'host', owner: CI });
    // Nobody processes its message; past strandAfterSeconds the sweep sends it again.
    clock.advance((HANDLER_TEST_SETTINGS.strandAfterSeconds ?? 60) * 1000 + 1000);
    const report = await env.handlers.sweep({}, lambdaContext('sweep'));
    expect(report).toMatchObject({ redrivenLeases: 1, expiredLeases: 0, locksFreed: 0 });
    expect((await env.engine.store.getLease(lease.id))?.status).toBe('pending');
  });
});
