import { Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { DEFAULT_IMAGE_PARAMETER } from '../../lambdas/blueprints/ec2-host/config.ts';
import { DEPLOYMENT_TAG_KEY } from './host-control.ts';
import { type ExistingVpc, HostNetwork } from './host-network.ts';
import { acknowledgeWildcardResource } from './nag.ts';

/**
 * The launch calls the `ec2-host` plug-in makes: RunInstances only (one instance, one market,
 * one subnet per call; lambdas/blueprints/ec2-host/launch.ts). It never calls CreateFleet, so
 * nothing here allows it.
 */
export const LAUNCH_ACTIONS = ['ec2:RunInstances'] as const;

/**
 * What RunInstances creates and the plug-in tags in the call itself (TagSpecifications:
 * instance, volume, network-interface), each with the deployment tag in the request.
 */
export const TAGGED_AT_LAUNCH = ['instance', 'volume', 'network-interface'] as const;

export interface HostFleetProps {
  /** The `drydock:deployment` tag value every launched instance must carry (HostControl's). */
  readonly deploymentName: string;

  /** Where SSM Run Command writes command output: the hosts' role writes to it. */
  readonly commandLogGroup: logs.ILogGroup;

  /** @default - a VPC created for the hosts (HostNetwork) */
  readonly existingVpc?: ExistingVpc;

  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * The EC2 hosts Drydock launches itself (`ec2-host` blueprints): their network (HostNetwork),
 * their instance role and profile, and what Drydock's functions may do on EC2, as two policies:
 *
 * - `launchPolicy` (the setup function, which runs activateResource): RunInstances only for
 *   instances and volumes tagged `drydock:deployment=<deployment>` in the launch call itself,
 *   tags (instance, volume, network interface) only as part of that launch, only into the
 *   pool's subnets with security groups of its VPC, launch templates and key pairs the operator
 *   tagged for this deployment, only with this stack's instance role passed to EC2, and the
 *   default AMI's public SSM parameter read (`resolve:ssm:` is resolved with the caller's
 *   permissions);
 * - `inventoryPolicy` (setup, worker, sweep: failure clean-up, teardown, events, orphan sweep):
 *   DescribeInstances, and TerminateInstances only on instances tagged for this deployment.
 *
 * Whatever is created, tagged or terminated is conditioned on the deployment tag, so two
 * deployments in one account (prod and staging) can neither launch as nor terminate each other.
 * test/infra/ec2-host-iam.test.ts runs the plug-in on the AWS fake and checks each function is
 * allowed every call it really makes, and no EC2 action beyond them.
 */
export class HostFleet extends Construct {
  public readonly network: HostNetwork;
  public readonly instanceRole: iam.Role;
  public readonly instanceProfile: iam.InstanceProfile;
  public readonly launchPolicy: iam.Policy;
  public readonly inventoryPolicy: iam.Policy;
  public readonly deploymentName: string;

  constructor(scope: Construct, id: string, props: HostFleetProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.deploymentName = props.deploymentName;
    this.network = new HostNetwork(this, 'Network', {
      existing: props.existingVpc,
      logRetention: props.logRetention,
    });

    this.instanceRole = new iam.Role(this, 'InstanceRole', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description: `Drydock ${this.deploymentName} hosts: SSM agent and command output`,
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore')],
    });
    // Run Command's CloudWatchOutputConfig: the agent writes each invocation's output stream.
    this.instanceRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'WriteCommandOutput',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents', 'logs:DescribeLogStreams'],
        resources: [props.commandLogGroup.logGroupArn],
      }),
    );
    this.instanceRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'FindCommandLogGroup',
        actions: ['logs:DescribeLogGroups'],
        resources: ['*'],
      }),
    );
    Validations.of(this.instanceRole).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]',
      reason:
        'The policy the SSM docs prescribe for managed instances (agent registration, Run Command, Session Manager); AWS keeps it in step with the agent.',
    });
    this.instanceProfile = new iam.InstanceProfile(this, 'InstanceProfile', {
      role: this.instanceRole,
    });

    const arn = (resource: string, resourceName: string, account?: string) =>
      stack.formatArn({ service: 'ec2', resource, resourceName, account });
    const instances = arn('instance', '*');
    const volumes = arn('volume', '*');
    const spotRequests = arn('spot-instances-request', '*');
    const networkInterfaces = arn('network-interface', '*');
    const securityGroups = arn('security-group', '*');
    const launchTemplates = arn('launch-template', '*');
    const keyPairs = arn('key-pair', '*');
    // Public and shared AMIs and their snapshots belong to other accounts: no account in the ARN.
    const images = arn('image', '*', '');
    const snapshots = arn('snapshot', '*', '');
    const requestTag = { [`aws:RequestTag/${DEPLOYMENT_TAG_KEY}`]: this.deploymentName };
    const resourceTag = { [`aws:ResourceTag/${DEPLOYMENT_TAG_KEY}`]: this.deploymentName };
    const spotServiceLinkedRole = stack.formatArn({
      service: 'iam',
      region: '',
      resource: 'role',
      resourceName: 'aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot',
    });

    this.launchPolicy = new iam.Policy(this, 'LaunchPolicy', {
      statements: [
        // What a launch creates must carry the deployment tag in the launch call itself
        // (TagSpecifications), so nothing untagged (unsweepable) can ever be created.
        new iam.PolicyStatement({
          sid: 'LaunchTaggedInstances',
          actions: [...LAUNCH_ACTIONS],
          resources: [instances, volumes],
          conditions: { StringEquals: requestTag },
        }),
        new iam.PolicyStatement({
          sid: 'TagOnlyWhileLaunching',
          actions: ['ec2:CreateTags'],
          resources: [instances, volumes, networkInterfaces],
          conditions: {
            StringEquals: { 'ec2:CreateAction': [...LAUNCH_ACTIONS].map(bare), ...requestTag },
          },
        }),
        // The parts of a launch that are not created tagged, each scoped by what it is.
        new iam.PolicyStatement({
          sid: 'LaunchIntoPoolSubnets',
          actions: [...LAUNCH_ACTIONS],
          resources: this.network.subnetArns,
        }),
        new iam.PolicyStatement({
          sid: 'LaunchWithPoolNetworkInterfaces',
          actions: [...LAUNCH_ACTIONS],
          resources: [networkInterfaces],
          conditions: { StringEquals: { 'ec2:Subnet': this.network.subnetArns } },
        }),
        new iam.PolicyStatement({
          sid: 'LaunchWithPoolVpcSecurityGroups',
          actions: [...LAUNCH_ACTIONS],
          resources: [securityGroups],
          conditions: { StringEquals: { 'ec2:Vpc': this.network.vpcArn } },
        }),
        new iam.PolicyStatement({
          sid: 'LaunchWithTaggedTemplatesAndKeys',
          actions: [...LAUNCH_ACTIONS],
          resources: [launchTemplates, keyPairs],
          conditions: { StringEquals: resourceTag },
        }),
        new iam.PolicyStatement({
          sid: 'LaunchFromImages',
          actions: [...LAUNCH_ACTIONS],
          resources: [images, snapshots],
        }),
        // A spot launch creates a spot request alongside the (tagged) instance.
        new iam.PolicyStatement({
          sid: 'SpotRequestsOfLaunches',
          actions: [...LAUNCH_ACTIONS],
          resources: [spotRequests],
        }),
        // The default imageId is `resolve:ssm:<public parameter>`: EC2 reads it as the caller.
        new iam.PolicyStatement({
          sid: 'ResolveDefaultImage',
          actions: ['ssm:GetParameters'],
          resources: [
            stack.formatArn({
              service: 'ssm',
              account: '',
              resource: 'parameter',
              resourceName: DEFAULT_IMAGE_PARAMETER.slice(1),
            }),
          ],
        }),
        new iam.PolicyStatement({
          sid: 'PassInstanceRoleToEc2',
          actions: ['iam:PassRole'],
          resources: [this.instanceRole.roleArn],
          conditions: { StringEquals: { 'iam:PassedToService': 'ec2.amazonaws.com' } },
        }),
        // The first spot request of an account creates EC2's spot service-linked role.
        new iam.PolicyStatement({
          sid: 'CreateSpotServiceLinkedRole',
          actions: ['iam:CreateServiceLinkedRole'],
          resources: [spotServiceLinkedRole],
          conditions: { StringEquals: { 'iam:AWSServiceName': 'spot.amazonaws.com' } },
        }),
      ],
    });

    this.inventoryPolicy = new iam.Policy(this, 'InventoryPolicy', {
      statements: [
        new iam.PolicyStatement({
          sid: 'DescribeInstances',
          actions: ['ec2:DescribeInstances'],
          resources: ['*'],
        }),
        new iam.PolicyStatement({
          sid: 'TerminateOwnInstances',
          actions: ['ec2:TerminateInstances'],
          resources: [instances],
          conditions: { StringEquals: resourceTag },
        }),
      ],
    });

    this.acknowledgeFindings({
      instances,
      volumes,
      spotRequests,
      networkInterfaces,
      securityGroups,
      launchTemplates,
      keyPairs,
      images,
      snapshots,
    });
  }

  /** Lets `role` launch hosts (only the function that runs activateResource: setup). */
  public grantLaunch(role: iam.IRole): void {
    this.launchPolicy.attachToRole(role);
  }

  /** Lets `role` see and terminate this deployment's hosts (setup, worker, sweep). */
  public grantInventory(role: iam.IRole): void {
    this.inventoryPolicy.attachToRole(role);
  }

  private acknowledgeFindings(
    arns: Record<
      | 'instances'
      | 'volumes'
      | 'spotRequests'
      | 'networkInterfaces'
      | 'securityGroups'
      | 'launchTemplates'
      | 'keyPairs'
      | 'images'
      | 'snapshots',
      string
    >,
  ): void {
    const tagged = `conditioned on the tag ${DEPLOYMENT_TAG_KEY}=${this.deploymentName}`;
    const instancesReason = `Instance ids are made by the launch; launching, tagging and terminating are ${tagged} (in the request or on the instance).`;
    const reasons: [string, string][] = [
      [arns.instances, instancesReason],
      [
        arns.volumes,
        `Volume ids are made by the launch; creating and tagging them is ${tagged} in the request.`,
      ],
      [
        arns.spotRequests,
        'Spot requests are made by the launch of a tagged instance (RunInstances with spot market options), never on their own.',
      ],
      [
        arns.networkInterfaces,
        `Interface ids are made by the launch; RunInstances may create them only in the pool's subnets (ec2:Subnet), and tag them only as part of it, ${tagged} in the request.`,
      ],
      [
        arns.securityGroups,
        "Security groups are chosen by the blueprint; only those of the pool's VPC (ec2:Vpc).",
      ],
      [arns.launchTemplates, `Launch templates are the operator's; only those ${tagged}.`],
      [arns.keyPairs, `Key pairs are the operator's; only those ${tagged}.`],
      [
        arns.images,
        'Any AMI the account can see, including public and shared ones: the blueprint names it, the instance it starts is still tagged, networked and profiled as above. RunInstances reads it, never changes it.',
      ],
      [arns.snapshots, 'The snapshots behind the chosen AMI: read by the launch, never changed.'],
    ];
    for (const [resource, reason] of reasons) {
      acknowledgeWildcardResource(this.launchPolicy, resource, reason);
    }
    acknowledgeWildcardResource(
      this.inventoryPolicy,
      '*',
      'ec2:DescribeInstances supports no resource-level permissions (Service Authorization Reference); the plug-in filters by the deployment tag.',
    );
    acknowledgeWildcardResource(this.inventoryPolicy, arns.instances, instancesReason);
    acknowledgeWildcardResource(
      this.instanceRole,
      '*',
      'logs:DescribeLogGroups supports no resource-level permissions; the SSM agent calls it before writing command output.',
    );
  }
}

/** `ec2:RunInstances` -> `RunInstances` (ec2:CreateAction holds the bare API name). */
function bare(action: string): string {
  return action.slice(action.indexOf(':') + 1);
}
