import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { DEPLOYMENT_TAG_KEY } from '../../lib/constructs/host-control.ts';
import { HOST_INTERFACE_ENDPOINTS } from '../../lib/constructs/host-network.ts';
import {
  arnOf,
  CDK_CONTEXT,
  json,
  logicalId,
  newStack,
  ref,
  resourcesFor,
  statementsOfRole,
  synth,
} from './support.ts';

interface PolicyStatement {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}

const pseudo = (name: string) => ({ Ref: `AWS::${name}` });

/** CDK sorts a statement's actions and resources; compare them as sets. */
function sorted(statement: PolicyStatement | undefined): PolicyStatement | undefined {
  if (!statement) return statement;
  const sortJson = (value: unknown) =>
    Array.isArray(value) ? [...value].sort((a, b) => json(a).localeCompare(json(b))) : value;
  return {
    ...statement,
    Action: sortJson(statement.Action) as string | string[],
    Resource: sortJson(statement.Resource),
  };
}

/** `arn:<partition>:ec2:<region>:<account>:<resource>` as CDK's formatArn renders it. */
function ec2Arn(resource: string, { account = true } = {}): unknown {
  return {
    'Fn::Join': [
      '',
      [
        'arn:',
        pseudo('Partition'),
        ':ec2:',
        pseudo('Region'),
        ...(account ? [':', pseudo('AccountId'), `:${resource}`] : [`::${resource}`]),
      ],
    ],
  };
}

function ec2ArnOf(resource: string, id: unknown): unknown {
  return {
    'Fn::Join': [
      '',
      [
        'arn:',
        pseudo('Partition'),
        ':ec2:',
        pseudo('Region'),
        ':',
        pseudo('AccountId'),
        `:${resource}/`,
        id,
      ],
    ],
  };
}

/** A stack synthesized with extra CDK context (the bring-your-own-VPC keys). */
function synthWithContext(context: Record<string, unknown>) {
  const app = new App({
    context: { ...CDK_CONTEXT, 'aws:cdk:bundling-stacks': [], ...context },
  });
  const stack = newStack({}, app);
  return { stack, template: Template.fromStack(stack) };
}

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
            ec2Arn('spot-instances-request/*'),
          ],
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

  describe('created VPC', () => {
    it('has private isolated subnets only: no internet gateway, no NAT', () => {
      template.resourceCountIs('AWS::EC2::VPC', 1);
      template.resourceCountIs('AWS::EC2::Subnet', 2);
      template.resourceCountIs('AWS::EC2::InternetGateway', 0);
      template.resourceCountIs('AWS::EC2::NatGateway', 0);
      for (const subnet of Object.values(template.findResources('AWS::EC2::Subnet'))) {
        expect(subnet.Properties.MapPublicIpOnLaunch).toBe(false);
      }
      template.hasOutput('HostSubnetIds', {
        Value: { 'Fn::Join': [',', subnets.map((s) => ref(s))] },
      });
    });

    it('has the SSM, SSM messages, EC2 messages and CloudWatch Logs endpoints, open to the hosts only', () => {
      expect([...HOST_INTERFACE_ENDPOINTS]).toEqual(['ssm', 'ssmmessages', 'ec2messages', 'logs']);
      const endpoints = Object.values(template.findResources('AWS::EC2::VPCEndpoint'));
      const interfaces = endpoints.filter((e) => e.Properties.VpcEndpointType === 'Interface');
      const services = interfaces.map((e) => json(e.Properties.ServiceName));
      expect(services).toHaveLength(4);
      for (const service of HOST_INTERFACE_ENDPOINTS) {
        expect(
          services.filter((s) => s.endsWith(`.${service}"]]}`)),
          service,
        ).toHaveLength(1);
      }
      for (const endpoint of interfaces) {
        expect(endpoint.Properties).toMatchObject({
          PrivateDnsEnabled: true,
          VpcId: ref(fleet.network.vpc!),
          SubnetIds: subnets.map((s) => ref(s)),
          SecurityGroupIds: [
            { 'Fn::GetAtt': [logicalId(fleet.network.endpointSecurityGroup!), 'GroupId'] },
          ],
        });
      }
      // No `ec2` endpoint: the hosts never call the EC2 API.
      expect(services.some((s) => s.endsWith('.ec2"]]}'))).toBe(false);
      // S3 as a (free) gateway endpoint: agent updates and Amazon Linux package repositories.
      const gateways = endpoints.filter((e) => e.Properties.VpcEndpointType === 'Gateway');
      expect(gateways.map((e) => json(e.Properties.ServiceName))).toEqual([
        expect.stringMatching(/\.s3"\]\]\}$/),
      ]);
    });

    it('admits HTTPS to the endpoints from the hosts security group only', () => {
      const endpointGroup =
        template.findResources('AWS::EC2::SecurityGroup')[
          logicalId(fleet.network.endpointSecurityGroup!)
        ];
      expect(endpointGroup?.Properties.SecurityGroupIngress).toBeUndefined();
      const ingress = Object.values(template.findResources('AWS::EC2::SecurityGroupIngress'));
      expect(ingress.map((i) => i.Properties)).toEqual([
        {
          IpProtocol: 'tcp',
          FromPort: 443,
          ToPort: 443,
          Description: 'HTTPS from Drydock hosts',
          GroupId: { 'Fn::GetAtt': [logicalId(fleet.network.endpointSecurityGroup!), 'GroupId'] },
          SourceSecurityGroupId: {
            'Fn::GetAtt': [logicalId(fleet.network.securityGroup), 'GroupId'],
          },
        },
      ]);
    });

    it('logs rejected traffic, kept a month', () => {
      template.hasResourceProperties('AWS::EC2::FlowLog', {
        ResourceId: ref(fleet.network.vpc!),
        TrafficType: 'REJECT',
      });
    });
  });

  it('gives the hosts a security group with no inbound rules', () => {
    const group =
      template.findResources('AWS::EC2::SecurityGroup')[logicalId(fleet.network.securityGroup)];
    expect(group?.Properties.SecurityGroupIngress).toBeUndefined();
    expect(group?.Properties.VpcId).toEqual(ref(fleet.network.vpc!));
    const hostGroup = { 'Fn::GetAtt': [logicalId(fleet.network.securityGroup), 'GroupId'] };
    for (const rule of Object.values(template.findResources('AWS::EC2::SecurityGroupIngress'))) {
      expect(rule.Properties.GroupId).not.toEqual(hostGroup);
    }
    template.hasOutput('HostSecurityGroupId', { Value: hostGroup });
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

  describe('bring your own VPC (context drydock:vpcId, drydock:subnetIds)', () => {
    const own = synthWithContext({
      'drydock:vpcId': 'vpc-0123456789abcdef0',
      'drydock:subnetIds': 'subnet-0aaaaaaaaaaaaaaaa, subnet-0bbbbbbbbbbbbbbbb',
    });
    const ownLaunch = (sid: string) => {
      const ownPolicy =
        own.template.findResources('AWS::IAM::Policy')[
          logicalId(own.stack.hostFleet!.launchPolicy)
        ];
      const statements: PolicyStatement[] = ownPolicy?.Properties.PolicyDocument.Statement ?? [];
      return statements.find((s) => s.Sid === sid);
    };

    it('creates no VPC and no endpoints, and puts the hosts group in that VPC', () => {
      own.template.resourceCountIs('AWS::EC2::VPC', 0);
      own.template.resourceCountIs('AWS::EC2::VPCEndpoint', 0);
      own.template.resourceCountIs('AWS::EC2::SecurityGroup', 1);
      own.template.hasResourceProperties('AWS::EC2::SecurityGroup', {
        VpcId: 'vpc-0123456789abcdef0',
      });
      expect(
        own.template.findResources('AWS::EC2::SecurityGroup')[
          logicalId(own.stack.hostFleet!.network.securityGroup)
        ]?.Properties.SecurityGroupIngress,
      ).toBeUndefined();
      own.template.hasOutput('HostSubnetIds', {
        Value: 'subnet-0aaaaaaaaaaaaaaaa,subnet-0bbbbbbbbbbbbbbbb',
      });
    });

    it('scopes launches to exactly those subnets and that VPC', () => {
      const ids = ['subnet-0aaaaaaaaaaaaaaaa', 'subnet-0bbbbbbbbbbbbbbbb'];
      expect(ownLaunch('LaunchIntoPoolSubnets')?.Resource).toEqual(
        ids.map((id) => ec2Arn(`subnet/${id}`)),
      );
      expect(ownLaunch('LaunchWithPoolNetworkInterfaces')?.Condition).toEqual({
        StringEquals: { 'ec2:Subnet': ids.map((id) => ec2Arn(`subnet/${id}`)) },
      });
      expect(ownLaunch('LaunchWithPoolVpcSecurityGroups')?.Condition).toEqual({
        StringEquals: { 'ec2:Vpc': ec2Arn('vpc/vpc-0123456789abcdef0') },
      });
    });

    it('takes the subnets as a list too (cdk.json)', () => {
      const listed = synthWithContext({
        'drydock:vpcId': 'vpc-0123456789abcdef0',
        'drydock:subnetIds': ['subnet-0aaaaaaaaaaaaaaaa'],
      });
      listed.template.hasOutput('HostSubnetIds', { Value: 'subnet-0aaaaaaaaaaaaaaaa' });
    });

    it('refuses half a configuration or malformed ids, naming the context key', () => {
      expect(() => synthWithContext({ 'drydock:vpcId': 'vpc-0123456789abcdef0' })).toThrow(
        /context drydock:subnetIds must be subnet ids/,
      );
      expect(() => synthWithContext({ 'drydock:subnetIds': 'subnet-0aaaaaaaaaaaaaaaa' })).toThrow(
        /context drydock:vpcId must be a VPC id/,
      );
      expect(() =>
        synthWithContext({
          'drydock:vpcId': 'vpc-0123456789abcdef0',
          'drydock:subnetIds': 'subnet-0aaaaaaaaaaaaaaaa,sg-0123456789abcdef0',
        }),
      ).toThrow(/drydock:subnetIds must be subnet ids/);
    });
  });
});
