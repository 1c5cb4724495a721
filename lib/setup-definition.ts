/**
 * Turns the setup state machine of a synthesized template back into plain ASL, so the
 * definition CloudFormation would deploy can run locally (aws-local-stepfunctions) with the
 * Lambda tasks overridden by state name (see SETUP_STATES).
 *
 * CDK emits the definition as `DefinitionString: { "Fn::Join": ["", [...parts]] }` with
 * `Ref` / `Fn::GetAtt` parts for the function ARNs; those become placeholder ARNs in
 * us-east-1, account 123456789012, named after the logical id
 * (`arn:aws:lambda:us-east-1:123456789012:function:SetupFunctionXXXX`).
 */

const PLACEHOLDER_REGION = 'us-east-1';
const PLACEHOLDER_ACCOUNT = '123456789012';

const PSEUDO_PARAMETERS: Record<string, string> = {
  'AWS::Partition': 'aws',
  'AWS::Region': PLACEHOLDER_REGION,
  'AWS::AccountId': PLACEHOLDER_ACCOUNT,
  'AWS::URLSuffix': 'amazonaws.com',
  'AWS::StackName': 'Drydock',
};

/** The subset of the Amazon States Language the callers look at. */
export interface AslDefinition {
  StartAt: string;
  States: Record<string, { Type: string; [field: string]: unknown }>;
  TimeoutSeconds?: number;
  Comment?: string;
  [field: string]: unknown;
}

interface TemplateResource {
  Type: string;
  Properties?: Record<string, unknown>;
}

export function setupDefinitionFromTemplate(template: object): AslDefinition {
  const resources = (template as { Resources?: Record<string, TemplateResource> }).Resources ?? {};
  const machines = Object.entries(resources).filter(
    ([, resource]) => resource.Type === 'AWS::StepFunctions::StateMachine',
  );
  const [machine, ...others] = machines;
  if (!machine || others.length > 0) {
    throw new Error(
      `expected one AWS::StepFunctions::StateMachine in the template, found ${machines.length}` +
        (machines.length > 0 ? ` (${machines.map(([id]) => id).join(', ')})` : ''),
    );
  }
  const [logicalId, { Properties }] = machine;
  const text = resolve(Properties?.DefinitionString, resources);
  if (typeof text !== 'string') {
    throw new Error(
      `${logicalId}: DefinitionString did not resolve to a string: ${JSON.stringify(text)}`,
    );
  }
  const definition = JSON.parse(text) as AslDefinition;
  if (typeof definition.StartAt !== 'string' || typeof definition.States !== 'object') {
    throw new Error(`${logicalId}: the definition has no StartAt/States: ${text.slice(0, 200)}`);
  }
  return definition;
}

function resolve(node: unknown, resources: Record<string, TemplateResource>): unknown {
  if (typeof node === 'string' || typeof node === 'number' || typeof node === 'boolean')
    return node;
  if (Array.isArray(node)) return node.map((item) => resolve(item, resources));
  if (typeof node !== 'object' || node === null) return node;

  const intrinsic = node as Record<string, unknown>;
  if ('Fn::Join' in intrinsic) {
    const [separator, parts] = intrinsic['Fn::Join'] as [string, unknown[]];
    return (resolve(parts, resources) as unknown[]).join(separator);
  }
  if ('Ref' in intrinsic) {
    const name = intrinsic.Ref as string;
    return PSEUDO_PARAMETERS[name] ?? refOf(name, resources[name]);
  }
  if ('Fn::GetAtt' in intrinsic) {
    const [name, attribute] = intrinsic['Fn::GetAtt'] as [string, string];
    if (attribute === 'Arn') return arnOf(name, resources[name]);
    return `${name}.${attribute}`;
  }
  const unknownIntrinsic = Object.keys(intrinsic).find((key) => key.startsWith('Fn::'));
  if (unknownIntrinsic) {
    throw new Error(
      `setupDefinitionFromTemplate: cannot resolve ${unknownIntrinsic}: ${JSON.stringify(node)}`,
    );
  }
  return Object.fromEntries(
    Object.entries(intrinsic).map(([key, value]) => [key, resolve(value, resources)]),
  );
}

/** What `Ref` returns, by resource type: names for functions, ARNs for state machines. */
function refOf(logicalId: string, resource: TemplateResource | undefined): string {
  switch (resource?.Type) {
    case 'AWS::StepFunctions::StateMachine':
    case 'AWS::SNS::Topic':
      return arnOf(logicalId, resource);
    case 'AWS::SQS::Queue':
      return `https://sqs.${PLACEHOLDER_REGION}.amazonaws.com/${PLACEHOLDER_ACCOUNT}/${logicalId}`;
    default:
      return logicalId;
  }
}

function arnOf(logicalId: string, resource: TemplateResource | undefined): string {
  const prefix = `${PLACEHOLDER_REGION}:${PLACEHOLDER_ACCOUNT}`;
  switch (resource?.Type) {
    case 'AWS::Lambda::Function':
      return `arn:aws:lambda:${prefix}:function:${logicalId}`;
    case 'AWS::SQS::Queue':
      return `arn:aws:sqs:${prefix}:${logicalId}`;
    case 'AWS::SNS::Topic':
      return `arn:aws:sns:${prefix}:${logicalId}`;
    case 'AWS::DynamoDB::Table':
      return `arn:aws:dynamodb:${prefix}:table/${logicalId}`;
    case 'AWS::StepFunctions::StateMachine':
      return `arn:aws:states:${prefix}:stateMachine:${logicalId}`;
    default:
      return `arn:aws:cloudformation:${prefix}:placeholder/${logicalId}`;
  }
}
