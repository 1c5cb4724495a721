/**
 * The synthetic blueprint's config: what is scripted (failures, boot delays, vanishing hosts,
 * command results). Parsed once at the edge; every object is strict so a misspelt key is refused
 * by name.
 */
import { z } from 'zod';
import type { ConfiguredBlueprint } from '../../core/blueprint.ts';
import { DrydockError } from '../../core/errors.ts';

const failTimes = z.number().int().min(0).default(0);

const regex = z.string().superRefine((pattern, ctx) => {
  try {
    new RegExp(pattern);
  } catch (err) {
    ctx.addIssue({
      code: 'custom',
      message: `'${pattern}' is not a valid regular expression: ${(err as Error).message}`,
    });
  }
});

/** Output a running command prints `afterMs` after it started. */
const outputChunkSchema = z
  .object({
    afterMs: z.number().min(0),
    /** @default '' */
    stdout: z.string().default(''),
    /** @default '' */
    stderr: z.string().default(''),
  })
  .strict();

const commandRuleSchema = z
  .object({
    /** Regex tested against the argv joined by spaces, or the script. First match wins. */
    match: regex,
    /** @default 0 */
    exitCode: z.number().int().min(0).max(255).default(0),
    /** Printed when the command ends (after every chunk). @default '' */
    stdout: z.string().default(''),
    /** Printed when the command ends (after every chunk). @default '' */
    stderr: z.string().default(''),
    /** How long the command "runs"; past the command's timeout it times out. @default 0 */
    delayMs: z.number().min(0).default(0),
    /**
     * Output that appears while the command runs, in this order, each `afterMs` after the start
     * (so a poll sees it arrive in pieces). @default []
     */
    chunks: z.array(outputChunkSchema).default([]),
  })
  .strict()
  .superRefine((rule, ctx) => {
    // A chunk the script could never show is a mistake in the script: say so at the edge.
    rule.chunks.forEach((chunk, i) => {
      const previous = rule.chunks[i - 1];
      if (previous !== undefined && chunk.afterMs < previous.afterMs) {
        ctx.addIssue({
          code: 'custom',
          path: ['chunks', i, 'afterMs'],
          message: `chunks must be in time order: afterMs ${chunk.afterMs} comes after ${previous.afterMs}`,
        });
      }
      if (chunk.afterMs > rule.delayMs) {
        ctx.addIssue({
          code: 'custom',
          path: ['chunks', i, 'afterMs'],
          message: `chunk afterMs ${chunk.afterMs} is after the command ends (delayMs ${rule.delayMs}) of '${rule.match}'`,
        });
      }
    });
  });

export type CommandRule = z.output<typeof commandRuleSchema>;

export const syntheticConfigSchema = z
  .object({
    /** allocateResource throws TemporaryError for the first `failTimes` calls of the blueprint. */
    allocation: z
      .object({ failTimes, failMessage: z.string().min(1).default('synthetic allocation failure') })
      .strict()
      .prefault({}),
    activation: z
      .object({
        /** Seconds from host creation until activateResource reports active. @default 0 */
        delaySeconds: z.number().min(0).default(0),
        /** The first `failTimes` resources of the blueprint fail activation (every attempt). */
        failTimes,
        /**
         * Besides those, this share (0..1) of all its resources fails activation (every
         * attempt), chosen by a hash of the resource id: failures spread over a long run
         * instead of all at its start, and cost no record. @default none
         */
        failShare: z.number().min(0).max(1).optional(),
        failMessage: z.string().min(1).default('synthetic activation failure'),
      })
      .strict()
      .prefault({}),
    /** activateLease throws for the first `failTimes` calls of the blueprint. */
    leaseActivation: z
      .object({
        failTimes,
        failMessage: z.string().min(1).default('synthetic lease activation failure'),
      })
      .strict()
      .prefault({}),
    /** A host disappears after this many commands, or this many seconds after creation. */
    vanish: z
      .object({
        afterCommands: z.number().int().positive().optional(),
        afterSeconds: z.number().positive().optional(),
      })
      .strict()
      .prefault({}),
    /** Scripted command results; unmatched commands behave like `echo`. @default [] */
    commands: z.array(commandRuleSchema).default([]),
  })
  .strict();

export type SyntheticConfig = z.output<typeof syntheticConfigSchema>;
export type Synthetic = ConfiguredBlueprint<SyntheticConfig>;

/** A scripted failure (not temporary): breaks what it happens to. */
export class SyntheticFailure extends DrydockError {
  constructor(message: string, context: Record<string, unknown> = {}) {
    super('synthetic_failure', message, { context });
    this.name = 'SyntheticFailure';
  }
}
