/**
 * Listing leases, resources and blueprints, and managing blueprints.
 */
import { readFileSync } from 'node:fs';
import type { Blueprint, Resource } from '../../lambdas/core/model.ts';
import type { ApiClient } from './api.ts';
import type { ApiLease } from './lease.ts';
import { leaseReasonText, leaseStatusText } from './lease-text.ts';
import { age, CliError, clip, type Io, printJson, table } from './output.ts';

export type ApiResource = Omit<Resource, 'slotLocks' | 'sweepAt'> &
  Partial<Pick<Resource, 'slotLocks'>>;
export type ApiBlueprint = Blueprint;

interface Filters {
  status?: string;
  type?: string;
  /** Most items to show. */
  limit?: number;
  /** Destroyed ones too (the API lists them only by type and on request). */
  all?: boolean;
  /** Newest first, for the destroyed ones (the API's `order`). */
  order?: 'newest';
}

/** Ended leases stay in the default `drydock leases` view this long. */
const RECENTLY_ENDED_MS = 60 * 60 * 1000;
/** Ended leases looked at per resource type for that view. */
const RECENTLY_ENDED_LOOKUP = 20;

const PAGE = 100;

/** Follows the API's cursors until `limit` items. */
async function listAll<T>(client: ApiClient, path: string, filters: Filters): Promise<T[]> {
  const limit = filters.limit ?? 1000;
  const items: T[] = [];
  let cursor: string | undefined;
  do {
    const page = await client.get<{ items: T[]; cursor?: string }>(path, {
      query: {
        status: filters.status,
        type: filters.type,
        limit: Math.min(PAGE, limit - items.length),
        cursor,
        order: filters.order,
      },
    });
    items.push(...page.items);
    cursor = page.cursor;
  } while (cursor && items.length < limit);
  return latestById(items).slice(0, limit);
}

/**
 * Each object once, in its latest version, where first seen: an admin's lease listing, or live
 * plus destroyed, can meet one object twice when it changed status while being listed.
 */
export function latestById<T>(items: T[]): T[] {
  const latest = new Map<unknown, T>();
  for (const item of items) {
    const { id, version } = item as { id?: unknown; version?: number };
    const seen = latest.get(id) as { version?: number } | undefined;
    if (!seen || (version ?? 0) > (seen.version ?? 0)) latest.set(id, item);
  }
  const shown = new Set<unknown>();
  return items.flatMap((item) => {
    const { id } = item as { id?: unknown };
    if (shown.has(id)) return [];
    shown.add(id);
    return [latest.get(id) as T];
  });
}

/**
 * Live items (the API's default listing), plus destroyed ones when asked for. Destroyed leases
 * and resources are indexed by type only: without --type, every type a blueprint builds.
 */
async function listWithHistory<T>(client: ApiClient, path: string, filters: Filters): Promise<T[]> {
  const wantDestroyed = filters.status === 'destroyed' || (filters.all && !filters.status);
  if (!wantDestroyed || filters.type) {
    const live = filters.status === 'destroyed' ? [] : await listAll<T>(client, path, filters);
    const destroyed = wantDestroyed
      ? await listAll<T>(client, path, { ...filters, status: 'destroyed' })
      : [];
    return latestById([...live, ...destroyed]);
  }
  const { items: blueprints } = await client.get<{ items: ApiBlueprint[] }>('/v1/blueprints');
  const types = [...new Set(blueprints.map((b) => b.resourceType))].sort();
  const live = filters.status === 'destroyed' ? [] : await listAll<T>(client, path, filters);
  const destroyed = await Promise.all(
    types.map((type) => listAll<T>(client, path, { ...filters, status: 'destroyed', type })),
  );
  return latestById([...live, ...destroyed.flat()]);
}

function byNewest<T>(items: T[], at: (item: T) => string | undefined): T[] {
  return [...items].sort((a, b) => (at(b) ?? '').localeCompare(at(a) ?? ''));
}

/**
 * Current leases plus, unless a status is asked for, those that ended in the last hour (a lease
 * is destroyed moments after it is released, and its holder still wants to see how it ended).
 * `--all` shows every ended lease still kept.
 */
async function leasesToShow(client: ApiClient, filters: Filters): Promise<ApiLease[]> {
  if (filters.all || filters.status)
    return listWithHistory<ApiLease>(client, '/v1/leases', filters);
  const [live, ended] = await Promise.all([
    listAll<ApiLease>(client, '/v1/leases', filters),
    listWithHistory<ApiLease>(client, '/v1/leases', {
      ...filters,
      status: 'destroyed',
      order: 'newest',
      limit: RECENTLY_ENDED_LOOKUP,
    }),
  ]);
  const since = Date.now() - RECENTLY_ENDED_MS;
  return [...live, ...ended.filter((l) => Date.parse(l.destroyedAt ?? l.updatedAt) >= since)];
}

export async function listLeases(client: ApiClient, filters: Filters, io: Io): Promise<number> {
  const leases = byNewest(await leasesToShow(client, filters), (l) => l.requestedAt);
  if (io.json) {
    printJson(io, leases);
    return 0;
  }
  if (leases.length === 0) {
    io.err(
      `drydock: no leases${describeFilters(filters)}${filters.all ? '' : ' (older ended ones: drydock leases --all)'}\n`,
    );
    return 0;
  }
  io.out(
    table(
      ['ID', 'STATUS', 'TYPE', 'RESOURCE', 'OWNER', 'AGE', 'REASON'],
      leases.map((l) => [
        l.id,
        leaseStatusText(l),
        l.type,
        l.resourceId,
        l.heldBy ? `heldBy: ${l.heldBy}` : l.owner,
        age(l.requestedAt),
        clip(leaseReasonText(l), 80),
      ]),
    ),
  );
  return 0;
}

export async function listResources(client: ApiClient, filters: Filters, io: Io): Promise<number> {
  const resources = byNewest(
    await listWithHistory<ApiResource>(client, '/v1/resources', filters),
    (r) => r.createdAt,
  );
  if (io.json) {
    printJson(io, resources);
    return 0;
  }
  if (resources.length === 0) {
    io.err(
      `drydock: no resources${describeFilters(filters)}${filters.all ? '' : ' (destroyed ones: drydock resources --all)'}\n`,
    );
    return 0;
  }
  io.out(
    table(
      ['ID', 'STATUS', 'BLUEPRINT', 'TYPE', 'LEASES', 'USES', 'AGE', 'REASON'],
      resources.map((r) => [
        r.id,
        r.suspectSince && r.status === 'active' ? 'active (suspect)' : r.status,
        r.blueprintId,
        r.type,
        `${r.leaseCount}/${r.capacity}`,
        r.uses,
        age(r.createdAt),
        clip(
          r.endReason ??
            r.suspectReason ??
            (typeof r.data?.setupMessage === 'string' ? r.data.setupMessage : undefined),
          80,
        ),
      ]),
    ),
  );
  return 0;
}

export async function listBlueprints(client: ApiClient, filters: Filters, io: Io): Promise<number> {
  const { items } = await client.get<{ items: ApiBlueprint[] }>('/v1/blueprints');
  // The API has no filters for blueprints (a small set): filter here.
  const blueprints = items
    .filter((b) => !filters.status || b.state === filters.status)
    .filter((b) => !filters.type || b.type === filters.type || b.resourceType === filters.type)
    .sort((a, b) => a.id.localeCompare(b.id));
  if (io.json) {
    printJson(io, blueprints);
    return 0;
  }
  if (blueprints.length === 0) {
    io.err(
      `drydock: no blueprints${describeFilters(filters)}; create one with \`drydock blueprint create\`\n`,
    );
    return 0;
  }
  io.out(
    table(
      ['ID', 'TYPE', 'BUILDS', 'STATE', 'MAX', 'LEASES/RES', 'RECLAIM', 'ATTRIBUTES', 'HEALTH'],
      blueprints.map((b) => [
        b.id,
        b.type,
        b.resourceType,
        b.state,
        b.limits.maxResources,
        b.limits.leasesPerResource,
        reclaimColumn(b.limits),
        Object.entries(b.attributes)
          .map(([k, v]) => `${k}=${v}`)
          .join(','),
        health(b),
      ]),
    ),
  );
  return 0;
}

/** When resources go, and how many idle ones the warm pool keeps (`, keep 3 idle`). */
function reclaimColumn(limits: ApiBlueprint['limits']): string {
  const when = limits.reclaimOnRelease ? 'on release' : `idle ${limits.idleTtlSeconds}s`;
  const keep = limits.minIdle ? `, keep ${limits.minIdle} idle` : '';
  const scheduled = limits.minIdleSchedule?.length ? ' (scheduled)' : '';
  return `${when}${keep}${scheduled}`;
}

function health(b: ApiBlueprint): string {
  const h = b.health;
  if (!h || h.failureCount === 0) return 'ok';
  const backoff =
    h.backoffUntil && Date.parse(h.backoffUntil) > Date.now()
      ? `, backing off until ${h.backoffUntil}`
      : '';
  return clip(`${h.failureCount} failures${backoff}: ${h.lastFailure ?? ''}`, 80);
}

function describeFilters(filters: Filters): string {
  const parts = [
    filters.status ? `status ${filters.status}` : '',
    filters.type ? `type ${filters.type}` : '',
  ].filter(Boolean);
  return parts.length ? ` (${parts.join(', ')})` : '';
}

// ---- blueprint definitions ----------------------------------------------------------------

/** `limits.maxResources=3` -> sets obj.limits.maxResources = 3 (JSON values; strings as is). */
export function applySet(target: Record<string, unknown>, assignment: string): void {
  const eq = assignment.indexOf('=');
  if (eq <= 0) {
    throw new CliError(
      `--set '${assignment}' is not path=value (e.g. --set limits.maxResources=3)`,
    );
  }
  const path = assignment.slice(0, eq).trim().split('.');
  const raw = assignment.slice(eq + 1);
  if (path.some((p) => p === '' || p === '__proto__' || p === 'constructor' || p === 'prototype')) {
    throw new CliError(`--set '${assignment}': bad path`);
  }
  let value: unknown = raw;
  // Attributes are strings whatever they look like; elsewhere 3, true, null, [..], {..} are JSON.
  if (path[0] !== 'attributes' && path[0] !== 'description' && path[0] !== 'id') {
    try {
      value = JSON.parse(raw);
    } catch {
      value = raw;
    }
  }
  let node: Record<string, unknown> = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (next === undefined || next === null || typeof next !== 'object' || Array.isArray(next)) {
      node[key] = {};
    }
    node = node[key] as Record<string, unknown>;
  }
  node[path.at(-1) as string] = value;
}

export function readJsonFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${file === '-' ? 'stdin' : file}: ${(err as Error).message}`);
  }
  try {
    const value = JSON.parse(text);
    if (!value || typeof value !== 'object' || Array.isArray(value))
      throw new Error('not a JSON object');
    return value as Record<string, unknown>;
  } catch (err) {
    throw new CliError(
      `${file === '-' ? 'stdin' : file} is not a JSON object: ${(err as Error).message}`,
    );
  }
}

export interface BlueprintCreateOptions {
  file?: string;
  id?: string;
  type?: string;
  resourceType?: string;
  description?: string;
  attributes?: Record<string, string>;
  maxResources?: number;
  leasesPerResource?: number;
  reclaimOnRelease?: boolean;
  idleTtlSeconds?: number;
  /** Warm pool: idle, ready resources to keep (limits.minIdle). */
  minIdle?: number;
  config?: string;
  set: string[];
}

export function blueprintInput(options: BlueprintCreateOptions): Record<string, unknown> {
  const input: Record<string, unknown> = options.file ? readJsonFile(options.file) : {};
  const limits = { ...((input.limits as Record<string, unknown> | undefined) ?? {}) };
  if (options.id) input.id = options.id;
  if (options.type) input.type = options.type;
  if (options.resourceType) input.resourceType = options.resourceType;
  if (options.description) input.description = options.description;
  if (options.attributes && Object.keys(options.attributes).length) {
    input.attributes = {
      ...((input.attributes as object | undefined) ?? {}),
      ...options.attributes,
    };
  }
  if (options.maxResources !== undefined) limits.maxResources = options.maxResources;
  if (options.leasesPerResource !== undefined) limits.leasesPerResource = options.leasesPerResource;
  if (options.reclaimOnRelease !== undefined) limits.reclaimOnRelease = options.reclaimOnRelease;
  if (options.idleTtlSeconds !== undefined) limits.idleTtlSeconds = options.idleTtlSeconds;
  if (options.minIdle !== undefined) limits.minIdle = options.minIdle;
  if (Object.keys(limits).length) input.limits = limits;
  if (options.config) {
    try {
      input.config = JSON.parse(options.config);
    } catch (err) {
      throw new CliError(`--config is not JSON: ${(err as Error).message}`);
    }
  }
  for (const assignment of options.set) applySet(input, assignment);
  const missing = ['id', 'type'].filter((k) => !input[k]);
  if (missing.length) {
    throw new CliError(
      `a blueprint needs ${missing.join(' and ')}: pass --file bp.json or --id <slug> --type <local-host|synthetic|...>`,
    );
  }
  return input;
}

function showBlueprint(io: Io, blueprint: ApiBlueprint, verb: string): void {
  if (io.json) printJson(io, blueprint);
  else {
    io.out(
      `blueprint ${blueprint.id} ${verb}: ${blueprint.type} building ${blueprint.resourceType}, ${blueprint.state}, ` +
        `max ${blueprint.limits.maxResources}, ${blueprint.limits.leasesPerResource} lease(s) per resource, version ${blueprint.version}\n`,
    );
  }
}

export async function createBlueprint(
  client: ApiClient,
  options: BlueprintCreateOptions,
  io: Io,
): Promise<number> {
  const { blueprint } = await client.post<{ blueprint: ApiBlueprint }>(
    '/v1/blueprints',
    blueprintInput(options),
  );
  showBlueprint(io, blueprint, 'created');
  return 0;
}

/** The fields a PATCH may carry (docs/api-contract.md). */
const PATCHABLE = ['state', 'limits', 'attributes', 'config', 'description'] as const;

/**
 * Read-modify-write with If-Match: `--set config.root=/x` must not drop the rest of config,
 * and a concurrent change must not be overwritten silently.
 */
export async function updateBlueprint(
  client: ApiClient,
  id: string,
  options: { file?: string; set: string[] },
  io: Io,
): Promise<number> {
  if (!options.file && options.set.length === 0) {
    throw new CliError('nothing to change: pass --file <json> and/or --set path=value');
  }
  const path = `/v1/blueprints/${encodeURIComponent(id)}`;
  const { blueprint: current } = await client.get<{ blueprint: ApiBlueprint }>(path);
  const patch: Record<string, unknown> = options.file ? readJsonFile(options.file) : {};
  if (options.set.length) {
    // Whole top-level fields are sent: the current value (or the file's) with the sets applied.
    const draft: Record<string, unknown> = structuredClone({
      ...Object.fromEntries(PATCHABLE.map((k) => [k, current[k]])),
      ...patch,
    });
    for (const assignment of options.set) {
      const top = assignment.split(/[.=]/)[0] ?? '';
      if (!(PATCHABLE as readonly string[]).includes(top)) {
        throw new CliError(`--set ${assignment}: only ${PATCHABLE.join(', ')} can change`);
      }
      applySet(draft, assignment);
      patch[top] = draft[top];
    }
  }
  const { blueprint } = await client.patch<{ blueprint: ApiBlueprint }>(path, patch, {
    headers: { 'If-Match': String(current.version) },
  });
  showBlueprint(io, blueprint, 'updated');
  return 0;
}

export async function setBlueprintState(
  client: ApiClient,
  id: string,
  state: 'enabled' | 'draining' | 'disabled',
  io: Io,
): Promise<number> {
  const { blueprint } = await client.patch<{ blueprint: ApiBlueprint }>(
    `/v1/blueprints/${encodeURIComponent(id)}`,
    { state },
  );
  showBlueprint(
    io,
    blueprint,
    state === 'enabled' ? 'enabled' : state === 'draining' ? 'draining' : 'disabled',
  );
  return 0;
}

export async function showBlueprintFlow(client: ApiClient, id: string, io: Io): Promise<number> {
  const { blueprint } = await client.get<{ blueprint: ApiBlueprint }>(
    `/v1/blueprints/${encodeURIComponent(id)}`,
  );
  if (io.json) printJson(io, blueprint);
  else io.out(`${JSON.stringify(blueprint, null, 2)}\n`);
  return 0;
}
