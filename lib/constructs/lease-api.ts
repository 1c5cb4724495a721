import { Validations } from 'aws-cdk-lib';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { checkInteger, checkPositiveNumber, invalidProp } from './validate.ts';

export interface LeaseApiProps {
  /** The api function: every route under /v1 goes to it (lambdas/handlers/api.ts). */
  readonly handler: lambda.IFunction;

  /** @default 'prod' */
  readonly stageName?: string;

  /**
   * Steady-state requests per second the stage accepts (all callers together).
   *
   * @default 50
   */
  readonly throttlingRateLimit?: number;

  /**
   * Requests the stage accepts in a burst above the rate (a merge queue asking for many
   * leases at once).
   *
   * @default 100
   */
  readonly throttlingBurstLimit?: number;

  /** @default logs.RetentionDays.ONE_MONTH */
  readonly accessLogRetention?: logs.RetentionDays;

  /**
   * Create the account-level role API Gateway needs to write logs. There is one per account
   * and region, and creating it replaces whatever role the account had: so off unless asked
   * for. Access and execution logging fail to deploy without one (`aws apigateway get-account`
   * shows a cloudwatchRoleArn when the account has it).
   *
   * @default false
   */
  readonly cloudWatchRole?: boolean;

  /**
   * Only these IAM principals (user or role ARNs; an assumed role is matched by its role) may
   * invoke the API: a resource policy denies everyone else, even callers whose own IAM policy
   * allows `execute-api:Invoke`.
   *
   * @default - no resource policy: anyone IAM allows
   */
  readonly allowedPrincipals?: string[];

  /**
   * Only principals of this AWS Organization may invoke (with allowedPrincipals: those
   * principals, or anyone in the organisation).
   *
   * @default - no resource policy
   */
  readonly allowedOrgId?: string;
}

const PRINCIPAL_ARN = /^arn:aws[a-z-]*:iam::\d{12}:(root|user\/.+|role\/.+)$/;

/**
 * The API's resource policy when callers are narrowed, else undefined. For a same-account
 * caller an IAM allow is enough, so narrowing takes an explicit deny of everyone who is neither
 * listed nor in the organisation; the allow lets the listed principals of other accounts in.
 */
export function invokePolicy(
  scope: Construct,
  allowedPrincipals: string[] | undefined,
  allowedOrgId: string | undefined,
): iam.PolicyDocument | undefined {
  const principals = allowedPrincipals ?? [];
  if (principals.length === 0 && !allowedOrgId) return undefined;
  for (const arn of principals) {
    if (!PRINCIPAL_ARN.test(arn)) {
      throw invalidProp(scope, 'allowedPrincipals', 'IAM user, role or account root ARNs', arn);
    }
  }
  if (allowedOrgId !== undefined && !/^o-[a-z0-9]{10,32}$/.test(allowedOrgId)) {
    throw invalidProp(
      scope,
      'allowedOrgId',
      'an organization id such as o-a1b2c3d4e5',
      allowedOrgId,
    );
  }
  const invoke = { actions: ['execute-api:Invoke'], resources: ['execute-api:/*'] };
  const notAllowed: Record<string, Record<string, string | string[]>> = {};
  if (principals.length > 0) notAllowed.StringNotEquals = { 'aws:PrincipalArn': principals };
  if (allowedOrgId) {
    notAllowed.StringNotEquals = {
      ...notAllowed.StringNotEquals,
      'aws:PrincipalOrgID': allowedOrgId,
    };
  }
  const statements = [
    new iam.PolicyStatement({
      sid: 'DenyEveryoneElse',
      effect: iam.Effect.DENY,
      principals: [new iam.AnyPrincipal()],
      ...invoke,
      conditions: notAllowed,
    }),
  ];
  if (principals.length > 0) {
    statements.push(
      new iam.PolicyStatement({
        sid: 'AllowListedPrincipals',
        principals: principals.map((arn) => new iam.ArnPrincipal(arn)),
        ...invoke,
      }),
    );
  }
  if (allowedOrgId) {
    statements.push(
      new iam.PolicyStatement({
        sid: 'AllowOrganization',
        principals: [new iam.AnyPrincipal()],
        ...invoke,
        conditions: { StringEquals: { 'aws:PrincipalOrgID': allowedOrgId } },
      }),
    );
  }
  return new iam.PolicyDocument({ statements });
}

/**
 * The HTTPS lease API: a regional REST API whose only routes are `ANY /v1/{proxy+}`,
 * proxied to the api function, every method signed with SigV4 (AWS_IAM). Callers are CI
 * roles and developers with IAM credentials; the api function reads the caller's ARN from
 * the request context to decide what they may touch.
 */
export class LeaseApi extends Construct {
  public readonly restApi: apigateway.RestApi;
  public readonly accessLogGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: LeaseApiProps) {
    super(scope, id);
    const stageName = props.stageName ?? 'prod';
    if (!/^[a-zA-Z0-9_]{1,128}$/.test(stageName)) {
      throw invalidProp(this, 'stageName', 'letters, digits and underscores', stageName);
    }
    checkPositiveNumber(this, 'throttlingRateLimit', props.throttlingRateLimit);
    checkInteger(this, 'throttlingBurstLimit', props.throttlingBurstLimit, 1, 100_000);
    const cloudWatchRole = props.cloudWatchRole ?? false;
    const policy = invokePolicy(this, props.allowedPrincipals, props.allowedOrgId);

    this.accessLogGroup = new logs.LogGroup(this, 'AccessLogs', {
      retention: props.accessLogRetention ?? logs.RetentionDays.ONE_MONTH,
    });

    this.restApi = new apigateway.RestApi(this, 'RestApi', {
      description: 'Drydock lease API (SigV4)',
      endpointTypes: [apigateway.EndpointType.REGIONAL],
      cloudWatchRole,
      ...(policy ? { policy } : {}),
      defaultMethodOptions: { authorizationType: apigateway.AuthorizationType.IAM },
      deployOptions: {
        stageName,
        throttlingRateLimit: props.throttlingRateLimit ?? 50,
        throttlingBurstLimit: props.throttlingBurstLimit ?? 100,
        tracingEnabled: true,
        // Execution logs for errors only, and never request/response bodies (they carry
        // commands and their output).
        loggingLevel: apigateway.MethodLoggingLevel.ERROR,
        dataTraceEnabled: false,
        accessLogDestination: new apigateway.LogGroupLogDestination(this.accessLogGroup),
        accessLogFormat: apigateway.AccessLogFormat.custom(
          JSON.stringify({
            requestId: apigateway.AccessLogField.contextRequestId(),
            requestTime: apigateway.AccessLogField.contextRequestTime(),
            ip: apigateway.AccessLogField.contextIdentitySourceIp(),
            caller: apigateway.AccessLogField.contextIdentityCaller(),
            userArn: apigateway.AccessLogField.contextIdentityUserArn(),
            httpMethod: apigateway.AccessLogField.contextHttpMethod(),
            path: apigateway.AccessLogField.contextPath(),
            protocol: apigateway.AccessLogField.contextProtocol(),
            status: apigateway.AccessLogField.contextStatus(),
            responseLength: apigateway.AccessLogField.contextResponseLength(),
            responseLatency: apigateway.AccessLogField.contextResponseLatency(),
            integrationLatency: apigateway.AccessLogField.contextIntegrationLatency(),
            errorMessage: apigateway.AccessLogField.contextErrorMessage(),
            xrayTraceId: apigateway.AccessLogField.contextXrayTraceId(),
          }),
        ),
      },
    });

    // One proxy cannot carry per-route body models: the api function validates bodies (zod).
    // The validator still checks required parameters and satisfies AwsSolutions-APIG2.
    const requestValidator = this.restApi.addRequestValidator('RequestValidator', {
      validateRequestBody: true,
      validateRequestParameters: true,
    });
    // Method options, not the proxy's defaultMethodOptions: CDK reads requestValidator only
    // from the former.
    const proxy = this.restApi.root.addResource('v1').addProxy({ anyMethod: false });
    proxy.addMethod(
      'ANY',
      new apigateway.LambdaIntegration(props.handler, { allowTestInvoke: false }),
      { authorizationType: apigateway.AuthorizationType.IAM, requestValidator },
    );

    Validations.of(this.restApi).acknowledge(
      {
        id: 'AwsSolutions-COG4',
        reason:
          'Every method uses AWS_IAM (SigV4): callers are CI roles and developers with IAM ' +
          'credentials, and authorization is by their ARN; there is no Cognito user pool.',
      },
      {
        id: 'AwsSolutions-APIG3',
        reason:
          'Unsigned requests are rejected by API Gateway before any integration runs and the ' +
          'stage is throttled; a WAF web ACL adds cost without protecting anything further for ' +
          'an IAM-only API. Operators who want one can associate it with the stage.',
      },
    );
    if (cloudWatchRole) {
      Validations.of(this.restApi).acknowledge({
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
        reason:
          "API Gateway's account-level logging role uses the AWS managed policy made for it; it " +
          'serves every API in the account and region, so it cannot be scoped to this one.',
      });
    }
  }

  /** The stage URL (ends with '/'); routes are under `v1/`. */
  public get url(): string {
    return this.restApi.url;
  }
}
