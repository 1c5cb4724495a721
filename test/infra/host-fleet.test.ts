import { describe, expect, it } from 'vitest';
import {
  DEFAULT_IMAGE,
  DEFAULT_IMAGE_PARAMETER,
  ec2HostConfigSchema,
} from '../../lambdas/blueprints/ec2-host/config.ts';
import { runInstancesInput } from '../../lambdas/blueprints/ec2-host/launch.ts';
import { DEPLOYMENT_TAG_KEY } from '../../lib/constructs/host-control.ts';
import { TAGGED_AT_LAUNCH } from '../../lib/constructs/host-fleet.ts';
import {
  ec2Arn,
  ec2ArnOf,
  type PolicyStatement,
  pseudo,
  sorted,
  synthWithContext,
} from './ec2-support.ts';
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
  // RunInstances only: the plug-in never calls CreateFleet (lambdas/blueprints/ec2-host/launch.ts).
  const launchActions = 'ec2:RunInstances';
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
        'ResolveDefaultImage',
        'PassInstanceRoleToEc2',
        'CreateSpotServiceLinkedRole',
      ]);
      for (const statement of statementsOf(fleet.launchPolicy)) {
        expect(statement.Effect, statement.Sid).toBe('Allow');
        expect([statement.Resource].flat(), statement.Sid).not.toContain('*');
      }
    });

    it('launches instances and volumes only with the deployment tag in the request; never CreateFleet', () => {
      expect(launch('LaunchTaggedInstances')).toEqual(
        sorted({
          Sid: 'LaunchTaggedInstances',
          Effect: 'Allow',
          Action: launchActions,
          Resource: [ec2Arn('instance/*'), ec2Arn('volume/*')],
          Condition: requestTag,
        }),
      );
      for (const fn of Object.values(functions)) {
        const actions = statementsOfRole(template, fn.role).flatMap((s) => s.Action);
        expect(actions).not.toContain('ec2:CreateFleet');
      }
    });

    it('tags what RunInstances creates and the plug-in tags (instance, volume, network interface) only inside that call, and only with the deployment tag', () => {
      expect(launch('TagOnlyWhileLaunching')).toEqual(
        sorted({
          Sid: 'TagOnlyWhileLaunching',
          Effect: 'Allow',
          Action: 'ec2:CreateTags',
          Resource: [ec2Arn('instance/*'), ec2Arn('network-interface/*'), ec2Arn('volume/*')],
          Condition: {
            StringEquals: {
              'ec2:CreateAction': ['RunInstances'],
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

    it("covers every resource type the plug-in's RunInstances tags in TagSpecifications", () => {
      const input = runInstancesInput(
        { id: 'bp', config: ec2HostConfigSchema.parse({}), limits: {} } as never,
        'r-1',
        { market: 'spot', instanceType: 'm7i.large', subnetId: 'subnet-0aaa' },
        0,
        {
          DRYDOCK_INSTANCE_PROFILE_ARN: 'arn:aws:iam::1:instance-profile/p',
          DRYDOCK_DEPLOYMENT: 'Drydock',
        },
      );
      const taggedTypes = (input.TagSpecifications ?? []).map((t) => t.ResourceType);
      expect(taggedTypes).toEqual([...TAGGED_AT_LAUNCH]);
      const tagging = launch('TagOnlyWhileLaunching');
      for (const type of taggedTypes) {
        expect(tagging?.Resource, type).toContainEqual(ec2Arn(`${type}/*`));
      }
      // Each tag specification carries the deployment tag the request-tag conditions ask for.
      for (const spec of input.TagSpecifications ?? []) {
        expect(spec.Tags, spec.ResourceType).toContainEqual({
          Key: DEPLOYMENT_TAG_KEY,
          Value: 'Drydock',
        });
      }
    });

    it("may read exactly the default AMI's public SSM parameter (imageId resolve:ssm:…), from setup only", () => {
      expect(DEFAULT_IMAGE).toBe(`resolve:ssm:${DEFAULT_IMAGE_PARAMETER}`);
      expect(launch('ResolveDefaultImage')).toEqual({
        Sid: 'ResolveDefaultImage',
        Effect: 'Allow',
        Action: 'ssm:GetParameters',
        Resource: {
          'Fn::Join': [
            '',
            [
              'arn:',
              pseudo('Partition'),
              ':ssm:',
              pseudo('Region'),
              `::parameter${DEFAULT_IMAGE_PARAMETER}`,
            ],
          ],
        },
      });
      for (const [name, fn] of Object.entries(functions)) {
        const reads = resourcesFor(statementsOfRole(template, fn.role), 'ssm:GetParameters');
        expect(reads.length, name).toBe(name === 'setup' ? 1 : 0);
      }
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

    it("tells them the host network's subnets and the hosts' security group (the plug-in's defaults)", () => {
      for (const [name, fn] of Object.entries(functions)) {
        const variables =
          template.findResources('AWS::Lambda::Function')[logicalId(fn)]?.Properties.Environment
            .Variables;
        const runsEc2 = name !== 'api';
        expect(variables.DRYDOCK_SUBNET_IDS, name).toEqual(
          runsEc2 ? { 'Fn::Join': [',', subnets.map((s) => ref(s))] } : undefined,
        );
        expect(variables.DRYDOCK_SECURITY_GROUP_IDS, name).toEqual(
          runsEc2
            ? { 'Fn::GetAtt': [logicalId(fleet.network.securityGroup), 'GroupId'] }
            : undefined,
        );
      }
      // The operator's VPC: its subnets, as given.
      const byo = synthWithContext({
        'drydock:vpcId': 'vpc-0123456789abcdef0',
        'drydock:subnetIds': 'subnet-0aaaaaaaa,subnet-0bbbbbbbb',
      });
      const setupVariables =
        byo.template.findResources('AWS::Lambda::Function')[logicalId(byo.stack.setupFunction)]
          ?.Properties.Environment.Variables;
      expect(setupVariables.DRYDOCK_SUBNET_IDS).toBe('subnet-0aaaaaaaa,subnet-0bbbbbbbb');
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
