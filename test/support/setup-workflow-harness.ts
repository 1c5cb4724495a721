/**
 * Runs the setup state machine of a synthesized template (aws-local-stepfunctions) with its
 * Lambda tasks overridden by the REAL setup handler (lambdas/handlers/setup.ts) on a real engine
 * (testSystem: DynamoDB Local, the real plug-ins, a virtual clock). Plug-ins and their cloud
 * clients are the caller's, so a blueprint type's scenarios (e.g. ec2-host on the shared AWS
 * fake) drop in without changing the harness.
 *
 * Time: WaitForSetup is overridden to 0 s and the virtual clock is advanced by the wait the
 * handler asked for instead, so a day-long setup deadline runs in milliseconds.
 */
import { StateMachine, type StateMachineDefinition } from 'aws-local-stepfunctions';
import type {
  BlueprintRegistry,
  BlueprintType,
  CloudClients,
} from '../../lambdas/core/blueprint.ts';
import type { Lease } from '../../lambdas/core/model.ts';
import { requestLease } from '../../lambdas/core/use-cases.ts';
import {
  makeSetupHandler,
  type SetupEvent,
  type SetupOutput,
} from '../../lambdas/handlers/setup.ts';
import { lambdaContext } from '../../lib/local/lambda-events.ts';
import type { AslDefinition } from '../../lib/setup-definition.ts';
import { type TestSystem, testSystem } from './system.ts';

export interface SetupWorkflowHarnessOptions {
  /** The setup state machine, from the synthesized template (setupDefinitionFromTemplate). */
  definition: AslDefinition;
  /** Instead of the local registry. */
  registry?: BlueprintRegistry;
  // biome-ignore lint/suspicious/noExplicitAny: plug-ins of any config type, as the registry takes them.
  plugins?: ReadonlyArray<BlueprintType<any>>;
  /** The plug-ins' cloud clients (the shared AWS fake's). */
  clients?: CloudClients;
}

export interface SetupRun {
  /** The execution's output; rejects with the Fail state's error (see failureOf). */
  result: Promise<unknown>;
  /** Every task input, in order (Advance and BreakResource). */
  calls: SetupEvent[];
}

export interface SetupWorkflowHarness {
  system: TestSystem;
  /** Resource ids the engine handed to the workflow (what StartExecution would have started). */
  started: Set<string>;
  /** Requests a lease and drives the queue until its resource is handed to the workflow. */
  leaseWaitingForSetup(request: {
    type: string;
    attributes?: Record<string, string>;
  }): Promise<{ leaseId: string; resourceId: string }>;
  /** Runs one execution for the resource. */
  run(resourceId: string): SetupRun;
  /** Delivers queued updates until `until` holds (or the queue is empty). */
  drain(until?: () => Promise<boolean>): Promise<void>;
}

export async function setupWorkflowHarness(
  options: SetupWorkflowHarnessOptions,
): Promise<SetupWorkflowHarness> {
  const started = new Set<string>();
  const system = await testSystem(
    {},
    {
      ...(options.registry ? { registry: options.registry } : {}),
      ...(options.plugins ? { plugins: options.plugins } : {}),
      ...(options.clients ? { clients: options.clients } : {}),
      startSetup: async (resourceId) => {
        started.add(resourceId);
      },
    },
  );
  const handler = makeSetupHandler({ engine: system.engine });

  async function invoke(event: SetupEvent): Promise<SetupOutput> {
    const output = (await handler(event, lambdaContext('setup', 60_000))) as SetupOutput;
    if (output.state === 'pending') system.clock.advance(output.waitSeconds * 1000);
    return output;
  }

  async function drain(until?: () => Promise<boolean>): Promise<void> {
    await system.queue.drain(system.engine, until ? { until } : {});
  }

  return {
    system,
    started,
    drain,
    async leaseWaitingForSetup(request) {
      const lease: Lease = await requestLease(system.engine, { ...request, owner: 'ci' });
      const handedOver = async () => {
        const now = await system.store.getLease(lease.id);
        return now?.resourceId !== undefined && started.has(now.resourceId);
      };
      await drain(handedOver);
      if (!(await handedOver())) {
        throw new Error(`lease ${lease.id}: its resource was never handed to the setup workflow`);
      }
      const resourceId = (await system.store.getLease(lease.id))?.resourceId as string;
      return { leaseId: lease.id, resourceId };
    },
    run(resourceId) {
      const calls: SetupEvent[] = [];
      const task = async (input: unknown) => {
        calls.push(input as SetupEvent);
        return (await invoke(input as SetupEvent)) as never;
      };
      const machine = new StateMachine(options.definition as unknown as StateMachineDefinition);
      const execution = machine.run(
        { resourceId },
        {
          overrides: {
            taskResourceLocalHandlers: { Advance: task, BreakResource: task },
            waitTimeOverrides: { WaitForSetup: 0 },
            retryIntervalOverrides: { Advance: 0, BreakResource: 0 },
          },
        },
      );
      return { result: execution.result as Promise<unknown>, calls };
    },
  };
}
