/**
 * Who a caller is, as an owner (issue 15, point 1). API Gateway reports a SigV4 caller as the
 * principal that signed: an IAM user's ARN, or for an assumed role
 * `arn:aws:sts::<acct>:assumed-role/<role>/<session>`. The session name is chosen by whoever
 * assumes the role (a CodeBuild build id, an EC2 instance id, an ECS task) and changes on every
 * retry, so it is no security boundary and no stable identity: by default the owner of a lease,
 * an idempotency key or a command is the ROLE, and the session is kept for display only.
 *
 * The role ARN is written without its path (`arn:aws:iam::<acct>:role/<name>`): the assumed-role
 * ARN does not carry the path, and IAM role names are unique within an account whatever their
 * path, so the name alone identifies the role. An admin list entry with a path is compared the
 * same way (its path dropped).
 *
 * Every rule that compares callers (ownership, admins, listings, idempotency keys, commands)
 * goes through `callerIdentity`, so this is the one place that decides.
 */

/**
 * `role` (the default): every session of a role is one owner. `session`: each session is its
 * own owner (an operator who wants per-session isolation; the `drydock:ownerGranularity`
 * context option, OWNER_GRANULARITY in the api function).
 */
export const OWNER_GRANULARITIES = ['role', 'session'] as const;
export type OwnerGranularity = (typeof OWNER_GRANULARITIES)[number];

export interface CallerIdentity {
  /** The stable owner: what leases, commands and idempotency keys are keyed by. */
  owner: string;
  /** The assumed-role session name, when the caller is one: for display, never for access. */
  session?: string;
}

const ASSUMED_ROLE = /^arn:(aws[a-z-]*):sts::(\d{12}):assumed-role\/([^/]+)\/([^/]+)$/;
const ROLE = /^arn:(aws[a-z-]*):iam::(\d{12}):role\/(?:.*\/)?([^/]+)$/;

/** The owner a signing principal stands for, under the chosen granularity. */
export function callerIdentity(
  principal: string,
  granularity: OwnerGranularity = 'role',
): CallerIdentity {
  const assumed = ASSUMED_ROLE.exec(principal);
  if (!assumed) return { owner: canonicalRole(principal) };
  const [, partition, account, role, session] = assumed;
  if (granularity === 'session') return { owner: principal, session: session as string };
  return { owner: `arn:${partition}:iam::${account}:role/${role}`, session: session as string };
}

/** A role ARN with its path dropped (see the module comment); anything else unchanged. */
function canonicalRole(arn: string): string {
  const role = ROLE.exec(arn);
  return role ? `arn:${role[1]}:iam::${role[2]}:role/${role[3]}` : arn;
}

/**
 * Whether a principal may administer: listed in `list` (comma-separated ARNs, `*` admitting
 * everyone). Admins are always matched by role, whatever the owner granularity: listing a role
 * admits all of its sessions; listing one session admits that session only.
 */
export function isAdminPrincipal(principal: string, list: string): boolean {
  const admins = list
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  if (admins.includes('*') || admins.includes(principal)) return true;
  const { owner } = callerIdentity(principal, 'role');
  return admins.some((admin) => canonicalRole(admin) === owner);
}
