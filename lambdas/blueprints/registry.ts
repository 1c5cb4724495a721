/**
 * Every blueprint plug-in this deployment knows. Adding a type: one folder under
 * lambdas/blueprints/<type>/ and one `.register(...)` line here (see README.md).
 */
import { BlueprintRegistry } from '../core/blueprint.ts';
import { localHostBlueprint } from './local-host/index.ts';
import { staticHostBlueprint } from './static-host/index.ts';
import { syntheticBlueprint } from './synthetic/index.ts';

export function defaultRegistry(): BlueprintRegistry {
  // register() rather than the constructor: the constructor's Array<BlueprintType<never>> does
  // not accept a plug-in with a concrete config type (zod's output type is covariant).
  return (
    new BlueprintRegistry()
      // one line per blueprint type
      .register(syntheticBlueprint)
      .register(localHostBlueprint)
      .register(staticHostBlueprint)
  );
}
