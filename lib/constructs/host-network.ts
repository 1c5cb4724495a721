import { Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { invalidProp } from './validate.ts';

/** The CDK context keys that name an operator's own VPC for the hosts (README "Spot hosts"). */
export const VPC_CONTEXT_KEYS = { vpcId: 'drydock:vpcId', subnetIds: 'drydock:subnetIds' } as const;

/**
 * Interface endpoints the created VPC gets, and why: with no NAT, these are the only way out.
 * - ssm, ssmmessages, ec2messages: the SSM agent registers, takes Run Command commands and
 *   reports their results (the three endpoints the SSM docs list for private subnets).
 * - logs: Run Command writes command output to CloudWatch Logs from the instance itself
 *   (CloudWatchOutputConfig), and the plug-ins read output beyond SSM's first 24,000
 *   characters only from there; without it a long build log would be cut.
 * Not `ec2`: the hosts never call the EC2 API; Drydock's functions do, from outside the VPC.
 */
export const HOST_INTERFACE_ENDPOINTS = ['ssm', 'ssmmessages', 'ec2messages', 'logs'] as const;

const VPC_ID = /^vpc-[0-9a-f]{8,17}$/;
const SUBNET_ID = /^subnet-[0-9a-f]{8,17}$/;

/** The operator's VPC, as the context gives it. */
export interface ExistingVpc {
  readonly vpcId: string;
  /** One per Availability Zone the hosts may use. */
  readonly subnetIds: string[];
}

export interface HostNetworkProps {
  /**
   * Put the hosts in this VPC and these subnets: Drydock then creates no VPC and no endpoints,
   * and the subnets must already reach SSM (a NAT gateway or the endpoints above).
   *
   * @default - a VPC created for the hosts (private isolated subnets, the endpoints above)
   */
  readonly existing?: ExistingVpc;

  /** Availability Zones of the created VPC (one subnet each). @default 2 */
  readonly maxAzs?: number;

  /** Retention of the created VPC's flow log (rejected traffic). @default ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
}

/** Reads `drydock:vpcId` / `drydock:subnetIds` from the context: both, or neither. */
export function existingVpcFromContext(scope: Construct): ExistingVpc | undefined {
  const vpcId: unknown = scope.node.tryGetContext(VPC_CONTEXT_KEYS.vpcId);
  const rawSubnets: unknown = scope.node.tryGetContext(VPC_CONTEXT_KEYS.subnetIds);
  if (vpcId === undefined && rawSubnets === undefined) return undefined;
  // `cdk deploy -c drydock:subnetIds=subnet-a,subnet-b` gives a string; cdk.json may give a list.
  const subnetIds =
    typeof rawSubnets === 'string'
      ? rawSubnets
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : rawSubnets;
  if (typeof vpcId !== 'string' || !VPC_ID.test(vpcId)) {
    throw invalidProp(
      scope,
      `context ${VPC_CONTEXT_KEYS.vpcId}`,
      `a VPC id (vpc-…) given together with ${VPC_CONTEXT_KEYS.subnetIds}`,
      vpcId ?? null,
    );
  }
  if (
    !Array.isArray(subnetIds) ||
    subnetIds.length === 0 ||
    !subnetIds.every((s) => typeof s === 'string' && SUBNET_ID.test(s))
  ) {
    throw invalidProp(
      scope,
      `context ${VPC_CONTEXT_KEYS.subnetIds}`,
      `subnet ids (subnet-…, comma-separated or a list) of ${vpcId}, one per Availability Zone`,
      rawSubnets ?? null,
    );
  }
  return { vpcId, subnetIds: [...new Set(subnetIds as string[])] };
}

/**
 * Where the hosts live: a VPC (the operator's, or a small one made here), the subnets they
 * launch into, and the hosts' security group, which admits nothing: every conversation is
 * started by the host (SSM agent to the SSM endpoints), so there is no port to open.
 *
 * The created VPC has private isolated subnets only (no internet gateway, no NAT: no hourly NAT
 * charge, no way in or out except the endpoints) with the interface endpoints in
 * HOST_INTERFACE_ENDPOINTS, reachable on 443 from the hosts' security group only, and an S3
 * gateway endpoint (free: SSM agent updates, and Amazon Linux's package repositories, are
 * served from S3).
 */
export class HostNetwork extends Construct {
  public readonly vpcId: string;
  public readonly vpcArn: string;
  public readonly subnetIds: string[];
  public readonly subnetArns: string[];
  public readonly securityGroup: ec2.SecurityGroup;
  /** Only when the VPC was created here. */
  public readonly vpc?: ec2.Vpc;
  public readonly endpointSecurityGroup?: ec2.SecurityGroup;

  constructor(scope: Construct, id: string, props: HostNetworkProps = {}) {
    super(scope, id);
    const stack = Stack.of(this);
    let vpc: ec2.IVpc;
    if (props.existing) {
      vpc = ec2.Vpc.fromVpcAttributes(this, 'Vpc', {
        vpcId: props.existing.vpcId,
        availabilityZones: stack.availabilityZones,
      });
      this.subnetIds = props.existing.subnetIds;
    } else {
      this.vpc = new ec2.Vpc(this, 'Vpc', {
        maxAzs: props.maxAzs ?? 2,
        natGateways: 0,
        // Nothing uses the VPC's default security group (hosts and endpoints have their own);
        // stripping its rules would take a custom-resource Lambda in the stack.
        restrictDefaultSecurityGroup: false,
        subnetConfiguration: [
          { name: 'Hosts', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 20 },
        ],
        flowLogs: {
          Rejected: {
            destination: ec2.FlowLogDestination.toCloudWatchLogs(
              new logs.LogGroup(this, 'FlowLogs', {
                retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
              }),
            ),
            trafficType: ec2.FlowLogTrafficType.REJECT,
          },
        },
      });
      vpc = this.vpc;
      this.subnetIds = this.vpc.isolatedSubnets.map((s) => s.subnetId);
    }
    this.vpcId = vpc.vpcId;
    this.vpcArn = stack.formatArn({ service: 'ec2', resource: 'vpc', resourceName: this.vpcId });
    this.subnetArns = this.subnetIds.map((subnetId) =>
      stack.formatArn({ service: 'ec2', resource: 'subnet', resourceName: subnetId }),
    );

    this.securityGroup = new ec2.SecurityGroup(this, 'HostSecurityGroup', {
      vpc,
      description: 'Drydock hosts: no inbound rules; the SSM agent calls out over HTTPS',
      // Builds fetch sources and packages: outbound stays open (through the operator's NAT in
      // their own VPC; in the created VPC only the endpoints answer).
      allowAllOutbound: true,
    });

    if (this.vpc) {
      this.endpointSecurityGroup = new ec2.SecurityGroup(this, 'EndpointSecurityGroup', {
        vpc,
        description: 'Drydock VPC endpoints: HTTPS from the hosts only',
        allowAllOutbound: false,
      });
      this.endpointSecurityGroup.addIngressRule(
        this.securityGroup,
        ec2.Port.tcp(443),
        'HTTPS from Drydock hosts',
      );
      for (const service of HOST_INTERFACE_ENDPOINTS) {
        this.vpc.addInterfaceEndpoint(`${endpointId(service)}Endpoint`, {
          service: new ec2.InterfaceVpcEndpointAwsService(service),
          privateDnsEnabled: true,
          securityGroups: [this.endpointSecurityGroup],
          // `open` would admit the whole VPC CIDR; only the hosts' group is admitted.
          open: false,
        });
      }
      this.vpc.addGatewayEndpoint('S3Endpoint', { service: ec2.GatewayVpcEndpointAwsService.S3 });
    }
  }
}

function endpointId(service: string): string {
  return service.charAt(0).toUpperCase() + service.slice(1);
}
