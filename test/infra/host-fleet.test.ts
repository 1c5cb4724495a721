import { describe, expect, it } from 'vitest';
import { DEPLOYMENT_TAG_KEY } from '../../lib/constructs/host-control.ts';
import { ec2Arn, ec2ArnOf, type PolicyStatement, pseudo, sorted } from './ec2-support.ts';
import { arnOf, json, logicalId, ref, resourcesFor, statementsOfRole, synth } from './support.ts';

describe('HostFleet (ec2-host blueprints)', () => {
  const { stack, template } = synth();
  const fleet = stack.hostFleet!;
  const functions = {
    api: stack.apiFunction,
    worker: stack.workerFunction,
    sweep: stack.sweepFunction,
    setup: stack.setupFunction,
  };
  const policy = (construct: typeof fleet.launchPolicy) =>
    template.findResources('AWS::IAM::Policy')[logicalId(construct)]?.Properties;
  const statementsOf = (construct: typeof fleet.launchPolicy): PolicyStatement[] =>
    policy(construct)?.PolicyDocument.Statement;
  const launch = (sid: string) =>
    sorted(statementsOf(fleet.launchPolicy).find((s) => s.Sid === sid));

  const subnets = fleet.network.vpc?.isolatedSubnets ?? [];
  const subnetArns = subnets.map((s) => ec2ArnOf('subnet', ref(s)));
  const vpcArn = ec2ArnOf('vpc', ref(fleet.network.vpc!));
  const launchActions = ['ec2:RunInstances', 'ec2:CreateFleet'];
  const requestTag = { StringEquals: { [`aws:RequestTag/${DEPLOYMENT_TAG_KEY}`]: 'Drydock' } };
  const resourceTag = { StringEquals: { [`aws:ResourceTag/${DEPLOYMENT_TAG_KEY}`]: 'Drydock' } };

  describe('IAM', () => {
    it('lets only setup launch, and setup, worker and sweep see and terminate; never the api', () => {
      expect(policy(fleet.launchPolicy)?.Roles).toEqual([ref(functions.setup.role)]);
      expect(policy(fleet.inventoryPolicy)?.Roles).toEqual(
        [functions.setup, functions.worker, functions.sweep].map((fn) => ref(fn.role)),
      );
      expect(statementsOfRole(template, functions.api.role).flatMap((s) => s.Action)).not.toEqual(
        expect.arrayContaining([expect.stringMatching(/^(ec2|iam):/)]),
      );
    });

    it('has exactly these launch statements', () => {
      expect(statementsOf(fleet.launchPolicy).map((s) => s.Sid)).toEqual([
        'LaunchTaggedInstances',
        'TagOnlyWhileLaunching',
        'LaunchIntoPoolSubnets',
        'LaunchWithPoolNetworkInterfaces',
        'LaunchWithPoolVpcSecurityGroups',
        'LaunchWithTaggedTemplatesAndKeys',
        'LaunchFromImages',
        'SpotRequestsOfLaunches',
        'PassInstanceRoleToEc2',
        'CreateSpotServiceLinkedRole',
      ]);
      for (const statement of statementsOf(fleet.launchPolicy)) {
        expect(statement.Effect, statement.Sid).toBe('Allow');
        expect([statement.Resource].flat(), statement.Sid).not.toContain('*');
      }
    });

    it('launches instances and volumes (and fleets) only with the deployment tag in the request', () => {
      expect(launch('LaunchTaggedInstances')).toEqual(
        sorted({
          Sid: 'LaunchTaggedInstances',
          Effect: 'Allow',
          Action: launchActions,
          Resource: [ec2Arn('instance/*'), ec2Arn('volume/*'), ec2Arn('fleet/*')],
          Condition: requestTag,
        }),
      );
    });

    it('tags only inside a RunInstances or CreateFleet call, and only with the deployment tag', () => {
      expect(launch('TagOnlyWhileLaunching')).toEqual(
        sorted({
          Sid: 'TagOnlyWhileLaunching',
          Effect: 'Allow',
          Action: 'ec2:CreateTags',
          Resource: [
            ec2Arn('instance/*'),
            ec2Arn('volume/*'),
            ec2Arn('fleet/*'),
            ec2Arn('spot-instances-request/*'),
          ],
          Condition: {
            StringEquals: {
              'ec2:CreateAction': ['RunInstances', 'CreateFleet'],
              [`aws:RequestTag/${DEPLOYMENT_TAG_KEY}`]: 'Drydock',
            },
          },
        }),
      );
      // CreateTags appears nowhere else: no tagging of existing resources.
      for (const fn of Object.values(functions)) {
        const tagging = statementsOfRole(template, fn.role).filter((s) =>
          s.Action.includes('ec2:CreateTags'),
        );
        expect(tagging.every((s) => s.Sid === 'TagOnlyWhileLaunching')).toBe(true);
      }
    });

    it("launches only into the pool's subnets, with interfaces there and security groups of its VPC", () => {
      expect(subnetArns).toHaveLength(2);
      expect(launch('LaunchIntoPoolSubnets')).toEqual(
        sorted({
          Sid: 'LaunchIntoPoolSubnets',
          Effect: 'Allow',
          Action: launchActions,
          Resource: subnetArns,
        }),
      );
      expect(launch('LaunchWithPoolNetworkInterfaces')).toEqual(
        sorted({
          Sid: 'LaunchWithPoolNetworkInterfaces',
          Effect: 'Allow',
          Action: launchActions,
          Resource: ec2Arn('network-interface/*'),
          Condition: { StringEquals: { 'ec2:Subnet': subnetArns } },
        }),
      );
      expect(launch('LaunchWithPoolVpcSecurityGroups')).toEqual(
        sorted({
          Sid: 'LaunchWithPoolVpcSecurityGroups',
          Effect: 'Allow',
          Action: launchActions,
          Resource: ec2Arn('security-group/*'),
          Condition: { StringEquals: { 'ec2:Vpc': vpcArn } },
        }),
      );
    });

    it('uses only launch templates and key pairs the operator tagged for this deployment', () => {
      expect(launch('LaunchWithTaggedTemplatesAndKeys')).toEqual(
        sorted({
          Sid: 'LaunchWithTaggedTemplatesAndKeys',
          Effect: 'Allow',
          Action: launchActions,
          Resource: [ec2Arn('launch-template/*'), ec2Arn('key-pair/*')],
          Condition: resourceTag,
        }),
      );
    });

    it('reads any visible AMI and its snapshots, and makes spot requests only as part of a launch', () => {
      expect(launch('LaunchFromImages')).toEqual(
        sorted({
          Sid: 'LaunchFromImages',
          Effect: 'Allow',
          Action: launchActions,
          Resource: [
            ec2Arn('image/*', { account: false }),
            ec2Arn('snapshot/*', { account: false }),
          ],
        }),
      );
      expect(launch('SpotRequestsOfLaunches')).toEqual(
        sorted({
          Sid: 'SpotRequestsOfLaunches',
          Effect: 'Allow',
          Action: launchActions,
          Resource: ec2Arn('spot-instances-request/*'),
        }),
      );
    });

    it('passes only the instance role, and only to EC2', () => {
      expect(launch('PassInstanceRoleToEc2')).toEqual(
        sorted({
          Sid: 'PassInstanceRoleToEc2',
          Effect: 'Allow',
          Action: 'iam:PassRole',
          Resource: arnOf(fleet.instanceRole),
          Condition: { StringEquals: { 'iam:PassedToService': 'ec2.amazonaws.com' } },
        }),
      );
      for (const [name, fn] of Object.entries(functions)) {
        expect(resourcesFor(statementsOfRole(template, fn.role), 'iam:PassRole'), name).toEqual(
          name === 'setup' ? [json(arnOf(fleet.instanceRole))] : [],
        );
      }
    });

    it("may create EC2's spot service-linked role, and no other role", () => {
      expect(launch('CreateSpotServiceLinkedRole')).toEqual(
        sorted({
          Sid: 'CreateSpotServiceLinkedRole',
          Effect: 'Allow',
          Action: 'iam:CreateServiceLinkedRole',
          Resource: {
            'Fn::Join': [
              '',
              [
                'arn:',
                pseudo('Partition'),
                ':iam::',
                pseudo('AccountId'),
                ':role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot',
              ],
            ],
          },
          Condition: { StringEquals: { 'iam:AWSServiceName': 'spot.amazonaws.com' } },
        }),
      );
    });

    it('describes instances (no resource-level permissions) and terminates only its own', () => {
      expect(statementsOf(fleet.inventoryPolicy)).toEqual([
        {
          Sid: 'DescribeInstances',
          Effect: 'Allow',
          Action: 'ec2:DescribeInstances',
          Resource: '*',
        },
        {
          Sid: 'TerminateOwnInstances',
          Effect: 'Allow',
          Action: 'ec2:TerminateInstances',
          Resource: ec2Arn('instance/*'),
          Condition: resourceTag,
        },
      ]);
    });

    it('tells the functions that run the plug-in the deployment and the instance profile', () => {
      for (const [name, fn] of Object.entries(functions)) {
        const variables =
          template.findResources('AWS::Lambda::Function')[logicalId(fn)]?.Properties.Environment
            .Variables;
        const runsEc2 = name !== 'api';
        expect(variables.DRYDOCK_INSTANCE_PROFILE_ARN, name).toEqual(
          runsEc2 ? arnOf(fleet.instanceProfile) : undefined,
        );
        expect(variables.DRYDOCK_DEPLOYMENT, name).toEqual(runsEc2 ? 'Drydock' : undefined);
      }
    });

    it('follows the stack name in every tag condition', () => {
      const renamed = synth({ stackName: 'DrydockStaging' });
      const renamedFleet = renamed.stack.hostFleet!;
      const documents = [renamedFleet.launchPolicy, renamedFleet.inventoryPolicy]
        .map((p) => renamed.template.findResources('AWS::IAM::Policy')[logicalId(p)])
        .map((p) => json(p?.Properties.PolicyDocument));
      const [launchDocument, inventoryDocument] = documents;
      expect(launchDocument).toContain(`"aws:RequestTag/${DEPLOYMENT_TAG_KEY}":"DrydockStaging"`);
      expect(launchDocument).toContain(`"aws:ResourceTag/${DEPLOYMENT_TAG_KEY}":"DrydockStaging"`);
      expect(inventoryDocument).toContain(
        `"aws:ResourceTag/${DEPLOYMENT_TAG_KEY}":"DrydockStaging"`,
      );
      for (const document of documents) {
        expect(document).not.toContain(`/${DEPLOYMENT_TAG_KEY}":"Drydock"`);
      }
    });
  });

  describe('instance role and profile', () => {
    it('is assumed by EC2, with the SSM core policy and writing command output only', () => {
      const role = template.findResources('AWS::IAM::Role')[logicalId(fleet.instanceRole)];
      expect(role?.Properties.AssumeRolePolicyDocument.Statement).toEqual([
        {
          Effect: 'Allow',
          Principal: { Service: 'ec2.amazonaws.com' },
          Action: 'sts:AssumeRole',
        },
      ]);
      expect(role?.Properties.ManagedPolicyArns).toEqual([
        {
          'Fn::Join': [
            '',
            ['arn:', pseudo('Partition'), ':iam::aws:policy/AmazonSSMManagedInstanceCore'],
          ],
        },
      ]);
      const statements = statementsOfRole(template, fleet.instanceRole);
      expect(statements.map((s) => s.Sid)).toEqual(['WriteCommandOutput', 'FindCommandLogGroup']);
      expect(resourcesFor(statements, 'logs:PutLogEvents')).toEqual([
        json(arnOf(stack.hostControl.commandLogGroup)),
      ]);
      template.hasResourceProperties('AWS::IAM::InstanceProfile', {
        Roles: [ref(fleet.instanceRole)],
      });
      template.hasOutput('HostInstanceProfileArn', { Value: arnOf(fleet.instanceProfile) });
    });
  });

  it('is left out entirely with ec2Hosts: false (static hosts only: no hourly endpoint bill)', () => {
    const without = synth({ ec2Hosts: false });
    expect(without.stack.hostFleet).toBeUndefined();
    for (const type of [
      'AWS::EC2::VPC',
      'AWS::EC2::VPCEndpoint',
      'AWS::EC2::SecurityGroup',
      'AWS::IAM::InstanceProfile',
    ]) {
      without.template.resourceCountIs(type, 0);
    }
    const outputs = Object.keys(without.template.findOutputs('*'));
    expect(outputs.filter((o) => o.startsWith('Host'))).toEqual([]);
    for (const fn of [
      without.stack.apiFunction,
      without.stack.workerFunction,
      without.stack.sweepFunction,
      without.stack.setupFunction,
    ]) {
      const actions = statementsOfRole(without.template, fn.role).flatMap((s) => s.Action);
      expect(actions.filter((a) => a.startsWith('ec2:') || a.startsWith('iam:'))).toEqual([]);
      const variables =
        without.template.findResources('AWS::Lambda::Function')[logicalId(fn)]?.Properties
          .Environment.Variables;
      expect(variables.DRYDOCK_INSTANCE_PROFILE_ARN).toBeUndefined();
    }
  });
});
