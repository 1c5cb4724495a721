/**
 * The static-host blueprint's config: which SSM managed instances form the pool, where leases
 * work on them, what runs once when a host becomes a resource, and how commands run.
 */
import { isAbsolute, posix } from 'node:path';
import { z } from 'zod';
import type { ConfiguredBlueprint } from '../../core/blueprint.ts';
import type { InstanceSelector } from '../ssm/instances.ts';

/** EC2 instance ids (`i-` + 8 or 17 hex digits) and hybrid managed instance ids (`mi-` + 17). */
export const INSTANCE_ID = /^(i-[0-9a-f]{8,17}|mi-[0-9a-f]{17})$/;

const instanceId = z.string().regex(INSTANCE_ID, {
  error: (issue) =>
    `'${issue.input}' is not a managed instance id (i-<8 to 17 hex digits> or mi-<17 hex digits>)`,
});

const poolSchema = z.union([
  z
    .object({
      /** Every managed instance carrying all these tags (key → value) is in the pool. */
      tags: z.record(z.string().min(1), z.string()).refine((tags) => Object.keys(tags).length > 0, {
        error: 'instances.tags needs at least one tag',
      }),
    })
    .strict(),
  z
    .object({
      /** Exactly these managed instances form the pool. */
      ids: z.array(instanceId).min(1).max(50),
    })
    .strict(),
]);

const absolutePath = (what: string) =>
  z.string().refine((p) => isAbsolute(p) && posix.normalize(p) === p && p !== '/', {
    error: (issue) =>
      `${what} must be a normalised absolute path other than / (got '${issue.input}')`,
  });

export const staticHostConfigSchema = z
  .object({
    /**
     * The pool: `{ tags: { "drydock-pool": "linux-build" } }` or `{ ids: ["i-0abc…", "mi-…"] }`.
     * @default `{ tags: { "drydock-pool": <the blueprint's id> } }` (resolved by `poolOf`)
     */
    instances: poolSchema.optional(),
    /** Only Linux hosts for now (commands run through AWS-RunShellScript). @default 'linux' */
    platform: z
      .string()
      .default('linux')
      .refine((p) => p === 'linux', {
        error: (issue) =>
          `platform '${issue.input}' is not supported: static-host only supports 'linux' for now`,
      })
      .transform(() => 'linux' as const),
    /** Directory on each host under which every lease gets its own working directory. @default '/var/lib/drydock' */
    workRoot: absolutePath('workRoot').default('/var/lib/drydock'),
    /** Shell lines run once (as root, in workRoot) when a host becomes a resource. @default [] */
    setupCommands: z.array(z.string()).default([]),
    commandDefaults: z
      .object({
        /** Run lease commands as this user (via runuser). @default root (SSM's own user) */
        user: z
          .string()
          .regex(/^[a-z_][a-z0-9_-]*[$]?$/, {
            error: (issue) => `commandDefaults.user '${issue.input}' is not a valid user name`,
          })
          .optional(),
        /** Timeout of setup and housekeeping commands. @default 600 */
        timeoutSeconds: z.number().int().min(1).max(3600).default(600),
      })
      .strict()
      .prefault({}),
    /**
     * CloudWatch Logs group receiving command output (SSM's CloudWatchOutputConfig).
     * @default the `DRYDOCK_COMMAND_LOG_GROUP` environment variable the stack sets
     */
    logGroupName: z.string().min(1).max(512).optional(),
    /** How long a host may be offline before its resource is reported unhealthy. @default 300 */
    offlineGraceSeconds: z.number().int().min(0).default(300),
    /**
     * How often the sweep health-checks an active host, leased or idle, so a host that went
     * offline, was deregistered or left the pool is found without anyone using it. @default 60
     */
    healthCheckEverySeconds: z.number().int().min(30).max(86_400).default(60),
  })
  .strict();

export type StaticHostConfig = z.output<typeof staticHostConfigSchema>;
export type StaticHost = ConfiguredBlueprint<StaticHostConfig>;

/** The pool a blueprint draws from, defaults applied. */
export function poolOf(blueprint: StaticHost): InstanceSelector {
  return blueprint.config.instances ?? { tags: { 'drydock-pool': blueprint.id } };
}

/**
 * The tag every instance this deployment may command carries (`drydock:deployment=<stack>`):
 * the stack lets functions SendCommand only to instances tagged so, and sets DRYDOCK_DEPLOYMENT
 * to the value. An instance without it is not in any pool (commanding it would be AccessDenied).
 * None outside a deployment (locally), where nothing restricts SendCommand.
 */
export function deploymentTags(env: Record<string, string | undefined>): Record<string, string> {
  const deployment = env.DRYDOCK_DEPLOYMENT;
  return deployment ? { 'drydock:deployment': deployment } : {};
}

/** The pool as people read it in wait reasons and health reasons, with the tags it requires. */
export function describePool(
  pool: InstanceSelector,
  requiredTags: Record<string, string> = {},
): string {
  const tags = (t: Record<string, string>) =>
    Object.entries(t)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ');
  if ('ids' in pool) {
    const required = tags(requiredTags);
    return `ids ${pool.ids.join(', ')}${required ? ` tagged ${required}` : ''}`;
  }
  return `tags ${tags({ ...pool.tags, ...requiredTags })}`;
}
