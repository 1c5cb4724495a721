/**
 * Reading the logs of leases, resources and blueprints: the story of why a lease waited, what
 * broke a host. Each reader checks the caller may see the object before reading its log.
 */
import { type Caller, getLease, requireAdmin } from './access.ts';
import { getBlueprint } from './blueprint-admin.ts';
import type { Engine } from './engine.ts';
import type { LogEvent } from './model.ts';
import { getResource } from './resources.ts';

export async function readLogs(
  engine: Engine,
  objectId: string,
  options: { after?: string; limit?: number } = {},
): Promise<LogEvent[]> {
  return engine.store.listLogs(objectId, options);
}

export interface LogQuery {
  /** Events after this seq (exclusive): the last seq a reader saw. */
  after?: string;
  limit?: number;
}

/** The log of a lease the caller may see. */
export async function readLeaseLogs(
  engine: Engine,
  leaseId: string,
  caller: Caller,
  query: LogQuery = {},
): Promise<LogEvent[]> {
  await getLease(engine, leaseId, caller);
  return readLogs(engine, leaseId, query);
}

/** The log of a resource (admin). */
export async function readResourceLogs(
  engine: Engine,
  resourceId: string,
  caller: Caller,
  query: LogQuery = {},
): Promise<LogEvent[]> {
  requireAdmin(caller, 'reading resource logs');
  await getResource(engine, resourceId);
  return readLogs(engine, resourceId, query);
}

/** The log of a blueprint (anyone: it says why leases wait). */
export async function readBlueprintLogs(
  engine: Engine,
  blueprintId: string,
  query: LogQuery = {},
): Promise<LogEvent[]> {
  await getBlueprint(engine, blueprintId);
  return readLogs(engine, blueprintId, query);
}
