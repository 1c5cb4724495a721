/**
 * What a blueprint definition may say, and the check of a definition against the registry (its
 * type exists, builds the resource type, and accepts the config). Creating and updating
 * blueprints both pass through parseBlueprint.
 */
import { z } from 'zod';
import type { Engine } from './engine.ts';
import { ValidationError } from './errors.ts';
import { BLUEPRINT_STATES } from './model.ts';
import { blueprintIdSchema, nameSchema } from './names.ts';
import { formatZodIssues } from './validation.ts';

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
        setupTimeoutSeconds: z.number().int().min(1).max(86400).default(900),
      })
      .strict()
      .default({
        maxResources: 5,
        leasesPerResource: 1,
        reclaimOnRelease: false,
        idleTtlSeconds: 600,
        idleGraceSeconds: 30,
        setupTimeoutSeconds: 900,
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
