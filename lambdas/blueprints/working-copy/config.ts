/**
 * The working-copy blueprint's config: which host leases it takes, where clones live on the
 * host, and a timeout for every kind of git call (a hung fetch is killed, never waited on).
 */
import { z } from 'zod';
import type { ConfiguredBlueprint } from '../../core/blueprint.ts';

const seconds = (fallback: number) => z.number().int().min(1).max(3600).default(fallback);

export const workingCopyConfigSchema = z
  .object({
    /** The host lease each working copy takes (through the `leases` port). */
    host: z
      .object({
        type: z.string().min(1).default('host'),
        attributes: z.record(z.string(), z.string()).default({}),
        /** Only hosts of these blueprints (e.g. `["local"]`). @default any host blueprint */
        blueprintIds: z.array(z.string().min(1)).min(1).optional(),
      })
      .strict()
      .default({ type: 'host', attributes: {} }),
    /**
     * Where clones live on the host, relative to the host lease's working directory (or
     * absolute). Each repository set gets `<root>/<key>/`, reused by later working copies with
     * the same set on that host.
     */
    root: z
      .string()
      .min(1)
      .regex(/^[A-Za-z0-9._/-]+$/, 'root is a plain path (letters, digits, ._/-)')
      .refine((p) => !p.split('/').includes('..'), 'root may not contain ..')
      .default('working-copies'),
    /** `git -c name=value` for every git call (e.g. `{"http.lowSpeedTime": "30"}`). */
    gitConfig: z.record(z.string().regex(/^[A-Za-z0-9.-]+$/), z.string()).default({}),
    /** One timeout per kind of git call (seconds). */
    timeouts: z
      .object({
        setup: seconds(120),
        fetch: seconds(600),
        checkout: seconds(300),
        merge: seconds(300),
        clean: seconds(300),
        fsck: seconds(600),
      })
      .strict()
      .default({ setup: 120, fetch: 600, checkout: 300, merge: 300, clean: 300, fsck: 600 }),
    /** How long to wait before looking at a running git call again. */
    pollSeconds: z.number().int().min(1).max(60).default(1),
  })
  .strict();

export type WorkingCopyConfig = z.output<typeof workingCopyConfigSchema>;
export type WorkingCopyBlueprint = ConfiguredBlueprint<WorkingCopyConfig>;
