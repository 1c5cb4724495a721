import { describe, expect, it } from 'vitest';
import { HOST_INTERFACE_ENDPOINTS } from '../../lib/constructs/host-network.ts';
import { ec2Arn, type PolicyStatement, synthWithContext } from './ec2-support.ts';
import { json, logicalId, ref, synth } from './support.ts';

describe('HostNetwork (where ec2-host instances live)', () => {
  const { stack, template } = synth();
  const fleet = stack.hostFleet!;
  const subnets = fleet.network.vpc?.isolatedSubnets ?? [];

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
