/**
 * `drydock dlq` and `drydock dlq redrive` (admin): what Drydock gave up on, and putting it
 * back once the cause is fixed, through the API (GET /v1/admin/dlq, POST
 * /v1/admin/dlq/redrive), so an operator needs neither the AWS console nor SQS permissions.
 */
import type { DeadLetterPeek, RedriveStarted } from '../../lambdas/core/dead-letters.ts';
import { plural } from '../../lambdas/core/engine.ts';
import type { ApiClient } from './api.ts';
import { age, clip, type Io, printJson, table } from './output.ts';

export async function dlqFlow(client: ApiClient, io: Io, limit?: number): Promise<number> {
  const peek = await client.get<DeadLetterPeek>('/v1/admin/dlq', { query: { limit } });
  if (io.json) {
    printJson(io, peek);
    return 0;
  }
  if (peek.messages.length === 0) {
    io.err('drydock: the dead-letter queue is empty\n');
    return 0;
  }
  io.out(
    table(
      ['MESSAGE', 'QUEUED', 'RECEIVES', 'ABOUT'],
      peek.messages.map((m) => [m.messageId, age(m.sentAt), m.receiveCount, clip(m.about, 120)]),
    ),
  );
  io.err(
    `drydock: ${plural(peek.approximateCount, 'message')} in the dead-letter queue; fix the cause, then \`drydock dlq redrive\`\n`,
  );
  return 0;
}

export async function redriveFlow(client: ApiClient, io: Io): Promise<number> {
  const { redrive } = await client.post<{ redrive: RedriveStarted }>(
    '/v1/admin/dlq/redrive',
    undefined,
  );
  if (io.json) {
    printJson(io, { redrive });
    return 0;
  }
  io.out(
    redrive.mode === 'moved'
      ? `moved ${plural(redrive.moved, 'message')} back to the work queue\n`
      : `started moving about ${plural(redrive.approximateCount, 'message')} back to the work queue (SQS move task ${redrive.taskHandle})\n`,
  );
  return 0;
}
