/**
 * The event shapes Lambda hands a function, built in-process: a Lambda context with a deadline,
 * the SQS event of received messages, API Gateway's REST proxy event and EventBridge's
 * scheduled event. The local runtime, the benchmarks and the handler tests invoke the real
 * handlers with exactly these, so all three exercise what AWS would send.
 */
import { createHash, randomUUID } from 'node:crypto';
import type {
  APIGatewayProxyEvent,
  Context,
  ScheduledEvent,
  SQSEvent,
  SQSRecord,
} from 'aws-lambda';
import type { ReceivedUpdate } from '../../lambdas/queue/sqs-queue.ts';

export const LOCAL_REGION = 'us-east-1';
export const LOCAL_ACCOUNT = '000000000000';

/** A Lambda context for one invocation of `drydock-<name>`, `timeoutMs` before its deadline. */
export function lambdaContext(name: string, timeoutMs: number, memoryMb = 512): Context {
  const deadline = Date.now() + timeoutMs;
  const functionName = `drydock-${name}`;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${LOCAL_REGION}:${LOCAL_ACCOUNT}:function:${functionName}`,
    memoryLimitInMB: String(memoryMb),
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** The SQS record Lambda's event source mapping delivers for a received message. */
export function sqsRecord(m: ReceivedUpdate, queueArn: string): SQSRecord {
  const now = String(Date.now());
  return {
    messageId: m.messageId,
    receiptHandle: m.receiptHandle,
    body: m.body,
    attributes: {
      ApproximateReceiveCount: String(m.receiveCount),
      SentTimestamp: now,
      SenderId: LOCAL_ACCOUNT,
      ApproximateFirstReceiveTimestamp: now,
    },
    messageAttributes: {},
    md5OfBody: createHash('md5').update(m.body).digest('hex'),
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: LOCAL_REGION,
  };
}

export function sqsEvent(batch: readonly ReceivedUpdate[], queueArn: string): SQSEvent {
  return { Records: batch.map((m) => sqsRecord(m, queueArn)) };
}

// ---- API Gateway ----------------------------------------------------------------------------

export interface RestApiRequest {
  method: string;
  /** Path with query string, e.g. `/v1/leases?status=active`. */
  url: string;
  /** Header pairs as sent (names keep their case, as API Gateway passes them). */
  headers: ReadonlyArray<readonly [string, string]>;
  /** null: no body. */
  body: string | null;
  /** The caller API Gateway authenticated with IAM auth; null = no identity. */
  principal: string | null;
  sourceIp: string;
}

/** Which API and stage the event comes from. */
export interface RestApiStage {
  accountId: string;
  apiId: string;
  stage: string;
}

export const LOCAL_STAGE: RestApiStage = {
  accountId: LOCAL_ACCOUNT,
  apiId: 'local',
  stage: 'local',
};

/**
 * A REST API proxy event as API Gateway builds it for `ANY /v1/{proxy+}` with IAM auth: the
 * caller's principal is `requestContext.identity.userArn`.
 */
export function restProxyEvent(
  request: RestApiRequest,
  stage: RestApiStage = LOCAL_STAGE,
): APIGatewayProxyEvent {
  const url = new URL(request.url, 'http://localhost');
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  for (const [name, value] of request.headers) {
    headers[name] = value;
    multiValueHeaders[name] = [...(multiValueHeaders[name] ?? []), value];
  }
  const query: Record<string, string> = {};
  const multiQuery: Record<string, string[]> = {};
  for (const [key, value] of url.searchParams) {
    query[key] = value;
    multiQuery[key] = [...(multiQuery[key] ?? []), value];
  }
  const hasQuery = Object.keys(query).length > 0;
  const path = decodeURI(url.pathname);
  const now = new Date();
  const { principal } = request;
  return {
    resource: '/v1/{proxy+}',
    path,
    httpMethod: request.method,
    headers,
    multiValueHeaders,
    queryStringParameters: hasQuery ? query : null,
    multiValueQueryStringParameters: hasQuery ? multiQuery : null,
    pathParameters: { proxy: path.replace(/^\/v1\/?/, '') },
    stageVariables: null,
    body: request.body,
    isBase64Encoded: false,
    requestContext: {
      accountId: stage.accountId,
      apiId: stage.apiId,
      authorizer: undefined,
      protocol: 'HTTP/1.1',
      httpMethod: request.method,
      path: `/${stage.stage}${path}`,
      stage: stage.stage,
      requestId: randomUUID(),
      requestTime: now.toUTCString(),
      requestTimeEpoch: now.getTime(),
      resourceId: stage.apiId,
      resourcePath: '/v1/{proxy+}',
      identity: {
        accessKey: null,
        accountId: null,
        apiKey: null,
        apiKeyId: null,
        caller: principal,
        clientCert: null,
        cognitoAuthenticationProvider: null,
        cognitoAuthenticationType: null,
        cognitoIdentityId: null,
        cognitoIdentityPoolId: null,
        principalOrgId: null,
        sourceIp: request.sourceIp,
        user: principal,
        userAgent: headers['User-Agent'] ?? headers['user-agent'] ?? null,
        userArn: principal,
      },
    },
  };
}

// ---- EventBridge ----------------------------------------------------------------------------

/** The event an EventBridge schedule rule `drydock-<name>` invokes its target with. */
export function scheduledEvent(name: string): ScheduledEvent {
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: LOCAL_ACCOUNT,
    time: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region: LOCAL_REGION,
    resources: [`arn:aws:events:${LOCAL_REGION}:${LOCAL_ACCOUNT}:rule/drydock-${name}`],
    detail: {},
  };
}
