import { Stack, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/**
 * cdk-nag v3 acknowledgements (CDK's `Validations.of(scope).acknowledge`; there is no
 * `NagSuppressions` any more). An acknowledgement covers the construct it is made on and
 * everything below it, so make it on the narrowest construct that owns the finding.
 */

/**
 * Acknowledges AwsSolutions-IAM5 for one wildcard resource. The finding id embeds the
 * resource as cdk-nag flattens it (`<LogicalId.Arn>/index/*`, `arn:<AWS::Partition>:...`),
 * which depends on the stack's environment; computing it from the same ARN expression keeps
 * the acknowledgement exact whatever account and region the stack is synthesized for.
 */
export function acknowledgeWildcardResource(
  scope: IConstruct,
  resource: string,
  reason: string,
): void {
  const flat = flattenReference(Stack.of(scope).resolve(resource));
  Validations.of(scope).acknowledge({ id: `AwsSolutions-IAM5[Resource::${flat}]`, reason });
}

/** The same flattening cdk-nag applies to policy resources before naming a finding. */
function flattenReference(node: unknown): string {
  if (node === undefined) return '';
  if (typeof node === 'string') return node.replace(/\$\{/g, '<').replace(/\}/g, '>');
  if (typeof node === 'object' && node !== null) {
    const ref = node as Record<string, unknown>;
    if (Array.isArray(ref['Fn::Join'])) {
      const [delimiter, parts] = ref['Fn::Join'] as [string, unknown[]];
      return parts.map(flattenReference).join(delimiter);
    }
    if (ref['Fn::Sub'] !== undefined) return flattenReference(ref['Fn::Sub']);
    if (Array.isArray(ref['Fn::GetAtt'])) {
      const [resource, attribute] = ref['Fn::GetAtt'] as [unknown, unknown];
      return `<${flattenReference(resource)}.${flattenReference(attribute)}>`;
    }
    if (ref.Ref !== undefined) return `<${flattenReference(ref.Ref)}>`;
  }
  return JSON.stringify(node);
}
