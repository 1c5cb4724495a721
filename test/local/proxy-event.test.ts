/**
 * The local API server hands the api handler what API Gateway would: a REST proxy event for
 * `ANY /v1/{proxy+}` with the caller's principal in requestContext.identity.
 */
import { describe, expect, it } from 'vitest';
import { toProxyEvent } from '../../lib/local/http-server.ts';

describe('toProxyEvent', () => {
  const event = toProxyEvent(
    {
      method: 'GET',
      url: '/v1/leases?status=active&type=host&type=vm',
      rawHeaders: [
        'Host',
        '127.0.0.1:8787',
        'Authorization',
        'Bearer x',
        'Idempotency-Key',
        'k1',
        'User-Agent',
        'drydock-cli',
      ],
      body: '',
      sourceIp: '127.0.0.1',
    },
    'local:alice',
  );

  it('keeps the path, method, headers (as sent) and query, like a REST proxy integration', () => {
    expect(event).toMatchObject({
      resource: '/v1/{proxy+}',
      path: '/v1/leases',
      httpMethod: 'GET',
      pathParameters: { proxy: 'leases' },
      headers: { Host: '127.0.0.1:8787', 'Idempotency-Key': 'k1', 'User-Agent': 'drydock-cli' },
      queryStringParameters: { status: 'active', type: 'vm' },
      multiValueQueryStringParameters: { status: ['active'], type: ['host', 'vm'] },
      body: null,
      isBase64Encoded: false,
    });
  });

  it('never passes the bearer token on', () => {
    expect(JSON.stringify(event)).not.toContain('Bearer');
  });

  it('names the caller as API Gateway does for IAM auth', () => {
    expect(event.requestContext).toMatchObject({
      stage: 'local',
      resourcePath: '/v1/{proxy+}',
      path: '/local/v1/leases',
      httpMethod: 'GET',
      identity: {
        userArn: 'local:alice',
        caller: 'local:alice',
        sourceIp: '127.0.0.1',
        userAgent: 'drydock-cli',
      },
    });
    expect(event.requestContext.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });
});
