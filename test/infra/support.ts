import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { App, type CfnElement, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { DrydockStack, type DrydockStackProps } from '../../lib/stack.ts';

/** Stand-in handler files: unit tests skip bundling and only need the entries to exist. */
export const FIXTURE_HANDLERS_DIR = fileURLToPath(new URL('./fixtures/handlers/', import.meta.url));

/** The app context of cdk.json (feature flags), so tests synthesize what `cdk synth` would. */
export const CDK_CONTEXT: Record<string, unknown> = JSON.parse(
  readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8'),
).context;

export function newApp(): App {
  // 'aws:cdk:bundling-stacks': [] skips esbuild: ~50 ms per synth instead of seconds.
  return new App({ context: { ...CDK_CONTEXT, 'aws:cdk:bundling-stacks': [] } });
}

export function newStack(props: DrydockStackProps = {}, app: App = newApp()): DrydockStack {
  return new DrydockStack(app, 'Drydock', { handlersDir: FIXTURE_HANDLERS_DIR, ...props });
}

export function synth(props: DrydockStackProps = {}): { stack: DrydockStack; template: Template } {
  const stack = newStack(props);
  return { stack, template: Template.fromStack(stack) };
}

/** The logical id of a construct's CloudFormation resource (its default child). */
export function logicalId(construct: IConstruct): string {
  const element = (construct.node.defaultChild ?? construct) as CfnElement;
  return Stack.of(construct).getLogicalId(element);
}

export const ref = (construct: IConstruct) => ({ Ref: logicalId(construct) });
export const arnOf = (construct: IConstruct) => ({ 'Fn::GetAtt': [logicalId(construct), 'Arn'] });

export interface Statement {
  Effect: string;
  Action: string[];
  Resource: unknown[];
  Condition?: Record<string, Record<string, unknown>>;
  Sid?: string;
}

/**
 * Every Allow/Deny statement that applies to a role: its inline policies and every
 * AWS::IAM::Policy attached to it, with Action and Resource normalised to arrays (policy
 * minimisation may merge statements, so tests ask per action rather than per statement).
 */
export function statementsOfRole(template: Template, role: IConstruct): Statement[] {
  const roleId = logicalId(role);
  const statements: Statement[] = [];
  const policies = template.findResources('AWS::IAM::Policy');
  for (const policy of Object.values(policies)) {
    const roles: unknown[] = policy.Properties.Roles ?? [];
    if (!roles.some((r) => JSON.stringify(r) === JSON.stringify({ Ref: roleId }))) continue;
    for (const statement of policy.Properties.PolicyDocument.Statement) {
      statements.push({
        ...statement,
        Action: [statement.Action].flat(),
        Resource: [statement.Resource].flat(),
      });
    }
  }
  return statements;
}

/** Resources (deduplicated, as JSON strings) the role may apply `action` to. */
export function resourcesFor(statements: Statement[], action: string): string[] {
  const resources = statements
    .filter((s) => s.Effect === 'Allow' && s.Action.includes(action))
    .flatMap((s) => s.Resource.map((r) => JSON.stringify(r)));
  return [...new Set(resources)].sort();
}

export const json = (value: unknown): string => JSON.stringify(value);
