/**
 * What the lease API accepts and returns: request bodies and queries (bounded at the edge, so
 * nothing oversized reaches the engine: limits.ts) and the JSON shapes of leases, commands and log pages
 * as openapi.yaml documents them.
 */
import { z } from 'zod';
import { MAX_COMMAND_TIMEOUT_SECONDS } from '../core/command-spec.ts';
import { MAX_HOLD_SECONDS } from '../core/lease-hold.ts';
import {
  BLUEPRINT_STATES,
  type CommandRecord,
  LEASE_STATUSES,
  type Lease,
  type LogEvent,
  RESOURCE_STATUSES,
} from '../core/model.ts';
import { blueprintIdSchema, nameSchema } from '../core/names.ts';
import { parentResourceOf } from '../core/plugin-ports.ts';
import { MAX_DEAD_LETTERS_LISTED, MAX_PAGE_SIZE } from '../core/use-cases.ts';
import { MAX_WAIT_TIMEOUT_SECONDS } from '../core/wait-deadline.ts';
import { workingCopySpecSchema } from '../core/working-copy-spec.ts';

import { boundedBytes, boundedRecord, boundedTotal } from './limits.ts';

// ---- requests ---------------------------------------------------------------------------------

const attributes = boundedRecord(nameSchema('attribute name'), z.string().max(256), {
  count: 'attributesCount',
  bytes: 'attributesBytes',
  what: 'attributes',
});

export const leaseRequestBody = z
  .object({
    type: nameSchema('type'),
    attributes: attributes.optional(),
    blueprintIds: z.array(blueprintIdSchema).min(1).max(20).optional(),
    ttlSeconds: z.number().int().min(1).optional(),
    holdSeconds: z.number().int().min(1).max(MAX_HOLD_SECONDS).optional(),
    waitTimeoutSeconds: z.number().int().min(1).max(MAX_WAIT_TIMEOUT_SECONDS).optional(),
    workingCopy: workingCopySpecSchema.optional(),
  })
  .strict();

export const renewBody = z.object({ drop: z.boolean().optional() }).strict();

export const commandBody = z
  .object({
    argv: z
      .array(z.string().max(4096))
      .min(1)
      .max(1000)
      .superRefine(boundedTotal('argvBytes', 'argv (all arguments)'))
      .optional(),
    script: z
      .string()
      .min(1)
      .max(64 * 1024)
      .superRefine(boundedBytes('scriptBytes', 'script'))
      .optional(),
    timeoutSeconds: z.number().int().min(1).max(MAX_COMMAND_TIMEOUT_SECONDS).optional(),
    cwd: z.string().min(1).max(1024).optional(),
    env: boundedRecord(
      z
        .string()
        .max(256)
        .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'environment variable names are A-Z, 0-9, _'),
      z.string().max(32 * 1024),
      { count: 'envCount', bytes: 'envBytes', what: 'env' },
    ).optional(),
  })
  .strict();
// "Exactly one of argv or script" and the rest of what makes a command runnable is checked once,
// by the engine (core/command-spec.ts); this schema only bounds what reaches it.

export const blueprintPatchBody = z
  .object({
    state: z.enum(BLUEPRINT_STATES).optional(),
    limits: z.record(z.string(), z.unknown()).optional(),
    attributes: attributes.optional(),
    config: z.unknown().optional(),
    description: z.string().max(500).optional(),
  })
  .strict()
  .refine((patch) => Object.keys(patch).length > 0, {
    message: 'give at least one of state, limits, attributes, config, description',
  });

export const noQuery = z.object({}).strict();
export const leaseQuery = z.object({ place: z.enum(['true', 'false']).optional() }).strict();
const pageSize = z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).optional();
export const leaseListQuery = z
  .object({
    status: z.enum(LEASE_STATUSES).optional(),
    type: nameSchema('type').optional(),
    limit: pageSize,
    cursor: z.string().min(1).max(4096).optional(),
    order: z.enum(['oldest', 'newest']).optional(),
  })
  .strict();
export const resourceListQuery = leaseListQuery.extend({
  status: z.enum(RESOURCE_STATUSES).optional(),
});
const byteOffset = z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional();
export const commandReadQuery = z
  .object({ stdoutFrom: byteOffset, stderrFrom: byteOffset })
  .strict();
export const deadLetterQuery = z
  .object({ limit: z.coerce.number().int().min(1).max(MAX_DEAD_LETTERS_LISTED).optional() })
  .strict();

export const logQuery = z
  .object({
    after: z.string().min(1).max(200).optional(),
    limit: z.coerce.number().int().min(1).max(1000).optional(),
  })
  .strict();

// ---- responses --------------------------------------------------------------------------------

/**
 * A lease as its holder sees it: the engine's bookkeeping and the plug-in's step data left out;
 * a lease held by a resource (a working copy's host) names it as `heldBy`.
 */
export function leaseJson(lease: Lease): Omit<
  Lease,
  'waitSeq' | 'waitingFor' | 'wokenSeq' | 'slotLocks' | 'sweepAt' | 'checkedAt' | 'data'
> & {
  heldBy?: string;
} {
  const {
    waitSeq: _w,
    waitingFor: _wf,
    wokenSeq: _wk,
    slotLocks: _s,
    sweepAt: _sw,
    checkedAt: _c,
    data: _d,
    ...shown
  } = lease;
  const heldBy = parentResourceOf(lease);
  return heldBy ? { ...shown, heldBy } : shown;
}

/** A command as the contract shows it (never its environment: values may be secrets). */
export function commandJson(command: CommandRecord) {
  const { id, leaseId, status, argv, script, timeoutSeconds, createdAt } = command;
  return {
    id,
    leaseId,
    status,
    ...(argv ? { argv } : { script }),
    timeoutSeconds,
    createdAt,
    ...(command.startedAt ? { startedAt: command.startedAt } : {}),
    ...(command.cancelRequestedAt ? { cancelRequestedAt: command.cancelRequestedAt } : {}),
    ...(command.finishedAt ? { finishedAt: command.finishedAt } : {}),
    attempt: command.attempt,
    polls: command.polls ?? 0,
    ...(command.output
      ? {
          output: {
            stdout: { start: command.output.stdout.start, end: command.output.stdout.end },
            stderr: { start: command.output.stderr.start, end: command.output.stderr.end },
          },
        }
      : {}),
    ...(command.result ? { result: command.result } : {}),
    ...(command.error ? { error: command.error } : {}),
  };
}

/** A page of log events; the cursor is the last seq (read on with `?after=<cursor>`). */
export function logPage(items: LogEvent[]) {
  const last = items.at(-1);
  return { items, ...(last ? { cursor: last.seq } : {}) };
}
