import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { arnOf, logicalId, ref, synth } from './support.ts';

describe('LeaseApi', () => {
  const { stack, template } = synth();
  const restApi = stack.api.restApi;

  it('is one regional REST API', () => {
    template.resourceCountIs('AWS::ApiGateway::RestApi', 1);
    template.hasResourceProperties('AWS::ApiGateway::RestApi', {
      EndpointConfiguration: { Types: ['REGIONAL'] },
    });
  });

  it('routes ANY /v1/{proxy+} to the api function, and nothing else', () => {
    const resources = template.findResources('AWS::ApiGateway::Resource');
    const byPath = Object.fromEntries(
      Object.entries(resources).map(([id, r]) => [
        r.Properties.PathPart as string,
        { id, ...r.Properties },
      ]),
    );
    expect(Object.keys(byPath).sort()).toEqual(['v1', '{proxy+}']);
    expect(byPath.v1?.ParentId).toEqual({ 'Fn::GetAtt': [logicalId(restApi), 'RootResourceId'] });
    expect(byPath['{proxy+}']?.ParentId).toEqual({ Ref: byPath.v1?.id });

    template.resourceCountIs('AWS::ApiGateway::Method', 1);
    template.hasResourceProperties('AWS::ApiGateway::Method', {
      HttpMethod: 'ANY',
      ResourceId: { Ref: byPath['{proxy+}']?.id },
      Integration: {
        Type: 'AWS_PROXY',
        IntegrationHttpMethod: 'POST',
      },
    });
    const method = Object.values(template.findResources('AWS::ApiGateway::Method'))[0];
    expect(JSON.stringify(method?.Properties.Integration.Uri)).toContain(
      JSON.stringify(arnOf(stack.apiFunction)),
    );
  });

  it('signs every method with SigV4 (AWS_IAM): no unauthenticated method', () => {
    const methods = Object.values(template.findResources('AWS::ApiGateway::Method'));
    expect(methods.length).toBeGreaterThan(0);
    for (const method of methods) {
      expect(method.Properties.AuthorizationType).toBe('AWS_IAM');
    }
  });

  it('validates requests', () => {
    template.hasResourceProperties('AWS::ApiGateway::RequestValidator', {
      RestApiId: ref(restApi),
      ValidateRequestBody: true,
      ValidateRequestParameters: true,
    });
    const validatorId = Object.keys(template.findResources('AWS::ApiGateway::RequestValidator'))[0];
    template.hasResourceProperties('AWS::ApiGateway::Method', {
      RequestValidatorId: { Ref: validatorId },
    });
  });

  it('throttles the stage, traces it, and logs errors without bodies', () => {
    template.hasResourceProperties('AWS::ApiGateway::Stage', {
      StageName: 'prod',
      TracingEnabled: true,
      MethodSettings: [
        {
          HttpMethod: '*',
          ResourcePath: '/*',
          ThrottlingRateLimit: 50,
          ThrottlingBurstLimit: 100,
          LoggingLevel: 'ERROR',
          DataTraceEnabled: false,
        },
      ],
    });
  });

  it('writes JSON access logs, with the caller ARN, to a log group kept a month', () => {
    const stage = Object.values(template.findResources('AWS::ApiGateway::Stage'))[0];
    const setting = stage?.Properties.AccessLogSetting;
    expect(JSON.stringify(setting.DestinationArn)).toContain(
      JSON.stringify(ref(stack.api.accessLogGroup)),
    );
    const format = JSON.parse(setting.Format);
    expect(format).toMatchObject({
      requestId: '$context.requestId',
      userArn: '$context.identity.userArn',
      httpMethod: '$context.httpMethod',
      path: '$context.path',
      status: '$context.status',
    });
    expect(
      template.findResources('AWS::Logs::LogGroup')[logicalId(stack.api.accessLogGroup)]?.Properties
        .RetentionInDays,
    ).toBe(30);
  });

  it('takes throttling and stage name from props', () => {
    synth({
      apiThrottlingRateLimit: 5,
      apiThrottlingBurstLimit: 12,
      apiStageName: 'v',
    }).template.hasResourceProperties('AWS::ApiGateway::Stage', {
      StageName: 'v',
      MethodSettings: [Match.objectLike({ ThrottlingRateLimit: 5, ThrottlingBurstLimit: 12 })],
    });
  });

  it("sets up API Gateway's account logging role only when asked (it replaces the account's)", () => {
    // Issue 15: on by default it overwrote a role the account may already have.
    template.resourceCountIs('AWS::ApiGateway::Account', 0);
    const withRole = synth({ apiGatewayCloudWatchRole: true }).template;
    withRole.resourceCountIs('AWS::ApiGateway::Account', 1);
  });

  it('lets only this API invoke the api function', () => {
    const permissions = Object.values(template.findResources('AWS::Lambda::Permission')).filter(
      (p) => JSON.stringify(p.Properties.FunctionName) === JSON.stringify(arnOf(stack.apiFunction)),
    );
    expect(permissions).toHaveLength(1);
    expect(permissions[0]?.Properties.Principal).toBe('apigateway.amazonaws.com');
    const sourceArn = JSON.stringify(permissions[0]?.Properties.SourceArn);
    expect(sourceArn).toContain(JSON.stringify(ref(restApi)));
    expect(sourceArn).toContain('"/*/v1/*"');
    expect(sourceArn).not.toContain('test-invoke-stage');
  });

  it('outputs the URL, table, queue and state machine', () => {
    template.hasOutput('ApiUrl', { Value: Match.objectLike({ 'Fn::Join': Match.anyValue() }) });
    template.hasOutput('TableName', { Value: ref(stack.table.table) });
    template.hasOutput('QueueUrl', { Value: ref(stack.workQueue.queue) });
    template.hasOutput('StateMachineArn', { Value: ref(stack.setupWorkflow.stateMachine) });
  });
});
