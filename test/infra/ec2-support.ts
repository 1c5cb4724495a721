/** Helpers for the EC2 host fleet's template tests (host-fleet, host-network). */
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { CDK_CONTEXT, json, newStack } from './support.ts';

export interface PolicyStatement {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}

export const pseudo = (name: string) => ({ Ref: `AWS::${name}` });

/** CDK sorts a statement's actions and resources; compare them as sets. */
export function sorted(statement: PolicyStatement | undefined): PolicyStatement | undefined {
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
export function ec2Arn(resource: string, { account = true } = {}): unknown {
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

export function ec2ArnOf(resource: string, id: unknown): unknown {
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
export function synthWithContext(context: Record<string, unknown>) {
  const app = new App({
    context: { ...CDK_CONTEXT, 'aws:cdk:bundling-stacks': [], ...context },
  });
  const stack = newStack({}, app);
  return { stack, template: Template.fromStack(stack) };
}
