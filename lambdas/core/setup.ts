/**
 * The setup workflow's steps (Step Functions, lambdas/handlers/setup.ts): advance a pending
 * resource's setup by one step, or break it when the workflow gives up.
 */
import { recordBlueprintFailure } from './blueprint-health.ts';
import type { Engine } from './engine.ts';
import { breakResource } from './resource-end.ts';
import { advanceResourceSetup } from './resource-update.ts';

/** What a setup step tells the workflow: done, broken, or come back in waitSeconds. */
export interface SetupStepOutcome {
  state: 'pending' | 'active' | 'broken';
  /** Seconds to wait before the next step (0 unless pending). */
  waitSeconds: number;
}

/**
 * One step of a resource's setup, for the setup workflow (DESIGN §6, Step Functions). A
 * resource that no longer exists counts as broken: there is nothing left to set up.
 */
export async function advanceSetup(engine: Engine, resourceId: string): Promise<SetupStepOutcome> {
  const r = await engine.store.getResource(resourceId);
  if (!r) return { state: 'broken', waitSeconds: 0 };
  const step = await advanceResourceSetup(engine, r);
  switch (step.state) {
    case 'pending':
      return { state: 'pending', waitSeconds: step.waitSeconds };
    case 'active':
      return { state: 'active', waitSeconds: 0 };
    case 'broken':
      return { state: 'broken', waitSeconds: 0 };
    case 'workflow':
      // advanceResourceSetup takes the step itself; it never hands setup to a workflow.
      return { state: 'pending', waitSeconds: 1 };
  }
}

/**
 * The setup workflow gave up (a step kept failing): break the resource with the reason, which
 * its leases pass on (not yet active ones are allocated again). Only a resource still being set
 * up is broken; one that became active before the workflow failed is left alone.
 */
export async function failSetup(
  engine: Engine,
  resourceId: string,
  reason: string,
): Promise<SetupStepOutcome> {
  const r = await engine.store.getResource(resourceId);
  if (r?.status !== 'pending') {
    return { state: r?.status === 'active' ? 'active' : 'broken', waitSeconds: 0 };
  }
  const blueprint = await engine.blueprint(r.blueprintId);
  if (blueprint) {
    await recordBlueprintFailure(engine, blueprint, `setup of ${r.id} failed: ${reason}`, r.id);
  }
  await breakResource(engine, r, reason, 'resource.activation-failed');
  return { state: 'broken', waitSeconds: 0 };
}
