import { describe, expect, it } from 'vitest';
import { DEPLOYMENT_TAG_KEY } from '../../lib/constructs/host-control.ts';
import { arnOf, json, logicalId, ref, resourcesFor, statementsOfRole, synth } from './support.ts';

describe('Lambda functions', () => {
  const { stack, template } = synth({
    adminPrincipals: ['arn:aws:iam::123456789012:role/drydock-admin'],
  });
  const functions = {
    api: stack.apiFunction,
    worker: stack.workerFunction,
    sweep: stack.sweepFunction,
    setup: stack.setupFunction,
  };
  const fnProps = (fn: (typeof functions)['api']) =>
    template.findResources('AWS::Lambda::Function')[logicalId(fn)]?.Properties;

  const table = stack.table.table;
  const queue = stack.workQueue.queue;
  const deadLetterQueue = stack.workQueue.deadLetterQueue;
  const stateMachine = stack.setupWorkflow.stateMachine;

  it('are exactly the four handlers', () => {
    template.resourceCountIs('AWS::Lambda::Function', 4);
  });

  describe.each(Object.entries(functions))('%s', (name, fn) => {
    it('runs Node.js 24 on arm64 with the bundled `handler` export', () => {
      expect(fnProps(fn)).toMatchObject({
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        Handler: 'index.handler',
      });
    });

    it('traces with X-Ray and logs JSON to its own log group, kept a month', () => {
      const logs = stack.node.findChild(`${fn.node.id}Logs`);
      expect(fnProps(fn)).toMatchObject({
        TracingConfig: { Mode: 'Active' },
        LoggingConfig: { LogFormat: 'JSON', ApplicationLogLevel: 'INFO', LogGroup: ref(logs) },
      });
      expect(
        template.findResources('AWS::Logs::LogGroup')[logicalId(logs)]?.Properties.RetentionInDays,
      ).toBe(30);
    });

    it('sets the Powertools environment', () => {
      expect(fnProps(fn)?.Environment.Variables).toMatchObject({
        POWERTOOLS_SERVICE_NAME: `drydock-${name}`,
        LOG_LEVEL: 'INFO',
        NODE_OPTIONS: '--enable-source-maps',
        TABLE_NAME: ref(table),
        QUEUE_URL: ref(queue),
      });
    });

    it('has a role with no managed policies, writing only to its own log group', () => {
      const role = template.findResources('AWS::IAM::Role')[logicalId(fn.role)];
      expect(role?.Properties.ManagedPolicyArns).toBeUndefined();
      const statements = statementsOfRole(template, fn.role);
      const logs = stack.node.findChild(`${fn.node.id}Logs`);
      expect(resourcesFor(statements, 'logs:PutLogEvents')).toEqual([json(arnOf(logs))]);
      expect(resourcesFor(statements, 'logs:CreateLogGroup')).toEqual([]);
    });

    it('reads and writes items on the table and its indexes only', () => {
      const statements = statementsOfRole(template, fn.role);
      const tableAndIndexes = [
        json(arnOf(table)),
        json({ 'Fn::Join': ['', [arnOf(table), '/index/*']] }),
      ].sort();
      for (const action of [
        'dynamodb:GetItem',
        'dynamodb:Query',
        'dynamodb:PutItem',
        'dynamodb:UpdateItem',
        'dynamodb:DeleteItem',
        'dynamodb:ConditionCheckItem',
        'dynamodb:BatchGetItem',
      ]) {
        expect(resourcesFor(statements, action), action).toEqual(tableAndIndexes);
      }
      const dynamodbActions = statements
        .flatMap((s) => s.Action)
        .filter((a) => a.startsWith('dynamodb:'));
      expect(dynamodbActions).not.toContain('dynamodb:*');
      // Issue 15: nothing the store never calls (test/infra/least-privilege.test.ts).
      expect(dynamodbActions).not.toContain('dynamodb:Scan');
      expect(dynamodbActions).not.toContain('dynamodb:BatchWriteItem');
      expect(
        dynamodbActions.filter(
          (a) => /Table$|Backup|Stream|Export|Import/.test(a) && a !== 'dynamodb:DescribeTable',
        ),
      ).toEqual([]);
    });

    it('sends to the work queue only (the api also reads and redrives the dead-letter queue)', () => {
      const statements = statementsOfRole(template, fn.role);
      expect(resourcesFor(statements, 'sqs:SendMessage')).toEqual([json(arnOf(queue))]);
      const sqsResources = statements
        .filter((s) => s.Action.some((a) => a.startsWith('sqs:')))
        .flatMap((s) => s.Resource.map(json));
      expect(new Set(sqsResources)).toEqual(
        new Set(
          name === 'api'
            ? [json(arnOf(queue)), json(arnOf(deadLetterQueue))]
            : [json(arnOf(queue))],
        ),
      );
    });

    it('uses "*" only for X-Ray', () => {
      const starActions = statementsOfRole(template, fn.role)
        // FollowCommands (ssm) and DescribeInstances (ec2) have no resource-level permissions;
        // their own tests (host control here, test/infra/host-fleet.test.ts) pin them.
        .filter(
          (s) =>
            s.Resource.includes('*') && s.Sid !== 'FollowCommands' && s.Sid !== 'DescribeInstances',
        )
        .flatMap((s) => s.Action);
      expect(starActions.sort()).toEqual(['xray:PutTelemetryRecords', 'xray:PutTraceSegments']);
    });
  });

  it('lets only the worker start the setup workflow and see its executions, and nothing else in Step Functions', () => {
    const executions = {
      'Fn::Join': [
        '',
        [
          'arn:',
          { Ref: 'AWS::Partition' },
          ':states:',
          { Ref: 'AWS::Region' },
          ':',
          { Ref: 'AWS::AccountId' },
          ':execution:',
          { 'Fn::GetAtt': [logicalId(stateMachine), 'Name'] },
          ':*',
        ],
      ],
    };
    // Issue 15: only the worker starts setups; the api and the sweep only enqueue updates.
    for (const fn of [functions.worker]) {
      const statements = statementsOfRole(template, fn.role);
      expect(resourcesFor(statements, 'states:StartExecution')).toEqual([json(ref(stateMachine))]);
      // A start whose name is taken asks whether that execution still runs.
      expect(resourcesFor(statements, 'states:DescribeExecution')).toEqual([json(executions)]);
      expect(statements.flatMap((s) => s.Action).filter((a) => a.startsWith('states:'))).toEqual([
        'states:StartExecution',
        'states:DescribeExecution',
      ]);
      expect(fnProps(fn)?.Environment.Variables.SETUP_STATE_MACHINE_ARN).toEqual(ref(stateMachine));
    }
    for (const fn of [functions.setup, functions.api, functions.sweep]) {
      const others = statementsOfRole(template, fn.role);
      expect(others.flatMap((s) => s.Action).filter((a) => a.startsWith('states:'))).toEqual([]);
      expect(fnProps(fn)?.Environment.Variables.SETUP_STATE_MACHINE_ARN).toBeUndefined();
    }
  });

  it('lets only the worker consume the queue, through a batch event source', () => {
    for (const [name, fn] of Object.entries(functions)) {
      const receive = resourcesFor(statementsOfRole(template, fn.role), 'sqs:ReceiveMessage');
      // The api receives from the dead-letter queue only (`drydock dlq`), never the work queue.
      expect(receive, name).toEqual(
        name === 'worker'
          ? [json(arnOf(queue))]
          : name === 'api'
            ? [json(arnOf(deadLetterQueue))]
            : [],
      );
    }
    template.resourceCountIs('AWS::Lambda::EventSourceMapping', 1);
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: ref(functions.worker),
      EventSourceArn: arnOf(queue),
      BatchSize: 10,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 16 },
    });
  });

  it('bounds worker concurrency as configured', () => {
    synth({ workerMaxConcurrency: 40 }).template.hasResourceProperties(
      'AWS::Lambda::EventSourceMapping',
      {
        ScalingConfig: { MaximumConcurrency: 40 },
      },
    );
  });

  it('tells only the api who the admins are', () => {
    expect(fnProps(functions.api)?.Environment.Variables.ADMIN_PRINCIPALS).toBe(
      'arn:aws:iam::123456789012:role/drydock-admin',
    );
    for (const fn of [functions.worker, functions.sweep, functions.setup]) {
      expect(fnProps(fn)?.Environment.Variables.ADMIN_PRINCIPALS).toBeUndefined();
    }
    expect(
      synth().template.findResources('AWS::Lambda::Function')[logicalId(functions.api)]?.Properties
        .Environment.Variables.ADMIN_PRINCIPALS,
    ).toBe('');
  });

  it("keeps the api inside API Gateway's 29 s and the sweep inside its minute", () => {
    expect(fnProps(functions.api)?.Timeout).toBe(29);
    expect(fnProps(functions.sweep)?.Timeout).toBeLessThan(60);
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: ref(functions.sweep),
      MaximumRetryAttempts: 0,
    });
  });

  describe('host control', () => {
    const hostPolicy = stack.hostControl.policy;
    const commandLogs = stack.hostControl.commandLogGroup;
    const policy = () =>
      template.findResources('AWS::IAM::Policy')[logicalId(hostPolicy)]!.Properties;
    const statement = (sid: string) =>
      (policy().PolicyDocument.Statement as { Sid: string }[]).find((s) => s.Sid === sid);
    const tagCondition = (key: string) => ({
      StringEquals: { [`${key}/${DEPLOYMENT_TAG_KEY}`]: 'Drydock' },
    });
    const runsPlugins = (name: string) => name === 'worker' || name === 'setup';

    it('is attached to the functions that run plug-ins (setup, worker), not to the api or the sweep', () => {
      expect(policy().Roles).toEqual([functions.setup, functions.worker].map((fn) => ref(fn.role)));
      for (const [name, fn] of Object.entries(functions)) {
        const variables = fnProps(fn)?.Environment.Variables;
        // The sweep knows the deployment too: it looks for this deployment's orphaned EC2
        // instances (HostFleet), though it sends no commands.
        expect(variables.DRYDOCK_DEPLOYMENT, name).toEqual(
          runsPlugins(name) || name === 'sweep' ? 'Drydock' : undefined,
        );
        expect(variables.DRYDOCK_COMMAND_LOG_GROUP, name).toEqual(
          runsPlugins(name) ? ref(commandLogs) : undefined,
        );
      }
    });

    it('gives each SSM and logs action to setup and worker only', () => {
      for (const [name, fn] of Object.entries(functions)) {
        const actions = statementsOfRole(template, fn.role).flatMap((s) => s.Action);
        for (const action of [
          'ssm:SendCommand',
          'ssm:CancelCommand',
          'ssm:GetCommandInvocation',
          'ssm:DescribeInstanceInformation',
          'logs:GetLogEvents',
        ]) {
          expect(actions.includes(action), `${name} ${action}`).toBe(runsPlugins(name));
        }
        // Nothing searches command output across streams; only GetLogEvents is called.
        expect(actions.includes('logs:FilterLogEvents'), `${name} logs:FilterLogEvents`).toBe(
          false,
        );
      }
    });

    it("grants nothing on EC2: static hosts are the operator's, never launched or terminated here", () => {
      const actions = (
        policy().PolicyDocument.Statement as { Action: string | string[] }[]
      ).flatMap((s) => [s.Action].flat());
      expect(actions.filter((a) => a.startsWith('ec2:'))).toEqual([]);
      // EC2 comes only from HostFleet (ec2-host blueprints; test/infra/host-fleet.test.ts):
      // launching to setup, seeing and terminating to setup, worker and sweep, none to the api.
      const inventory = ['ec2:DescribeInstances', 'ec2:TerminateInstances'];
      // RunInstances only: the ec2-host plug-in never calls CreateFleet.
      const launch = ['ec2:CreateTags', 'ec2:RunInstances'];
      const expected: Record<string, string[]> = {
        api: [],
        worker: inventory,
        sweep: inventory,
        setup: [...inventory, ...launch].sort(),
      };
      for (const [name, fn] of Object.entries(functions)) {
        const all = statementsOfRole(template, fn.role).flatMap((s) => s.Action);
        expect([...new Set(all.filter((a) => a.startsWith('ec2:')))].sort(), name).toEqual(
          expected[name],
        );
      }
    });

    it('sends commands only to tagged hosts, with the shell document', () => {
      expect(statement('SendCommandsToOwnHosts')).toMatchObject({
        Action: 'ssm:SendCommand',
        Condition: tagCondition('ssm:resourceTag'),
      });
      expect(json(statement('SendCommandsToOwnHosts'))).toMatch(
        /:instance\/\*.*:managed-instance\/\*/,
      );
      expect(json(statement('SendCommandDocuments'))).toContain('::document/AWS-RunShellScript');
      expect(statement('SendCommandDocuments')).not.toHaveProperty('Condition');
      const sendCommand = (
        policy().PolicyDocument.Statement as { Action: string | string[]; Sid: string }[]
      ).filter((s) => [s.Action].flat().includes('ssm:SendCommand'));
      expect(sendCommand.map((s) => s.Sid).sort()).toEqual([
        'SendCommandDocuments',
        'SendCommandsToOwnHosts',
      ]);
    });

    it('reads command output from its own log group only, kept a month', () => {
      expect(statement('ReadCommandOutput')).toEqual({
        Sid: 'ReadCommandOutput',
        Effect: 'Allow',
        Action: 'logs:GetLogEvents',
        Resource: arnOf(commandLogs),
      });
      const group = template.findResources('AWS::Logs::LogGroup')[logicalId(commandLogs)];
      expect(group?.Properties).toEqual({
        LogGroupName: '/drydock/Drydock/commands',
        RetentionInDays: 30,
      });
      // Its name is fixed: a retained group would make a redeploy after a delete fail.
      expect(group).toMatchObject({ DeletionPolicy: 'Delete', UpdateReplacePolicy: 'Delete' });
      template.hasOutput('CommandLogGroupName', { Value: ref(commandLogs) });
    });

    it('uses "*" only for the actions without resource-level permissions', () => {
      const star = (
        policy().PolicyDocument.Statement as { Resource: unknown; Action: string[] }[]
      ).filter((s) => s.Resource === '*');
      expect(star.map((s) => s.Action)).toEqual([
        [
          'ssm:CancelCommand',
          'ssm:DescribeInstanceInformation',
          'ssm:GetCommandInvocation',
          'ssm:ListCommands',
        ],
      ]);
    });

    it('follows the stack name', () => {
      const renamed = synth({ stackName: 'DrydockStaging' });
      const statements =
        renamed.template.findResources('AWS::IAM::Policy')[
          logicalId(renamed.stack.hostControl.policy)
        ]?.Properties.PolicyDocument.Statement;
      expect(json(statements)).toContain(
        `"ssm:resourceTag/${DEPLOYMENT_TAG_KEY}":"DrydockStaging"`,
      );
      expect(
        renamed.template.findResources('AWS::Logs::LogGroup')[
          logicalId(renamed.stack.hostControl.commandLogGroup)
        ]?.Properties.LogGroupName,
      ).toBe('/drydock/DrydockStaging/commands');
    });
  });
});
