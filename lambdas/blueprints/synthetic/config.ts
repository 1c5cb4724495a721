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

const commandRuleSchema = z
  .object({
    /** Regex tested against the argv joined by spaces, or the script. First match wins. */
    match: regex,
    /** @default 0 */
    exitCode: z.number().int().min(0).max(255).default(0),
    /** @default '' */
    stdout: z.string().default(''),
    /** @default '' */
    stderr: z.string().default(''),
    /** How long the command "runs"; past the spec's timeout it times out. @default 0 */
    delayMs: z.number().min(0).default(0),
  })
  .strict();

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
