/**
 * Resources as operators see them: read one, or take one out of service.
 */
import { type Caller, describeCaller, requireAdmin } from './access.ts';
import { reclaimResource } from './allocator.ts';
import type { Engine } from './engine.ts';
import { DrydockError, NotFoundError } from './errors.ts';
import type { Resource } from './model.ts';
import { breakResource } from './resource-end.ts';
import { isResourceFinished } from './transitions.ts';

export async function getResource(engine: Engine, id: string): Promise<Resource> {
  const r = await engine.store.getResource(id);
  if (!r) throw new NotFoundError('resource', id);
  return r;
}

/**
 * An operator takes a resource out of service (admin). Idle (active, no leases): reclaimed like
 * an idle host. Otherwise broken with "released by <principal>", which its leases pass on to
 * their holders (not yet active ones go back to pending and are served elsewhere). Idempotent:
 * a resource that already ended is returned as it is.
 */
export async function releaseResource(
  engine: Engine,
  id: string,
  caller: Caller,
): Promise<Resource> {
  requireAdmin(caller, 'releasing a resource');
  const reason = `released by ${describeCaller(caller)}`;
  for (let attempt = 0; attempt < 5; attempt++) {
    const r = await getResource(engine, id);
    if (isResourceFinished(r.status)) return r;
    if (r.status === 'active' && r.leaseCount === 0) {
      // Conditional on still having no leases; a lease attaching meanwhile wins: look again.
      if (!(await reclaimResource(engine, r, reason))) continue;
    } else {
      await breakResource(engine, r, reason);
    }
    return getResource(engine, id);
  }
  throw new DrydockError('busy', `resource ${id} is changing too fast to release; try again`);
}
