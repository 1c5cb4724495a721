import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { acknowledgeWildcardResource } from './nag.ts';
import { invalidProp } from './validate.ts';

/**
 * The tag that marks a host as this deployment's: the operator tags the hosts (EC2 instances or
 * hybrid managed instances) Drydock may lease, and Drydock may run commands only on hosts whose
 * tag value is the deployment name.
 */
export const DEPLOYMENT_TAG_KEY = 'drydock:deployment';

export interface HostControlProps {
  /**
   * Value of the `drydock:deployment` tag on the hosts this deployment may control.
   *
   * @default - the stack name
   */
  readonly deploymentName?: string;

  /**
   * SSM documents the command interface may run.
   *
   * @default ['AWS-RunShellScript']
   */
  readonly commandDocuments?: string[];

  /** Retention of command output. @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * What Drydock may do to hosts, for the functions that run blueprint plug-ins (activation,
 * commands, health checks, teardown): send commands through SSM Run Command to the hosts
 * tagged `drydock:deployment=<deployment name>` with the allowed documents only, follow and
 * cancel those commands, see which hosts are registered, and read the command output that SSM
 * writes to this deployment's log group (StandardOutputContent stops at 24,000 characters; the
 * rest is only in the log group). Nothing on EC2: the hosts are the operator's, Drydock neither
 * launches nor terminates them.
 */
export class HostControl extends Construct {
  public readonly policy: iam.Policy;
  public readonly deploymentName: string;
  /** Where SSM Run Command writes command output (CloudWatchOutputConfig). */
  public readonly commandLogGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: HostControlProps = {}) {
    super(scope, id);
    const stack = Stack.of(this);
    this.deploymentName = props.deploymentName ?? stack.stackName;
    const documents = props.commandDocuments ?? ['AWS-RunShellScript'];
    for (const document of documents) {
      if (!/^[a-zA-Z0-9_.-]{3,128}$/.test(document)) {
        throw invalidProp(this, 'commandDocuments', 'SSM document names', documents);
      }
    }

    // A fixed name, so the operator's instance profile can be scoped to it (README).
    this.commandLogGroup = new logs.LogGroup(this, 'CommandLogs', {
      logGroupName: `/drydock/${this.deploymentName}/commands`,
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      // A fixed name would block redeploying after a delete if the group were retained.
      removalPolicy: RemovalPolicy.DESTROY,
    });

    const taggedInstances = stack.formatArn({
      service: 'ec2',
      resource: 'instance',
      resourceName: '*',
    });
    const taggedManagedInstances = stack.formatArn({
      service: 'ssm',
      resource: 'managed-instance',
      resourceName: '*',
    });

    this.policy = new iam.Policy(this, 'Policy', {
      statements: [
        // ssm:resourceTag is SSM's key for the target's tags (EC2 tags of an i-…, SSM tags of a
        // hybrid mi-…), as in "Restricting Run Command access based on tags" (SSM User Guide).
        new iam.PolicyStatement({
          sid: 'SendCommandsToOwnHosts',
          actions: ['ssm:SendCommand'],
          resources: [taggedInstances, taggedManagedInstances],
          conditions: {
            StringEquals: { [`ssm:resourceTag/${DEPLOYMENT_TAG_KEY}`]: this.deploymentName },
          },
        }),
        // SendCommand is authorised on the document too; AWS-owned documents carry no tags,
        // so they get their own statement, limited by name.
        new iam.PolicyStatement({
          sid: 'SendCommandDocuments',
          actions: ['ssm:SendCommand'],
          resources: documents.map((name) =>
            stack.formatArn({
              service: 'ssm',
              account: '',
              resource: 'document',
              resourceName: name,
            }),
          ),
        }),
        new iam.PolicyStatement({
          sid: 'ReadCommandOutput',
          // The plug-ins read one invocation's stream from an offset (lambdas/blueprints/ssm/output.ts).
          actions: ['logs:GetLogEvents'],
          resources: [this.commandLogGroup.logGroupArn],
        }),
        new iam.PolicyStatement({
          sid: 'FollowCommands',
          actions: [
            'ssm:CancelCommand',
            'ssm:DescribeInstanceInformation',
            'ssm:GetCommandInvocation',
            'ssm:ListCommands',
          ],
          resources: ['*'],
        }),
      ],
    });

    acknowledgeWildcardResource(
      this.policy,
      '*',
      'ssm:CancelCommand, ssm:DescribeInstanceInformation, ssm:GetCommandInvocation and ' +
        'ssm:ListCommands support no resource-level permissions (Service Authorization Reference); ' +
        'a command can only be started on tagged hosts, so there is nothing else to follow or cancel.',
    );
    acknowledgeWildcardResource(
      this.policy,
      taggedInstances,
      `Instance IDs are not known in advance; SendCommand on instances is conditioned on the tag ${DEPLOYMENT_TAG_KEY}=<deployment name>.`,
    );
    acknowledgeWildcardResource(
      this.policy,
      taggedManagedInstances,
      `Static hosts are SSM managed instances registered by the operator; SendCommand on them is conditioned on the tag ${DEPLOYMENT_TAG_KEY}=<deployment name>.`,
    );
  }

  /** Attaches the host policy to a role. */
  public attachTo(role: iam.IRole): void {
    this.policy.attachToRole(role);
  }
}
