/**
 * What a blueprint definition may say, and the check of a definition against the registry (its
 * type exists, builds the resource type, and accepts the config). Creating and updating
 * blueprints both pass through parseBlueprint.
 */
import { z } from 'zod';
import type { Engine } from './engine.ts';
import { ValidationError } from './errors.ts';
import { minIdleScheduleSchema } from './min-idle.ts';
import { BLUEPRINT_STATES } from './model.ts';
import { blueprintIdSchema, nameSchema } from './names.ts';
import { formatZodIssues } from './validation.ts';

/**
 * The longest setup a blueprint may ask for (`limits.setupTimeoutSeconds`): a day. The setup
 * workflow's own timeout is derived from it (lib/constructs/setup-workflow.ts).
 */
export const MAX_SETUP_TIMEOUT_SECONDS = 86400;

const attributesSchema = z.record(nameSchema('attribute name'), z.string().max(256));

export const blueprintInputSchema = z
  .object({
    id: blueprintIdSchema,
    type: z.string().min(1),
    resourceType: nameSchema('resourceType').default('host'),
    description: z.string().max(500).optional(),
    attributes: attributesSchema.default({}),
    state: z.enum(BLUEPRINT_STATES).default('enabled'),
    limits: z
      .object({
        maxResources: z.number().int().min(1).max(1000).default(5),
        leasesPerResource: z.number().int().min(1).max(100).default(1),
        reclaimOnRelease: z.boolean().default(false),
        idleTtlSeconds: z.number().int().min(0).default(600),
        idleGraceSeconds: z.number().int().min(0).default(30),
        maxAgeSeconds: z.number().int().min(1).optional(),
        maxUses: z.number().int().min(1).optional(),
        setupTimeoutSeconds: z.number().int().min(1).max(MAX_SETUP_TIMEOUT_SECONDS).default(900),
        minIdle: z.number().int().min(0).max(1000).default(0),
        minIdleSchedule: minIdleScheduleSchema.optional(),
      })
      .strict()
      .superRefine((limits, ctx) => {
        // A warm pool counts toward the cap: more idle than the cap could never be kept.
        const over = (n: number) => n > limits.maxResources;
        if (over(limits.minIdle)) {
          ctx.addIssue({
            code: 'custom',
            path: ['minIdle'],
            message: `minIdle ${limits.minIdle} exceeds maxResources ${limits.maxResources}; lower it or raise maxResources`,
          });
        }
        limits.minIdleSchedule?.forEach((w, i) => {
          if (over(w.minIdle)) {
            ctx.addIssue({
              code: 'custom',
              path: ['minIdleSchedule', i, 'minIdle'],
              message: `minIdle ${w.minIdle} exceeds maxResources ${limits.maxResources}; lower it or raise maxResources`,
            });
          }
        });
      })
      .default({
        maxResources: 5,
        leasesPerResource: 1,
        reclaimOnRelease: false,
        idleTtlSeconds: 600,
        idleGraceSeconds: 30,
        setupTimeoutSeconds: 900,
        minIdle: 0,
      }),
    config: z.unknown().default({}),
  })
  .strict();

export type BlueprintInput = z.input<typeof blueprintInputSchema>;

/** A blueprint definition, with defaults applied, that the registry can build. */
export function parseBlueprint(
  engine: Engine,
  input: unknown,
): z.output<typeof blueprintInputSchema> {
  const parsed = blueprintInputSchema.safeParse(input);
  if (!parsed.success) {
    throw new ValidationError(`invalid blueprint: ${formatZodIssues(parsed.error)}`);
  }
  const plugin = engine.registry.get(parsed.data.type);
  if (!plugin) {
    throw new ValidationError(
      `blueprint type '${parsed.data.type}' is not offered here; this deployment offers: ${engine.registry.types().join(', ')}`,
    );
  }
  if (!plugin.resourceTypes.includes(parsed.data.resourceType)) {
    throw new ValidationError(
      `blueprint type '${parsed.data.type}' builds ${plugin.resourceTypes.join(', ')}, not '${parsed.data.resourceType}'`,
    );
  }
  const config = plugin.configSchema.safeParse(parsed.data.config ?? {});
  if (!config.success) {
    throw new ValidationError(
      `invalid ${parsed.data.type} config: ${formatZodIssues(config.error)}`,
    );
  }
  return parsed.data;
}
