/**
 * The Step Functions stand-in: the setup state machine synthesized from lib/stack.ts (the very
 * ASL CloudFormation would deploy), run in-process by aws-local-stepfunctions with its Lambda
 * tasks calling the setup handler. Executions are started like StartExecution starts them
 * (one per resource at a time) and aborted when the runtime stops.
 */
import { readFileSync } from 'node:fs';
import type { StateMachine, StateMachineDefinition } from 'aws-local-stepfunctions';
import type { AslDefinition } from '../setup-definition.ts';

export interface SetupEvent {
  resourceId: string;
  action: 'advance' | 'fail';
  error?: { Error: string; Cause: string };
}

/** State names of the synthesized workflow the setup handler runs in (setup-workflow.ts). */
const SETUP_TASK_STATES = ['Advance', 'BreakResource'] as const;

/**
 * Synthesizes the CDK stack (no bundling; into `outdir`, else a temporary directory) and
 * returns the setup state machine's definition: the very ASL CloudFormation would deploy.
 */
export async function loadSetupWorkflow(outdir?: string): Promise<AslDefinition> {
  const [{ App }, { DrydockStack }, { setupDefinitionFromTemplate }] = await Promise.all([
    import('aws-cdk-lib'),
    import('../stack.ts'),
    import('../setup-definition.ts'),
  ]);
  const cdkJson = JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')) as {
    context?: Record<string, unknown>;
  };
  const app = new App({
    ...(outdir ? { outdir } : {}),
    // Skip esbuild: only the state machine definition is needed.
    context: { ...cdkJson.context, 'aws:cdk:bundling-stacks': [] },
  });
  const stack = new DrydockStack(app, 'Drydock', {});
  const template = app.synth().getStackByName(stack.stackName).template as object;
  const definition = setupDefinitionFromTemplate(template);
  for (const state of SETUP_TASK_STATES) {
    if (definition.States[state]?.Type !== 'Task') {
      throw new Error(
        `the setup workflow has no Task state '${state}' (states: ${Object.keys(definition.States).join(', ')})`,
      );
    }
  }
  return definition;
}

/** Setup workflow executions in this process (aws-local-stepfunctions). */
export class SetupWorkflows {
  readonly #running = new Map<string, ReturnType<StateMachine['run']>>();
  readonly #machine: Promise<StateMachine>;
  readonly #invokeSetup: (event: SetupEvent) => Promise<unknown>;
  readonly #warn: (message: string) => void;
  #stopped = false;

  constructor(
    definition: AslDefinition,
    invokeSetup: (event: SetupEvent) => Promise<unknown>,
    warn: (message: string) => void,
  ) {
    this.#invokeSetup = invokeSetup;
    this.#warn = warn;
    this.#machine = import('aws-local-stepfunctions').then(
      ({ StateMachine }) => new StateMachine(definition as unknown as StateMachineDefinition),
    );
  }

  /** Starts an execution (like StartExecution: returns once it is started, not finished). */
  async start(resourceId: string): Promise<void> {
    if (this.#stopped) throw new Error('the local runtime is stopping');
    // One execution per resource at a time, as the execution name makes it on AWS.
    if (this.#running.has(resourceId)) return;
    const machine = await this.#machine;
    type TaskHandler = NonNullable<
      NonNullable<
        NonNullable<Parameters<StateMachine['run']>[1]>['overrides']
      >['taskResourceLocalHandlers']
    >[string];
    const task: TaskHandler = async (input) =>
      (await this.#invokeSetup(input as unknown as SetupEvent)) as Awaited<ReturnType<TaskHandler>>;
    const execution = machine.run(
      { resourceId },
      {
        overrides: {
          taskResourceLocalHandlers: Object.fromEntries(SETUP_TASK_STATES.map((s) => [s, task])),
        },
        noThrowOnAbort: true,
      },
    );
    this.#running.set(resourceId, execution);
    void execution.result
      .catch((err: unknown) => {
        // A failed setup has already broken the resource (BreakResource) and said why on it.
        if (!this.#stopped) {
          const cause = (err as { cause?: Error }).cause;
          this.#warn(
            `drydock: setup workflow for ${resourceId} ended in failure: ${cause?.message ?? (err as Error)?.message ?? String(err)}`,
          );
        }
      })
      .finally(() => this.#running.delete(resourceId));
  }

  async abortAll(): Promise<void> {
    this.#stopped = true;
    const executions = [...this.#running.values()];
    for (const execution of executions) execution.abort();
    await Promise.allSettled(executions.map((e) => e.result));
    this.#running.clear();
  }
}
