/**
 * Which blueprint plug-ins a runtime offers. Adding a type: one folder under
 * lambdas/blueprints/<type>/ and one `.register(...)` line in the registry that should offer it
 * (see README.md).
 *
 * Two registries, because where a command runs is a security boundary: on AWS a `local-host`
 * command would run inside the worker Lambda, next to its role's credentials, in a /tmp the next
 * invocation may not see. So the deployed Lambdas offer only types whose commands run elsewhere,
 * and creating a blueprint of any other type through a deployed API is refused (400, naming the
 * types this deployment offers).
 */
import { BlueprintRegistry } from '../core/blueprint.ts';
import { ec2HostBlueprint } from './ec2-host/index.ts';
import { localHostBlueprint } from './local-host/index.ts';
import { staticHostBlueprint } from './static-host/index.ts';
import { syntheticBlueprint } from './synthetic/index.ts';
import { workingCopyBlueprint } from './working-copy/index.ts';

/** What the Lambdas on AWS offer (composition.ts). Never a type that runs commands in-process. */
export function deployedRegistry(): BlueprintRegistry {
  // register() rather than the constructor: the constructor's Array<BlueprintType<never>> does
  // not accept a plug-in with a concrete config type (zod's output type is covariant).
  return (
    new BlueprintRegistry()
      // one line per blueprint type offered on AWS
      .register(syntheticBlueprint)
      // static-host: SSM Run Command on the operator's own managed instances.
      .register(staticHostBlueprint)
      // ec2-host: an EC2 instance launched per resource (needs the EC2/SSM clients when used).
      .register(ec2HostBlueprint)
      // working-copy: git clones on a leased host; runs only through its host lease's commands.
      .register(workingCopyBlueprint)
  );
}

/**
 * What the local runtime (`npm start`), the tests and the bench offer: everything deployed,
 * plus `local-host` (directories and child processes on this machine).
 */
export function localRegistry(): BlueprintRegistry {
  return deployedRegistry().register(localHostBlueprint);
}
