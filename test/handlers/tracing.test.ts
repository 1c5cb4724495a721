/**
 * SDK clients traced on Lambda, untouched elsewhere: the local runtime and the tests never need
 * X-Ray (Powertools' Tracer is off without AWS_EXECUTION_ENV).
 */
import { ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { sdkClientTracer } from '../../lambdas/handlers/tracing.ts';
import { createDynamoClient } from '../../lambdas/store/clients.ts';
import { localEndpoints } from '../support/env.ts';

const middlewareNames = (client: ReturnType<typeof createDynamoClient>) =>
  client.middlewareStack.identify().join('\n');

describe('SDK client tracing', () => {
  it('off Lambda: the client is returned as it is and works without any segment', async () => {
    const client = createDynamoClient({ endpoint: localEndpoints().dynamo });
    const captured = sdkClientTracer({})(client);
    expect(captured).toBe(client);
    expect(middlewareNames(captured)).not.toMatch(/XRay/i);
    await expect(captured.send(new ListTablesCommand({ Limit: 1 }))).resolves.toBeDefined();
    client.destroy();
  });

  it('on Lambda: every call of the client becomes an X-Ray subsegment', () => {
    const previous = process.env.AWS_EXECUTION_ENV;
    process.env.AWS_EXECUTION_ENV = 'AWS_Lambda_nodejs24.x';
    try {
      const client = createDynamoClient();
      const captured = sdkClientTracer({ POWERTOOLS_SERVICE_NAME: 'drydock-worker' })(client);
      expect(middlewareNames(captured)).toMatch(/XRay/i);
      client.destroy();
    } finally {
      if (previous === undefined) delete process.env.AWS_EXECUTION_ENV;
      else process.env.AWS_EXECUTION_ENV = previous;
    }
  });
});
