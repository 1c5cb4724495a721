/**
 * Operating the local runtime with the CLI only: `drydock status` (pool gauges), `drydock dlq`
 * and `drydock dlq redrive` (the dead-letter queue), and the metric lines `--verbose` prints.
 */
import { rmSync } from 'node:fs';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeadLetterPeek } from '../../lambdas/core/dead-letters.ts';
import type { PoolStats } from '../../lambdas/core/pool-stats.ts';
import { waitFor } from '../support/env.ts';
import {
  drydock,
  drydockJson,
  expectNoJava,
  forceStop,
  leaseIdOf,
  type RuntimeProcess,
  startRuntime,
  tempDataDir,
} from './support.ts';

describe('operating the local runtime with drydock status and drydock dlq', () => {
  const dataDir = tempDataDir('ops');
  let runtime: RuntimeProcess | undefined;
  let sqs: SQSClient | undefined;

  beforeAll(async () => {
    runtime = await startRuntime(dataDir, ['--verbose']);
  }, 120_000);

  afterAll(async () => {
    sqs?.destroy();
    try {
      if (runtime) expect((await runtime.stop()).code).toBe(0);
    } finally {
      await forceStop(runtime);
      await expectNoJava(dataDir);
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);

  it('drydock status shows the pool a lease used, and --verbose printed its metric lines', async () => {
    const run = await drydock(dataDir, ['lease', '--type', 'host', '--', 'true']);
    expect(run.code, run.stderr).toBe(0);
    const leaseId = leaseIdOf(run.stderr);
    expect(leaseId).toBeDefined();

    const { pools } = await drydockJson<{ pools: PoolStats[] }>(dataDir, ['status']);
    const local = pools.find((p) => p.blueprintId === 'local');
    expect(local).toMatchObject({ type: 'local-host', resourceType: 'host', waiting: 0 });
    expect(local?.live).toBeGreaterThanOrEqual(1);
    expect(local?.oldestWaitSeconds).toBeNull();

    const table = await drydock(dataDir, ['status']);
    expect(table.code, table.stderr).toBe(0);
    const [header, ...rows] = table.stdout.trimEnd().split('\n');
    expect(header).toMatch(
      /^BLUEPRINT\s+BUILDS\s+STATE\s+LIVE\/MAX\s+LEASED\s+IDLE\s+SETUP\s+WAITING\s+OLDEST WAIT\s+HEALTH$/,
    );
    expect(rows.find((r) => r.startsWith('local '))).toMatch(
      new RegExp(`^local\\s+host\\s+enabled\\s+${local?.live}/${local?.max}\\s`),
    );

    // The lease's lifecycle as metric lines (only with --verbose).
    await waitFor(
      () =>
        /metric LeasesRequested 1 Count resourceType=host/.test(runtime?.output() ?? '') &&
        /metric LeaseTimeToActive \d+(\.\d+)? Milliseconds resourceType=host blueprint=local/.test(
          runtime?.output() ?? '',
        ),
      { timeoutMs: 10_000, message: 'metric lines for the lease in the runtime output' },
    );
  }, 120_000);

  it('a message the worker gave up on is listed by drydock dlq, redriven, and processed', async () => {
    const queues = runtime?.info.queues;
    expect(queues).toBeDefined();
    if (!queues) return;
    sqs = new SQSClient({ endpoint: queues.sqsEndpoint, region: 'us-east-1' });
    // What SQS does after maxReceiveCount failed deliveries (5 x the 30 s visibility timeout
    // locally): the update lands in the dead-letter queue, as it was sent.
    const poisoned = JSON.stringify({
      kind: 'lease',
      id: 'lease-e2epoisoned',
      reason: 'e2e poisoned',
    });
    await sqs.send(
      new SendMessageCommand({ QueueUrl: queues.deadLetterQueueUrl, MessageBody: poisoned }),
    );

    const listed = await drydockJson<DeadLetterPeek>(dataDir, ['dlq']);
    expect(listed.approximateCount).toBe(1);
    expect(listed.messages).toEqual([
      expect.objectContaining({
        about: 'update of lease lease-e2epoisoned (e2e poisoned)',
        body: poisoned,
        receiveCount: 1,
      }),
    ]);
    // Reading did not take it out: it is still there, and the table says what it was about.
    const table = await drydock(dataDir, ['dlq']);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/^MESSAGE\s+QUEUED\s+RECEIVES\s+ABOUT\n/);
    expect(table.stdout).toContain('update of lease lease-e2epoisoned (e2e poisoned)');
    expect(table.stderr).toContain('1 message in the dead-letter queue');

    const redriven = await drydock(dataDir, ['dlq', 'redrive']);
    expect(redriven.code, redriven.stderr).toBe(0);
    expect(redriven.stdout).toBe('moved 1 message back to the work queue\n');

    // The worker processed it (its log line names the message's reason), and the DLQ is empty.
    await waitFor(
      () =>
        (runtime?.output() ?? '')
          .split('\n')
          .some((line) => line.includes('update processed') && line.includes('e2e poisoned')),
      { timeoutMs: 20_000, message: 'the redriven update processed by a worker' },
    );
    const after = await drydockJson<DeadLetterPeek>(dataDir, ['dlq']);
    expect(after).toEqual({ messages: [], approximateCount: 0 });
  }, 120_000);
});
