/**
 * What a caller of `store.listLiveResources` tells the store so that it reads only the index
 * blocks the type's pools can fill (store/schema.ts, GSI1): the largest maxResources among the
 * blueprints whose resources it looks at. Pools of up to 32 resources are then one query.
 */
import type { Blueprint } from './model.ts';

/**
 * The largest `limits.maxResources` of the blueprints of `type` (all of them when `type` is
 * omitted); undefined when there is none, and the store then reads every block a type can have.
 */
export function largestPool(
  blueprints: ReadonlyArray<Pick<Blueprint, 'resourceType' | 'limits'>>,
  type?: string,
): number | undefined {
  const sizes = blueprints
    .filter((b) => type === undefined || b.resourceType === type)
    .map((b) => b.limits.maxResources);
  return sizes.length === 0 ? undefined : Math.max(...sizes);
}
