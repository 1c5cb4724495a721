/**
 * Least privilege per function (issue 15, point 4): each function's IAM actions, listed, and
 * the DynamoDB ones checked against what the store's code actually calls; the API resource
 * policy appears only when its context is set.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import {
  LOCAL_ONLY_STORE_MODULES,
  STORE_DYNAMODB_ACTIONS,
} from '../../lambdas/store/iam-actions.ts';
import { DrydockStack } from '../../lib/stack.ts';
import {
  CDK_CONTEXT,
  FIXTURE_HANDLERS_DIR,
  logicalId,
  statementsOfRole,
  synth,
} from './support.ts';

const STORE_DIR = fileURLToPath(new URL('../../lambdas/store/', import.meta.url));

/** The IAM action each SDK command or transaction item of the store needs. */
const ACTION_OF: Record<string, string> = {
  GetCommand: 'dynamodb:GetItem',
  BatchGetCommand: 'dynamodb:BatchGetItem',
  QueryCommand: 'dynamodb:Query',
  PutCommand: 'dynamodb:PutItem',
  UpdateCommand: 'dynamodb:UpdateItem',
  DeleteCommand: 'dynamodb:DeleteItem',
  ScanCommand: 'dynamodb:Scan',
  BatchWriteCommand: 'dynamodb:BatchWriteItem',
  TransactGetCommand: 'dynamodb:GetItem',
  // Needs the action of each of its items (counted below), none of its own.
  TransactWriteCommand: '',
  'transaction Put': 'dynamodb:PutItem',
  'transaction Update': 'dynamodb:UpdateItem',
  'transaction Delete': 'dynamodb:DeleteItem',
  'transaction ConditionCheck': 'dynamodb:ConditionCheckItem',
};

/** What the deployed store's source calls: SDK commands it sends, transaction items it builds. */
function actionsTheStoreCalls(): { actions: Set<string>; unknown: string[] } {
  const actions = new Set<string>();
  const unknown: string[] = [];
  for (const file of readdirSync(STORE_DIR).filter((f) => f.endsWith('.ts'))) {
    if ((LOCAL_ONLY_STORE_MODULES as readonly string[]).includes(file)) continue;
    const source = readFileSync(join(STORE_DIR, file), 'utf8');
    const used = [
      ...[...source.matchAll(/\bnew (\w+Command)\(/g)].map((m) => m[1] as string),
      ...[...source.matchAll(/\{\s*(Put|Update|Delete|ConditionCheck)\s*:/g)].map(
        (m) => `transaction ${m[1]}`,
      ),
    ];
    for (const name of used) {
      const action = ACTION_OF[name];
      if (action === undefined) unknown.push(`${file}: ${name}`);
      else if (action) actions.add(action);
    }
  }
  return { actions, unknown };
}

describe('least privilege', () => {
  const { stack, template } = synth({
    adminPrincipals: ['arn:aws:iam::123456789012:role/drydock-admin'],
  });
  const functions = {
    api: stack.apiFunction,
    worker: stack.workerFunction,
    sweep: stack.sweepFunction,
    setup: stack.setupFunction,
  };
  const actionsOf = (fn: (typeof functions)['api']) =>
    [...new Set(statementsOfRole(template, fn.role).flatMap((s) => s.Action))].sort();

  it('grants the DynamoDB actions the store calls, and the store calls only those', () => {
    const { actions, unknown } = actionsTheStoreCalls();
    expect(unknown, 'SDK calls with no known IAM action: add them to ACTION_OF').toEqual([]);
    expect([...actions].sort()).toEqual([...STORE_DYNAMODB_ACTIONS].sort());
    for (const [name, fn] of Object.entries(functions)) {
      expect(
        actionsOf(fn).filter((a) => a.startsWith('dynamodb:')),
        name,
      ).toEqual([...actions].sort());
    }
  });

  it("lists each function's actions: nothing its code does not use", () => {
    const base = [
      ...STORE_DYNAMODB_ACTIONS,
      'logs:CreateLogStream',
      'logs:PutLogEvents',
      'sqs:GetQueueAttributes',
      'sqs:GetQueueUrl',
      'sqs:SendMessage',
      'xray:PutTelemetryRecords',
      'xray:PutTraceSegments',
    ];
    // Host control (SSM Run Command and its output log group) and the ec2-host fleet: each
    // call is pinned to the plug-ins' real calls by test/infra/ec2-host-iam.test.ts and
    // functions.test.ts; here, which function has them at all.
    const ssm = [
      'ssm:CancelCommand',
      'ssm:DescribeInstanceInformation',
      'ssm:GetCommandInvocation',
      'ssm:ListCommands',
      'ssm:SendCommand',
    ];
    const inventory = ['ec2:DescribeInstances', 'ec2:TerminateInstances'];
    const expected: Record<keyof typeof functions, string[]> = {
      // Leases, commands, blueprints, `drydock dlq` (peek and redrive): no host, no workflow.
      api: [
        ...base,
        'sqs:ChangeMessageVisibility',
        'sqs:DeleteMessage',
        'sqs:ReceiveMessage',
        'sqs:StartMessageMoveTask',
      ],
      // Consumes the queue, starts setups, runs plug-ins on hosts (commands and their output).
      worker: [
        ...base,
        'sqs:ChangeMessageVisibility',
        'sqs:DeleteMessage',
        'sqs:ReceiveMessage',
        'states:DescribeExecution',
        'states:StartExecution',
        'logs:GetLogEvents',
        ...ssm,
        ...inventory,
      ],
      // Enqueues re-drives and reconciles the EC2 inventory (describe, terminate orphans).
      sweep: [...base, ...inventory],
      // Runs setup steps on hosts and launches ec2-host instances; never starts an execution.
      setup: [
        ...base,
        'logs:GetLogEvents',
        ...ssm,
        'ssm:GetParameters',
        ...inventory,
        'ec2:CreateTags',
        'ec2:RunInstances',
        'iam:CreateServiceLinkedRole',
        'iam:PassRole',
      ],
    };
    for (const [name, fn] of Object.entries(functions)) {
      const actual = actionsOf(fn);
      const wanted = [...new Set(expected[name as keyof typeof functions])].sort();
      expect(
        actual.filter((a) => !wanted.includes(a)),
        `${name}: granted but not used`,
      ).toEqual([]);
      expect(
        wanted.filter((a) => !actual.includes(a)),
        `${name}: used but not granted`,
      ).toEqual([]);
    }
    // Host actions only where hosts are touched.
    for (const fn of [functions.api]) {
      expect(actionsOf(fn).filter((a) => /^(ec2|ssm):/.test(a))).toEqual([]);
    }
    expect(actionsOf(functions.sweep).filter((a) => a.startsWith('ssm:'))).toEqual([]);
    // Nothing starts an execution but the worker.
    for (const fn of [functions.api, functions.sweep, functions.setup]) {
      expect(actionsOf(fn)).not.toContain('states:StartExecution');
    }
  });

  it('puts a resource policy on the API only when drydock:allowedPrincipals / allowedOrgId is set', () => {
    const restApi = () =>
      Object.values(template.findResources('AWS::ApiGateway::RestApi'))[0]?.Properties;
    expect(restApi()?.Policy).toBeUndefined();

    const withContext = (context: Record<string, string>) => {
      const app = new App({ context: { ...CDK_CONTEXT, ...context } });
      const principals = String(app.node.tryGetContext('drydock:allowedPrincipals') ?? '')
        .split(',')
        .filter(Boolean);
      const orgId = app.node.tryGetContext('drydock:allowedOrgId') as string | undefined;
      const narrowed = new DrydockStack(app, 'Narrowed', {
        handlersDir: FIXTURE_HANDLERS_DIR,
        ...(principals.length ? { allowedPrincipals: principals } : {}),
        ...(orgId ? { allowedOrgId: orgId } : {}),
      });
      const api = Template.fromStack(narrowed).findResources('AWS::ApiGateway::RestApi')[
        logicalId(narrowed.api.restApi)
      ];
      return api?.Properties.Policy;
    };
    const ci = 'arn:aws:iam::123456789012:role/ci';
    const policy = withContext({ 'drydock:allowedPrincipals': ci });
    expect(policy.Statement).toEqual([
      expect.objectContaining({
        Sid: 'DenyEveryoneElse',
        Effect: 'Deny',
        Action: 'execute-api:Invoke',
        Condition: { StringNotEquals: { 'aws:PrincipalArn': [ci] } },
      }),
      expect.objectContaining({
        Sid: 'AllowListedPrincipals',
        Effect: 'Allow',
        Principal: { AWS: ci },
      }),
    ]);
    const org = withContext({ 'drydock:allowedOrgId': 'o-abcdefghij' });
    expect(org.Statement[0].Condition).toEqual({
      StringNotEquals: { 'aws:PrincipalOrgID': 'o-abcdefghij' },
    });
    expect(org.Statement[1]).toMatchObject({
      Sid: 'AllowOrganization',
      Condition: { StringEquals: { 'aws:PrincipalOrgID': 'o-abcdefghij' } },
    });
    expect(() => withContext({ 'drydock:allowedPrincipals': 'not-an-arn' })).toThrow(
      /allowedPrincipals/,
    );
  });
});
