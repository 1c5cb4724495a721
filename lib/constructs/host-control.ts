import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { acknowledgeWildcardResource } from './nag.ts';
import { invalidProp } from './validate.ts';

/**
 * The tag that marks a host as this deployment's: instances Drydock launches carry it, and
 * preallocated (static) hosts get it from the operator. Drydock may terminate or run commands
 * only on hosts whose tag value is the deployment name.
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
}

/**
 * What Drydock may do to hosts: one IAM policy, attached to the functions that activate,
 * check, reclaim and reconcile hosts. Every action that supports resource-level permissions
 * is limited to instances tagged `drydock:deployment=<deployment name>`.
 */
export class HostControl extends Construct {
  public readonly policy: iam.Policy;
  public readonly deploymentName: string;

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
    const tagIs = (conditionKey: string) => ({
      StringEquals: { [`${conditionKey}/${DEPLOYMENT_TAG_KEY}`]: this.deploymentName },
    });

    this.policy = new iam.Policy(this, 'Policy', {
      statements: [
        new iam.PolicyStatement({
          sid: 'TerminateOwnInstances',
          actions: ['ec2:TerminateInstances'],
          resources: [taggedInstances],
          conditions: tagIs('aws:ResourceTag'),
        }),
        new iam.PolicyStatement({
          sid: 'SendCommandsToOwnHosts',
          actions: ['ssm:SendCommand'],
          resources: [taggedInstances, taggedManagedInstances],
          conditions: tagIs('ssm:resourceTag'),
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
          sid: 'ReadHostState',
          actions: [
            'ec2:DescribeInstances',
            'ssm:GetCommandInvocation',
            'ssm:DescribeInstanceInformation',
          ],
          resources: ['*'],
        }),
      ],
    });

    acknowledgeWildcardResource(
      this.policy,
      '*',
      'ec2:DescribeInstances, ssm:GetCommandInvocation and ssm:DescribeInstanceInformation ' +
        'support no resource-level permissions (Service Authorization Reference); all are read-only.',
    );
    acknowledgeWildcardResource(
      this.policy,
      taggedInstances,
      `Instance IDs are not known in advance; every statement on instances is conditioned on the tag ${DEPLOYMENT_TAG_KEY}=<deployment name>.`,
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
