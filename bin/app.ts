/**
 * The CDK app: `npx cdk synth` / `npx cdk deploy` (cdk.json runs this file with tsx).
 *
 * Context (`-c key=value` or cdk.json):
 *   drydock:stackName        stack name, also the `drydock:deployment` tag value on hosts
 *                            (default "Drydock")
 *   drydock:adminPrincipals  comma-separated IAM ARNs allowed to administer blueprints
 *   drydock:apiGatewayCloudWatchRole  "true" creates API Gateway's account-level logging role
 *                            (replacing the account's own); default: the account has one
 *   drydock:allowedPrincipals  comma-separated IAM ARNs: only they may invoke the API
 *   drydock:allowedOrgId     only principals of this organisation may invoke the API
 *   drydock:ownerGranularity `role` (default: all sessions of a role own its leases together)
 *                            or `session` (each assumed-role session is its own owner)
 *   drydock:vpcId, drydock:subnetIds
 *                            the VPC and subnets (comma-separated) for ec2-host instances;
 *                            read by the stack (lib/constructs/host-network.ts). Default: a
 *                            small VPC created for them
 *   drydock:ec2Hosts         "false" leaves out everything ec2-host blueprints need (VPC,
 *                            endpoints, instance profile, EC2 permissions); default "true"
 *   drydock:alarmEmail       e-mail address subscribed to the alarm topic
 *   drydock:alarmTopicArn    an existing SNS topic for the alarms (instead of a new one)
 *   drydock:oldestWaitAlarmMinutes  alarm when a lease waits this long (default 30)
 *
 * cdk-nag's AwsSolutions pack runs at synthesis: an unacknowledged error fails `cdk synth`.
 */
import { App, Duration, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { DrydockStack } from '../lib/stack.ts';

const app = new App();

const allowedPrincipals = String(app.node.tryGetContext('drydock:allowedPrincipals') ?? '')
  .split(',')
  .map((arn) => arn.trim())
  .filter((arn) => arn.length > 0);
const allowedOrgId = app.node.tryGetContext('drydock:allowedOrgId') as string | undefined;

function ownerGranularityContext(value: unknown): 'role' | 'session' {
  if (value === undefined || value === 'role') return 'role';
  if (value === 'session') return 'session';
  throw new Error(`drydock:ownerGranularity must be 'role' or 'session', got '${String(value)}'`);
}

const stackName = String(app.node.tryGetContext('drydock:stackName') ?? 'Drydock');
const adminPrincipals = String(app.node.tryGetContext('drydock:adminPrincipals') ?? '')
  .split(',')
  .map((arn) => arn.trim())
  .filter((arn) => arn.length > 0);

const ec2Hosts = String(app.node.tryGetContext('drydock:ec2Hosts') ?? 'true') !== 'false';
const context = (key: string): string | undefined => {
  const value = app.node.tryGetContext(key);
  return value === undefined || value === '' ? undefined : String(value);
};
const alarmEmail = context('drydock:alarmEmail');
const alarmTopicArn = context('drydock:alarmTopicArn');
const oldestWaitMinutes = context('drydock:oldestWaitAlarmMinutes');

new DrydockStack(app, stackName, {
  description: 'Drydock: build-resource leasing (API, work queue, sweep, setup workflow)',
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  adminPrincipals,
  ownerGranularity: ownerGranularityContext(app.node.tryGetContext('drydock:ownerGranularity')),
  apiGatewayCloudWatchRole:
    String(app.node.tryGetContext('drydock:apiGatewayCloudWatchRole')) === 'true',
  ...(allowedPrincipals.length > 0 ? { allowedPrincipals } : {}),
  ...(allowedOrgId ? { allowedOrgId } : {}),
  ec2Hosts,
  ...(alarmEmail ? { alarmEmail } : {}),
  ...(alarmTopicArn ? { alarmTopicArn } : {}),
  ...(oldestWaitMinutes
    ? { oldestWaitAlarmThreshold: Duration.minutes(Number(oldestWaitMinutes)) }
    : {}),
});

Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
