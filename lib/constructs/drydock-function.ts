import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Duration, Fn } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import type { DrydockTable } from './drydock-table.ts';
import type { HostControl } from './host-control.ts';
import type { HostFleet } from './host-fleet.ts';
import { acknowledgeWildcardResource } from './nag.ts';
import type { SetupWorkflow } from './setup-workflow.ts';
import { checkDuration, checkInteger, invalidProp } from './validate.ts';
import type { WorkQueue } from './work-queue.ts';

/** The repository root: esbuild bundles from here (package-lock.json, tsconfig.json). */
export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Where the handlers live: one file per function, each exporting `handler`. */
export const DEFAULT_HANDLERS_DIR = path.join(PROJECT_ROOT, 'lambdas', 'handlers');

export const HANDLER_NAMES = ['api', 'worker', 'sweep', 'setup'] as const;
export type HandlerName = (typeof HANDLER_NAMES)[number];

export type LogLevel = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
const LOG_LEVELS: readonly LogLevel[] = ['DEBUG', 'INFO', 'WARN', 'ERROR'];

/** The entry file of a handler: `<handlersDir>/<name>.ts`. */
export function handlerEntry(name: HandlerName, handlersDir = DEFAULT_HANDLERS_DIR): string {
  return path.join(handlersDir, `${name}.ts`);
}

export interface DrydockFunctionProps {
  /** Which handler this function runs: `lambdas/handlers/<handler>.ts`, export `handler`. */
  readonly handler: HandlerName;

  /**
   * Directory holding the handler files. Must be inside the project root (esbuild bundles
   * from there).
   *
   * @default DEFAULT_HANDLERS_DIR (lambdas/handlers)
   */
  readonly handlersDir?: string;

  /** @default - none */
  readonly description?: string;

  /** @default 512 */
  readonly memorySize?: number;

  /** @default Duration.seconds(30) */
  readonly timeout?: Duration;

  /**
   * Extra environment variables. TABLE_NAME, QUEUE_URL, SETUP_STATE_MACHINE_ARN,
   * DRYDOCK_DEPLOYMENT, DRYDOCK_COMMAND_LOG_GROUP and DRYDOCK_INSTANCE_PROFILE_ARN are set by
   * the `bind*` methods together with the matching grant.
   *
   * @default - none
   */
  readonly environment?: Record<string, string>;

  /**
   * Application log level: `LOG_LEVEL` for Powertools, and Lambda's own filter.
   *
   * @default 'INFO'
   */
  readonly logLevel?: LogLevel;

  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;

  /**
   * Retries of a failed asynchronous invocation (EventBridge targets).
   *
   * @default 2 (Lambda's default)
   */
  readonly retryAttempts?: number;

  /**
   * Let the function feed the queue that triggers it indefinitely. Lambda otherwise stops a
   * chain Lambda -> SQS -> Lambda after about 16 hops, treating it as a runaway loop.
   *
   * @default false (Lambda's recursive loop detection stops the chain)
   */
  readonly allowRecursiveLoop?: boolean;
}

/**
 * The house Lambda function: Node.js 24 on Graviton, an ESM bundle built by esbuild, JSON
 * logs in its own log group with a retention, X-Ray tracing, and a role that starts empty
 * (no AWSLambdaBasicExecutionRole: only its own log group). Everything else a handler may
 * touch comes from a `bind*` method, which sets the environment variable and grants access
 * in one step, so a function never learns a resource name it may not use.
 *
 * The role and the log group are siblings of the function (`<id>Role`, `<id>Logs`) because
 * they must exist before the function does.
 */
export class DrydockFunction extends NodejsFunction {
  public readonly handlerName: HandlerName;
  declare public readonly role: iam.IRole;

  constructor(scope: Construct, id: string, props: DrydockFunctionProps) {
    const entry = handlerEntry(props.handler, props.handlersDir);
    if (!existsSync(entry)) {
      throw new Error(
        `${scope.node.path}/${id}: no handler file at ${entry} (handler '${props.handler}' must ` +
          'live in lambdas/handlers/<name>.ts and export `handler`)',
      );
    }
    const logLevel = props.logLevel ?? 'INFO';
    if (!LOG_LEVELS.includes(logLevel)) {
      throw invalidProp(scope, `${id}.logLevel`, `one of ${LOG_LEVELS.join(', ')}`, logLevel);
    }

    const role = new iam.Role(scope, `${id}Role`, {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Drydock ${props.handler} function`,
    });
    const logGroup = new logs.LogGroup(scope, `${id}Logs`, {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
    });

    super(scope, id, {
      entry,
      handler: 'handler',
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: path.join(PROJECT_ROOT, 'package-lock.json'),
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      description: props.description,
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout ?? Duration.seconds(30),
      role,
      logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      applicationLogLevelV2: lambda.ApplicationLogLevel[logLevel],
      tracing: lambda.Tracing.ACTIVE,
      retryAttempts: props.retryAttempts,
      recursiveLoop: props.allowRecursiveLoop
        ? lambda.RecursiveLoop.ALLOW
        : lambda.RecursiveLoop.TERMINATE,
      environment: {
        POWERTOOLS_SERVICE_NAME: `drydock-${props.handler}`,
        POWERTOOLS_METRICS_NAMESPACE: 'Drydock',
        LOG_LEVEL: logLevel,
        NODE_OPTIONS: '--enable-source-maps',
        ...props.environment,
      },
      bundling: {
        format: OutputFormat.ESM,
        target: 'node24',
        mainFields: ['module', 'main'],
        minify: true,
        sourceMap: true,
        sourcesContent: false,
        // The SDK clients are bundled, not taken from the runtime: the handlers are tested
        // against the versions pinned in package-lock.json (lib-dynamodb's error shapes, for
        // one), and tree-shaking keeps the bundle small. No module stays external.
        bundleAwsSDK: true,
        // Some bundled CommonJS dependencies call require() on Node built-ins; an ESM bundle
        // has no require() unless it makes one.
        banner:
          "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
      },
    });
    checkInteger(this, 'memorySize', props.memorySize, 128, 10240);
    checkDuration(this, 'timeout', props.timeout, 1, 900);
    checkInteger(this, 'retryAttempts', props.retryAttempts, 0, 2);

    this.handlerName = props.handler;
    logGroup.grantWrite(role);
    // Tracing.ACTIVE adds xray:PutTraceSegments and xray:PutTelemetryRecords to the role.
    acknowledgeWildcardResource(
      role,
      '*',
      'Only the X-Ray statement CDK adds for active tracing uses "*": xray:PutTraceSegments and ' +
        'xray:PutTelemetryRecords support no resource-level permissions. Host permissions with ' +
        '"*" live in the separate HostControl policy, with their own acknowledgement.',
    );
  }

  /** TABLE_NAME, and the store's item actions on the table and its indexes. */
  public bindTable(table: DrydockTable): this {
    this.addEnvironment('TABLE_NAME', table.table.tableName);
    table.grantItemAccess(this);
    return this;
  }

  /** QUEUE_URL, and permission to send (the event source grants consuming separately). */
  public bindWorkQueue(workQueue: WorkQueue): this {
    this.addEnvironment('QUEUE_URL', workQueue.queue.queueUrl);
    workQueue.queue.grantSendMessages(this);
    return this;
  }

  /**
   * DEAD_LETTER_QUEUE_URL, and what `drydock dlq` needs on the dead-letter queue: peek
   * (receive, then make visible again) and redrive (an SQS message move task, which receives
   * and deletes there and sends to the work queue). For the api function only.
   */
  public bindDeadLetterQueue(workQueue: WorkQueue): this {
    const dlq = workQueue.deadLetterQueue;
    this.addEnvironment('DEAD_LETTER_QUEUE_URL', dlq.queueUrl);
    dlq.grant(
      this,
      'sqs:ReceiveMessage',
      'sqs:ChangeMessageVisibility',
      'sqs:DeleteMessage',
      'sqs:GetQueueAttributes',
      'sqs:StartMessageMoveTask',
    );
    workQueue.queue.grantSendMessages(this);
    return this;
  }

  /**
   * SETUP_STATE_MACHINE_ARN, states:StartExecution on that state machine only, and
   * states:DescribeExecution on its executions: a start whose name is taken asks whether that
   * execution still runs (lambdas/handlers/setup-starter.ts).
   */
  public bindSetupWorkflow(workflow: SetupWorkflow): this {
    this.addEnvironment('SETUP_STATE_MACHINE_ARN', workflow.stateMachine.stateMachineArn);
    workflow.stateMachine.grantStartExecution(this);
    workflow.grantDescribeExecutions(this.role);
    return this;
  }

  /**
   * DRYDOCK_DEPLOYMENT (the host tag value), DRYDOCK_COMMAND_LOG_GROUP (where SSM writes command
   * output), and the host policy. Only for functions that run blueprint plug-ins.
   */
  public bindHostControl(hostControl: HostControl): this {
    this.addEnvironment('DRYDOCK_DEPLOYMENT', hostControl.deploymentName);
    this.addEnvironment('DRYDOCK_COMMAND_LOG_GROUP', hostControl.commandLogGroup.logGroupName);
    hostControl.attachTo(this.role);
    return this;
  }

  /**
   * The ec2-host plug-in's defaults: DRYDOCK_DEPLOYMENT (the tag every launched instance
   * carries), DRYDOCK_INSTANCE_PROFILE_ARN (the hosts' instance profile), DRYDOCK_SUBNET_IDS
   * (the host network's subnets, comma-separated) and DRYDOCK_SECURITY_GROUP_IDS (the hosts'
   * security group); and EC2 on this deployment's instances: describe and terminate always;
   * `launch` also lets the function launch them (only where activateResource runs).
   */
  public bindHostFleet(fleet: HostFleet, options: { launch: boolean }): this {
    this.addEnvironment('DRYDOCK_DEPLOYMENT', fleet.deploymentName);
    this.addEnvironment('DRYDOCK_INSTANCE_PROFILE_ARN', fleet.instanceProfile.instanceProfileArn);
    this.addEnvironment('DRYDOCK_SUBNET_IDS', Fn.join(',', fleet.network.subnetIds));
    this.addEnvironment('DRYDOCK_SECURITY_GROUP_IDS', fleet.network.securityGroup.securityGroupId);
    fleet.grantInventory(this.role);
    if (options.launch) fleet.grantLaunch(this.role);
    return this;
  }
}
