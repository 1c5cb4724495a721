/**
 * The cloud SDK clients plug-ins use, typed into the core's `CloudClients` port by declaration
 * merging (the core itself imports no AWS SDK), and their one production factory.
 *
 * One client per service per process, created on first use: a Lambda container serves many
 * invocations, and a client holds its connection pool and credentials cache. Retries: the SDK's
 * standard mode with 3 attempts; the engine's own re-enqueue with backoff handles longer
 * outages (a step that throws TemporaryError is redelivered by SQS).
 */
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { EC2Client } from '@aws-sdk/client-ec2';
import { SSMClient } from '@aws-sdk/client-ssm';
import type { CloudClients } from '../core/blueprint.ts';

declare module '../core/blueprint.ts' {
  interface CloudClients {
    /** Absent where no cloud is configured (the local runtime, plug-in unit tests). */
    ec2?: EC2Client;
    ssm?: SSMClient;
    logs?: CloudWatchLogsClient;
  }
}

/** Clients created lazily, once each, for this process (the composition root calls this once). */
export function awsCloudClients(
  options: {
    region?: string;
    /** Wraps each client as it is created (X-Ray subsegments per call). @default identity */
    capture?: <T>(client: T) => T;
  } = {},
): CloudClients {
  const config = { maxAttempts: 3, ...(options.region ? { region: options.region } : {}) };
  const capture = options.capture ?? (<T>(client: T) => client);
  let ec2: EC2Client | undefined;
  let ssm: SSMClient | undefined;
  let logs: CloudWatchLogsClient | undefined;
  return {
    get ec2() {
      ec2 ??= capture(new EC2Client(config));
      return ec2;
    },
    get ssm() {
      ssm ??= capture(new SSMClient(config));
      return ssm;
    },
    get logs() {
      logs ??= capture(new CloudWatchLogsClient(config));
      return logs;
    },
  };
}

/** A plug-in's way to require a client, with an error that says what to configure. */
export function requireClient<K extends keyof CloudClients>(
  clients: CloudClients,
  name: K,
): NonNullable<CloudClients[K]> {
  const client = clients[name];
  if (!client) {
    throw new Error(
      `this blueprint type needs the ${String(name)} client, which this runtime does not provide (it runs only on AWS, or in tests with a fake)`,
    );
  }
  return client as NonNullable<CloudClients[K]>;
}
