/** The production cloud clients: created lazily, once per process, and typed for plug-ins. */
import { EC2Client } from '@aws-sdk/client-ec2';
import { SSMClient } from '@aws-sdk/client-ssm';
import { describe, expect, it } from 'vitest';
import { awsCloudClients, requireClient } from '../../lambdas/blueprints/cloud-clients.ts';

describe('awsCloudClients', () => {
  it('creates each client on first use and reuses it', () => {
    const clients = awsCloudClients({ region: 'eu-west-1' });
    const ssm = clients.ssm;
    expect(ssm).toBeInstanceOf(SSMClient);
    expect(clients.ssm).toBe(ssm);
    expect(clients.ec2).toBeInstanceOf(EC2Client);
  });

  it('tells a plug-in which client the runtime lacks', () => {
    expect(() => requireClient({}, 'ssm')).toThrow(/needs the ssm client/);
    const fake = new SSMClient({ region: 'eu-west-1' });
    expect(requireClient({ ssm: fake }, 'ssm')).toBe(fake);
  });
});
