/**
 * The CDK app: `npx cdk synth` / `npx cdk deploy` (cdk.json runs this file with tsx).
 *
 * Context (`-c key=value` or cdk.json):
 *   drydock:stackName        stack name, also the `drydock:deployment` tag value on hosts
 *                            (default "Drydock")
 *   drydock:adminPrincipals  comma-separated IAM ARNs allowed to administer blueprints
 *   drydock:ownerGranularity `role` (default: all sessions of a role own its leases together)
 *                            or `session` (each assumed-role session is its own owner)
 *
 * cdk-nag's AwsSolutions pack runs at synthesis: an unacknowledged error fails `cdk synth`.
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { DrydockStack } from '../lib/stack.ts';

const app = new App();

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

new DrydockStack(app, stackName, {
  description: 'Drydock: build-resource leasing (API, work queue, sweep, setup workflow)',
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  adminPrincipals,
  ownerGranularity: ownerGranularityContext(app.node.tryGetContext('drydock:ownerGranularity')),
});

Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
