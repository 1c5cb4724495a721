import { ArnFormat, Duration, Names, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { MAX_SETUP_TIMEOUT_SECONDS } from '../../lambdas/core/blueprint-schema.ts';
import { acknowledgeWildcardResource } from './nag.ts';
import { checkDuration } from './validate.ts';

/**
 * State names of the setup workflow. They are a contract: tests run the synthesized
 * definition with aws-local-stepfunctions and override the Lambda tasks by state name
 * (`Advance`, `BreakResource`) and shorten waits by state name (`WaitForSetup`). Rename one
 * and those tests, and any dashboard filtering on it, break.
 */
export const SETUP_STATES = {
  advance: 'Advance',
  done: 'Done?',
  wait: 'WaitForSetup',
  active: 'ResourceActive',
  broken: 'ResourceBroken',
  unexpected: 'UnexpectedSetupState',
  breakResource: 'BreakResource',
  failed: 'SetupFailed',
} as const;

/**
 * Time a workflow needs beyond its resource's setup deadline: the setup handler breaks an
 * overdue resource on the next Advance, which comes at most one WaitForSetup (900 s) later,
 * plus that step's retries and BreakResource's.
 */
export const WORKFLOW_DEADLINE_SLACK_SECONDS = 3600;

/**
 * The default workflow timeout: the longest `setupTimeoutSeconds` a blueprint may ask for
 * (a day), plus the slack. The setup handler owns the real deadline (each resource's
 * `setupDeadline`, from its blueprint); the state machine's timeout is only a backstop, and a
 * backstop shorter than a blueprint's deadline would end setups the blueprint still allows.
 * A standard workflow may run for up to a year.
 */
export const DEFAULT_WORKFLOW_TIMEOUT_SECONDS =
  MAX_SETUP_TIMEOUT_SECONDS + WORKFLOW_DEADLINE_SLACK_SECONDS;

/** Errors the Lambda service (not the handler) raises; always worth retrying. */
const LAMBDA_SERVICE_ERRORS = [
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.ClientExecutionTimeoutException',
  'Lambda.TooManyRequestsException',
];

export interface SetupWorkflowProps {
  /**
   * The setup handler (`lambdas/handlers/setup.ts`). Input `{ resourceId, action: 'advance' }`
   * returns `{ resourceId, state: 'pending' | 'active' | 'broken', waitSeconds }`; input
   * `{ resourceId, action: 'fail', error: { Error, Cause } }` breaks the resource and
   * terminates what was built.
   */
  readonly setupFunction: lambda.IFunction;

  /**
   * Backstop for a whole setup execution (boot, SSM agent, setup commands). Each resource's
   * own deadline comes from its blueprint's `setupTimeoutSeconds` and is enforced by the setup
   * handler, which breaks the resource; this timeout should exceed the longest of those. When
   * it passes first, the execution stops where it is and the resource stays `pending`; the
   * next update of the resource finds the execution ended and starts a new one under the next
   * attempt's name (lambdas/handlers/setup-starter.ts), so setup resumes, later.
   *
   * @default 25 hours (DEFAULT_WORKFLOW_TIMEOUT_SECONDS: the longest blueprint setup, a day, plus an hour)
   */
  readonly timeout?: Duration;

  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * Resource setup, "allocate now, activate later": the allocator has already written the
 * pending resource; this workflow drives it to active (or broken) without any Lambda
 * sleeping. The handler decides everything; the workflow only loops, waits and catches.
 *
 *   Advance ──> Done? ──active──> ResourceActive (Succeed)
 *     ^  │           ├─broken──> ResourceBroken (Fail: the handler already broke it)
 *     │  │           ├─pending─> WaitForSetup (SecondsPath $.waitSeconds) ──> Advance
 *     │  │           └─other───> UnexpectedSetupState ──┐
 *     │  └─any error after retries (Catch States.ALL) ───┴─> BreakResource ──> SetupFailed
 */
export class SetupWorkflow extends Construct {
  public readonly stateMachine: sfn.StateMachine;
  public readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: SetupWorkflowProps) {
    super(scope, id);
    checkDuration(this, 'timeout', props.timeout, 60, 365 * 24 * 3600);

    const breakResource = new tasks.LambdaInvoke(this, SETUP_STATES.breakResource, {
      comment: 'Break the resource and terminate whatever setup built.',
      lambdaFunction: props.setupFunction,
      payload: sfn.TaskInput.fromObject({
        resourceId: sfn.JsonPath.stringAt('$.resourceId'),
        action: 'fail',
        error: sfn.JsonPath.objectAt('$.error'),
      }),
      // The task input and result are the handler's own event and return value, so local
      // tests can override the state with the handler itself.
      payloadResponseOnly: true,
      retryOnServiceExceptions: false,
      // Keep $.error for the Fail state.
      resultPath: '$.breakResult',
    });
    addRetries(breakResource, 5);
    breakResource.next(
      new sfn.Fail(this, SETUP_STATES.failed, {
        errorPath: '$.error.Error',
        causePath: '$.error.Cause',
      }),
    );

    const advance = new tasks.LambdaInvoke(this, SETUP_STATES.advance, {
      comment: 'Take the next setup step; say whether to come back, and when.',
      lambdaFunction: props.setupFunction,
      payload: sfn.TaskInput.fromObject({
        resourceId: sfn.JsonPath.stringAt('$.resourceId'),
        action: 'advance',
      }),
      payloadResponseOnly: true,
      retryOnServiceExceptions: false,
    });
    addRetries(advance, 2);
    advance.addCatch(breakResource, { errors: [sfn.Errors.ALL], resultPath: '$.error' });

    const wait = new sfn.Wait(this, SETUP_STATES.wait, {
      time: sfn.WaitTime.secondsPath('$.waitSeconds'),
    });
    const unexpected = new sfn.Pass(this, SETUP_STATES.unexpected, {
      comment: 'The handler broke its contract: treat it as a failed setup.',
      parameters: {
        resourceId: sfn.JsonPath.stringAt('$.resourceId'),
        error: {
          Error: 'Drydock.UnexpectedSetupState',
          Cause: sfn.JsonPath.jsonToString(sfn.JsonPath.entirePayload),
        },
      },
    });

    const definition = advance.next(
      new sfn.Choice(this, SETUP_STATES.done)
        .when(
          sfn.Condition.stringEquals('$.state', 'active'),
          new sfn.Succeed(this, SETUP_STATES.active),
        )
        .when(
          sfn.Condition.stringEquals('$.state', 'broken'),
          new sfn.Fail(this, SETUP_STATES.broken, {
            error: 'Drydock.ResourceBroken',
            cause: 'The setup step found the resource broken and recorded why on it.',
          }),
        )
        .when(sfn.Condition.stringEquals('$.state', 'pending'), wait.next(advance))
        .otherwise(unexpected.next(breakResource)),
    );

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      // The /aws/vendedlogs/ prefix keeps Step Functions from growing the account's
      // CloudWatch Logs resource policy, which has a small size limit.
      logGroupName: `/aws/vendedlogs/states/${Names.uniqueResourceName(this, { maxLength: 200 })}`,
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      // A fixed name would block redeploying after a delete if the group were retained.
      removalPolicy: RemovalPolicy.DESTROY,
    });

    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      comment: 'Drydock resource setup: advance, wait, repeat until active or broken.',
      definitionBody: sfn.DefinitionBody.fromChainable(definition),
      stateMachineType: sfn.StateMachineType.STANDARD,
      timeout: props.timeout ?? Duration.seconds(DEFAULT_WORKFLOW_TIMEOUT_SECONDS),
      tracingEnabled: true,
      logs: { destination: this.logGroup, level: sfn.LogLevel.ALL, includeExecutionData: true },
    });

    const role = this.stateMachine.role;
    acknowledgeWildcardResource(
      role,
      `${props.setupFunction.functionArn}:*`,
      'CDK grants invoke on the setup function and its versions/aliases (":*"); it is the only function the workflow calls.',
    );
    acknowledgeWildcardResource(
      role,
      '*',
      'Only the statements CDK adds for X-Ray tracing and CloudWatch Logs vended delivery use "*": ' +
        'xray:PutTraceSegments/PutTelemetryRecords/GetSampling* and logs:*LogDelivery/' +
        'PutResourcePolicy/Describe* support no resource-level permissions.',
    );
  }

  /**
   * states:DescribeExecution on this state machine's executions (and nothing else): whoever
   * starts setups asks whether the execution under a taken name still runs.
   */
  public grantDescribeExecutions(role: iam.IRole): void {
    const executions = Stack.of(this).formatArn({
      service: 'states',
      resource: 'execution',
      resourceName: `${this.stateMachine.stateMachineName}:*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['states:DescribeExecution'], resources: [executions] }),
    );
    acknowledgeWildcardResource(
      role,
      executions,
      'Execution names are made per resource at run time; DescribeExecution is limited to the ' +
        'executions of the setup state machine.',
    );
  }
}

/**
 * Lambda service errors and throttling are retried with full-jitter backoff (2 s, 4 s, ...
 * up to 6 attempts). Errors the handler throws get `handlerAttempts` more tries: a transient
 * DynamoDB or EC2 error should not break a resource, a real one will fail again.
 */
function addRetries(task: tasks.LambdaInvoke, handlerAttempts: number): void {
  task.addRetry({
    errors: LAMBDA_SERVICE_ERRORS,
    interval: Duration.seconds(2),
    backoffRate: 2,
    maxAttempts: 6,
    maxDelay: Duration.seconds(60),
    jitterStrategy: sfn.JitterType.FULL,
  });
  task.addRetry({
    errors: [sfn.Errors.TASKS_FAILED],
    interval: Duration.seconds(5),
    backoffRate: 2,
    maxAttempts: handlerAttempts,
  });
}
