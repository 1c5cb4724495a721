/**
 * The ec2-host blueprint's config: what to launch (a launch template or an AMI), where (subnets,
 * one per AZ, in order), which instance types (in order), how to pay (spot, on-demand, or spot
 * with an on-demand fallback), and the readiness command that must succeed over SSM before the
 * host is active. The setup deadline is the blueprint's `limits.setupTimeoutSeconds`.
 */
import { isAbsolute, posix } from 'node:path';
import { z } from 'zod';
import type { ConfiguredBlueprint } from '../../core/blueprint.ts';
import { ValidationError } from '../../core/errors.ts';

export const CAPACITY_MODES = ['spot', 'spot-then-on-demand', 'on-demand'] as const;
export type CapacityMode = (typeof CAPACITY_MODES)[number];
/** What a resource really got: its `capacity` attribute. */
export type Market = 'spot' | 'on-demand';

const launchTemplateSchema = z
  .object({
    id: z
      .string()
      .regex(/^lt-[0-9a-f]+$/, { error: (i) => `'${i.input}' is not a launch template id (lt-…)` })
      .optional(),
    name: z.string().min(3).max(128).optional(),
    /** A version number, `$Latest` or `$Default`. @default '$Default' (EC2's own default) */
    version: z
      .string()
      .regex(/^(\d+|\$Latest|\$Default)$/)
      .optional(),
  })
  .strict()
  .refine((t) => (t.id === undefined) !== (t.name === undefined), {
    error: 'launchTemplate needs exactly one of id or name',
  });

export const ec2HostConfigSchema = z
  .object({
    /** A launch template (by id or name, optionally a version). At most one of launchTemplate / imageId. */
    launchTemplate: launchTemplateSchema.optional(),
    /**
     * An AMI id (ami-…) or an SSM parameter EC2 resolves at launch (`resolve:ssm:<name>`).
     * @default DEFAULT_IMAGE (the latest Amazon Linux 2023, whose SSM agent runs from boot) when no launch template is given
     */
    imageId: z
      .string()
      .regex(/^(ami-[0-9a-f]+|resolve:ssm:\S+)$/, {
        error: (i) => `'${i.input}' is not an AMI id (ami-…) or resolve:ssm:<parameter>`,
      })
      .optional(),
    /** Instance types to try, in order (the first with capacity wins). @default DEFAULT_INSTANCE_TYPES */
    instanceTypes: z
      .array(z.string().regex(/^[a-z0-9-]+\.[a-z0-9-]+$/))
      .min(1)
      .max(20)
      .default(['m7i.large', 'm6i.large', 'm5.large']),
    /**
     * Subnets to try, one per AZ, in order.
     * @default the `DRYDOCK_SUBNET_IDS` environment variable (comma-separated) the stack sets
     */
    subnetIds: z
      .array(
        z.string().regex(/^subnet-[0-9a-f]+$/, {
          error: (i) => `'${i.input}' is not a subnet id (subnet-…)`,
        }),
      )
      .min(1)
      .max(16)
      .optional(),
    /**
     * Security groups of the instance.
     * @default the `DRYDOCK_SECURITY_GROUP_IDS` environment variable (comma-separated) the stack sets (its hosts' group, no inbound rules), unless a launch template is given (it keeps its own)
     */
    securityGroupIds: z
      .array(z.string().regex(/^sg-[0-9a-f]+$/))
      .min(1)
      .max(5)
      .optional(),
    /** @default the `DRYDOCK_INSTANCE_PROFILE_ARN` environment variable the stack sets */
    instanceProfileArn: z.string().startsWith('arn:').optional(),
    /** @default 'spot-then-on-demand' */
    capacity: z.enum(CAPACITY_MODES).default('spot-then-on-demand'),
    /** Highest spot price per hour, in USD (EC2's default: the on-demand price). */
    maxSpotPrice: z
      .string()
      .regex(/^\d+(\.\d+)?$/)
      .optional(),
    /** Root volume size; the AMI's own size when not given. */
    rootVolumeGiB: z.number().int().min(1).max(16_384).optional(),
    /** Extra instance tags (the drydock:* tags are always set and cannot be overridden). */
    tags: z
      .record(z.string().min(1).max(128), z.string().max(256))
      .refine((t) => !Object.keys(t).some((k) => k.startsWith('drydock:')), {
        error: 'tags may not use the drydock: prefix (Drydock sets those itself)',
      })
      .optional(),
    /** Run over SSM once the agent is online; the host is active when it exits 0. @default 'cloud-init status --wait' */
    readinessCommand: z.string().min(1).default('cloud-init status --wait'),
    /**
     * CloudWatch Logs group receiving command output (streamed while commands run).
     * @default the `DRYDOCK_COMMAND_LOG_GROUP` environment variable the stack sets
     */
    logGroupName: z.string().min(1).max(512).optional(),
    /** Where leases get their working directories on the host. @default '/var/lib/drydock' */
    workRoot: z
      .string()
      .refine((p) => isAbsolute(p) && posix.normalize(p) === p && p !== '/', {
        error: (i) => `workRoot must be a normalised absolute path other than / (got '${i.input}')`,
      })
      .default('/var/lib/drydock'),
  })
  .strict()
  .refine((c) => c.launchTemplate === undefined || c.imageId === undefined, {
    error: 'give launchTemplate or imageId, not both',
  });

/**
 * Amazon Linux 2023 (x86_64), resolved by EC2 at launch: its SSM agent starts at boot. The launch
 * reads this public parameter with the caller's permissions (ssm:GetParameters; the stack grants
 * exactly this one, lib/constructs/host-fleet.ts).
 */
export const DEFAULT_IMAGE_PARAMETER =
  '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64';
export const DEFAULT_IMAGE = `resolve:ssm:${DEFAULT_IMAGE_PARAMETER}`;

export type Ec2HostConfig = z.output<typeof ec2HostConfigSchema>;
export type Ec2Host = ConfiguredBlueprint<Ec2HostConfig>;

/** The instance profile: the blueprint's own, or the one the stack created. */
export function instanceProfileOf(
  blueprint: Ec2Host,
  env: Record<string, string | undefined>,
): string {
  const arn = blueprint.config.instanceProfileArn ?? env.DRYDOCK_INSTANCE_PROFILE_ARN;
  if (!arn) {
    throw new ValidationError(
      `blueprint '${blueprint.id}' has no instanceProfileArn and DRYDOCK_INSTANCE_PROFILE_ARN is not set: give the blueprint an instance profile with AmazonSSMManagedInstanceCore (the stack sets the variable)`,
    );
  }
  return arn;
}

/** The log group: the blueprint's own, or the stack's. */
export function logGroupOf(blueprint: Ec2Host, env: Record<string, string | undefined>) {
  return blueprint.config.logGroupName ?? env.DRYDOCK_COMMAND_LOG_GROUP;
}

/** The subnets: the blueprint's own, or the stack's (DRYDOCK_SUBNET_IDS). */
export function subnetsOf(blueprint: Ec2Host, env: Record<string, string | undefined>): string[] {
  const fromEnv = (env.DRYDOCK_SUBNET_IDS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const subnets = blueprint.config.subnetIds ?? fromEnv;
  if (subnets.length === 0) {
    throw new ValidationError(
      `blueprint '${blueprint.id}' has no subnetIds and DRYDOCK_SUBNET_IDS is not set: list the subnets (one per AZ) to launch in`,
    );
  }
  return subnets;
}

/**
 * The security groups: the blueprint's own, else the stack's (DRYDOCK_SECURITY_GROUP_IDS), else
 * none (EC2 uses the VPC's default group). A launch template keeps its own groups: the stack's
 * default would override them.
 */
export function securityGroupsOf(
  blueprint: Ec2Host,
  env: Record<string, string | undefined>,
): string[] | undefined {
  const { securityGroupIds, launchTemplate } = blueprint.config;
  if (securityGroupIds || launchTemplate) return securityGroupIds;
  const fromEnv = (env.DRYDOCK_SECURITY_GROUP_IDS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return fromEnv.length > 0 ? fromEnv : undefined;
}

/** Markets a lease may get from this blueprint, in the order they are tried. */
export function marketsFor(mode: CapacityMode, wants: string | undefined): Market[] {
  if (wants === 'on-demand') return mode === 'spot' ? [] : ['on-demand'];
  if (wants === 'spot') return mode === 'on-demand' ? [] : ['spot'];
  switch (mode) {
    case 'spot':
      return ['spot'];
    case 'on-demand':
      return ['on-demand'];
    case 'spot-then-on-demand':
      return ['spot', 'on-demand'];
  }
}
