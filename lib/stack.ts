import { CfnOutput, Duration, Fn, type RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { STEP_BUDGET_MS } from '../lambdas/blueprints/ssm/run.ts';
import { DrydockFunction, type LogLevel } from './constructs/drydock-function.ts';
import { DrydockTable } from './constructs/drydock-table.ts';
import { EventRouting } from './constructs/event-routing.ts';
import { HostControl } from './constructs/host-control.ts';
import { HostFleet } from './constructs/host-fleet.ts';
import { existingVpcFromContext } from './constructs/host-network.ts';
import { LeaseApi } from './constructs/lease-api.ts';
import { Operations } from './constructs/operations.ts';
import { SetupWorkflow } from './constructs/setup-workflow.ts';
import { checkDuration, checkInteger, invalidProp } from './constructs/validate.ts';
import { WorkQueue } from './constructs/work-queue.ts';

/**
 * The shortest worker timeout: a step may wait STEP_BUDGET_MS (20 s) on static-host's SSM
 * housekeeping, and the step's own reads and writes need time after that.
 */
const MIN_WORKER_TIMEOUT_SECONDS = 30;

/** IAM principals as API Gateway reports them (`$context.identity.userArn`). */
const PRINCIPAL_ARN =
  /^arn:aws[a-z-]*:(iam|sts)::\d{12}:(root|user\/.+|role\/.+|assumed-role\/.+)$/;

export interface DrydockStackProps extends StackProps {
  /**
   * IAM principal ARNs (users, roles, assumed roles) allowed to administer blueprints through
   * the API; passed to the api function as ADMIN_PRINCIPALS (comma-separated).
   *
   * @default - nobody: blueprints can only be managed by redeploying with admins set
   */
  readonly adminPrincipals?: string[];

  /**
   * Who owns a lease: `role` (every session of an assumed role is one owner, so a retry from a
   * new CodeBuild build or ECS task reaches its lease) or `session` (each assumed-role session
   * is its own owner, for per-session isolation). Passed to the api function as
   * OWNER_GRANULARITY (lambdas/core/identity.ts).
   *
   * @default 'role'
   */
  readonly ownerGranularity?: 'role' | 'session';

  /**
   * An existing topic every alarm notifies (alarm and OK), instead of the one the stack
   * creates (context `drydock:alarmTopicArn`).
   *
   * @default - a topic created by the stack (output AlarmTopicArn)
   */
  readonly alarmTopic?: sns.ITopic;

  /**
   * The ARN of an existing topic every alarm notifies (context `drydock:alarmTopicArn`);
   * ignored when `alarmTopic` is given.
   *
   * @default - a topic created by the stack
   */
  readonly alarmTopicArn?: string;

  /**
   * Subscribe this e-mail address to the alarm topic (context `drydock:alarmEmail`).
   *
   * @default - nobody subscribed
   */
  readonly alarmEmail?: string;

  /**
   * Alarm when a lease has waited this long for a resource (context
   * `drydock:oldestWaitAlarmMinutes`).
   *
   * @default Duration.minutes(30)
   */
  readonly oldestWaitAlarmThreshold?: Duration;

  /**
   * Most worker instances the work queue may run at once (SQS event source maximum
   * concurrency, 2 to 1000). Bounds the load the allocator puts on DynamoDB and the cloud APIs.
   *
   * @default 16
   */
  readonly workerMaxConcurrency?: number;

  /**
   * Worker function timeout (30 s to 15 minutes); the work queue's visibility timeout is six
   * times it.
   *
   * @default Duration.minutes(1)
   */
  readonly workerTimeout?: Duration;

  /**
   * Backstop timeout of one resource setup workflow (boot, SSM agent, setup commands); each
   * resource's real deadline is its blueprint's `setupTimeoutSeconds` (up to a day), which the
   * setup handler enforces. Keep it above the longest of those.
   *
   * @default 25 hours (a day, the longest setupTimeoutSeconds, plus an hour)
   */
  readonly setupTimeout?: Duration;

  /**
   * Provide what `ec2-host` blueprints need: the hosts' VPC (created, or the operator's by the
   * context keys `drydock:vpcId` / `drydock:subnetIds`), security group, instance profile and
   * the EC2 permissions. The created VPC's interface endpoints bill by the hour (README "Spot
   * hosts"); a deployment that only leases static hosts can leave all of it out. ec2-host
   * blueprints then cannot launch (AccessDenied, named in the resource's reason).
   *
   * @default true
   */
  readonly ec2Hosts?: boolean;

  /** @default 50 requests per second */
  readonly apiThrottlingRateLimit?: number;

  /** @default 100 requests */
  readonly apiThrottlingBurstLimit?: number;

  /** @default 'prod' */
  readonly apiStageName?: string;

  /**
   * Create API Gateway's account-level CloudWatch Logs role (one per account and region; it
   * replaces the account's existing one, so off unless asked for: context
   * `drydock:apiGatewayCloudWatchRole=true`). API logging needs the account to have one.
   *
   * @default false
   */
  readonly apiGatewayCloudWatchRole?: boolean;

  /**
   * Only these IAM principals may invoke the API (a resource policy; context
   * `drydock:allowedPrincipals`, comma-separated).
   *
   * @default - anyone whose IAM policy allows execute-api:Invoke on it
   */
  readonly allowedPrincipals?: string[];

  /**
   * Only principals of this AWS Organization may invoke the API (context
   * `drydock:allowedOrgId`).
   *
   * @default - no organisation condition
   */
  readonly allowedOrgId?: string;

  /** @default 'INFO' */
  readonly logLevel?: LogLevel;

  /** Retention of every log group the stack creates. @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;

  /** @default RemovalPolicy.RETAIN */
  readonly tableRemovalPolicy?: RemovalPolicy;

  /**
   * Directory of the handler entry files (`api.ts`, `worker.ts`, `sweep.ts`, `setup.ts`),
   * inside the project root.
   *
   * @default lambdas/handlers
   */
  readonly handlersDir?: string;
}

/**
 * Drydock on AWS: the lease API, the work queue and its worker, the sweep, the resource
 * setup workflow, and the table they share. Construct ids below are part of the deployed
 * logical ids: renaming one replaces the resource (for the table, with its data).
 */
export class DrydockStack extends Stack {
  public readonly table: DrydockTable;
  public readonly workQueue: WorkQueue;
  public readonly setupWorkflow: SetupWorkflow;
  public readonly api: LeaseApi;
  public readonly apiFunction: DrydockFunction;
  public readonly workerFunction: DrydockFunction;
  public readonly sweepFunction: DrydockFunction;
  public readonly setupFunction: DrydockFunction;
  public readonly hostControl: HostControl;
  /** Absent when `ec2Hosts` is false. */
  public readonly hostFleet?: HostFleet;
  public readonly eventRouting: EventRouting;
  public readonly operations: Operations;

  constructor(scope: Construct, id: string, props: DrydockStackProps = {}) {
    super(scope, id, props);
    const adminPrincipals = props.adminPrincipals ?? [];
    const badPrincipals = adminPrincipals.filter((arn) => !PRINCIPAL_ARN.test(arn));
    if (badPrincipals.length > 0) {
      throw invalidProp(
        this,
        'adminPrincipals',
        'IAM user, role or assumed-role ARNs',
        badPrincipals,
      );
    }
    checkInteger(this, 'workerMaxConcurrency', props.workerMaxConcurrency, 2, 1000);
    checkDuration(
      this,
      'workerTimeout',
      props.workerTimeout,
      MIN_WORKER_TIMEOUT_SECONDS,
      900,
      `a worker step may wait ${STEP_BUDGET_MS / 1000} s on SSM housekeeping commands`,
    );

    const workerTimeout = props.workerTimeout ?? Duration.minutes(1);
    const common = {
      handlersDir: props.handlersDir,
      logLevel: props.logLevel,
      logRetention: props.logRetention,
    };

    this.table = new DrydockTable(this, 'Table', { removalPolicy: props.tableRemovalPolicy });
    // Its alarms notify the topic of Operations (below), like every other alarm.
    this.workQueue = new WorkQueue(this, 'WorkQueue', { consumerTimeout: workerTimeout });
    // Host permissions go to the functions that run blueprint plug-ins and no others: SSM
    // (HostControl) to setup and worker; EC2 (HostFleet) to setup (launches, in
    // activateResource), worker (teardown, EC2 events) and sweep (orphaned instances); the api
    // only reads and writes the table and sends messages.
    this.hostControl = new HostControl(this, 'HostControl', { logRetention: props.logRetention });
    // The EC2 hosts Drydock launches (ec2-host blueprints): in the operator's VPC when the
    // context names one (drydock:vpcId, drydock:subnetIds), else in a small VPC made for them.
    const hostFleet =
      (props.ec2Hosts ?? true)
        ? new HostFleet(this, 'HostFleet', {
            deploymentName: this.hostControl.deploymentName,
            commandLogGroup: this.hostControl.commandLogGroup,
            existingVpc: existingVpcFromContext(this),
            logRetention: props.logRetention,
          })
        : undefined;
    this.hostFleet = hostFleet;
    const bindFleet = (fn: DrydockFunction, launch: boolean) =>
      hostFleet ? fn.bindHostFleet(hostFleet, { launch }) : fn;

    this.setupFunction = new DrydockFunction(this, 'SetupFunction', {
      ...common,
      handler: 'setup',
      description: 'Drydock: one step of resource setup (Step Functions task)',
      timeout: Duration.minutes(1),
    })
      .bindTable(this.table)
      .bindWorkQueue(this.workQueue)
      .bindHostControl(this.hostControl);
    bindFleet(this.setupFunction, true);

    this.setupWorkflow = new SetupWorkflow(this, 'SetupWorkflow', {
      setupFunction: this.setupFunction,
      timeout: props.setupTimeout,
      logRetention: props.logRetention,
    });

    this.apiFunction = new DrydockFunction(this, 'ApiFunction', {
      ...common,
      handler: 'api',
      description: 'Drydock: the lease API (/v1)',
      // API Gateway gives up on an integration after 29 s.
      timeout: Duration.seconds(29),
      memorySize: 1024,
      environment: {
        ADMIN_PRINCIPALS: adminPrincipals.join(','),
        OWNER_GRANULARITY: props.ownerGranularity ?? 'role',
      },
    })
      .bindTable(this.table)
      .bindWorkQueue(this.workQueue)
      // No setup workflow: only the worker starts setups (the api only writes and enqueues).
      .bindDeadLetterQueue(this.workQueue);

    this.workerFunction = new DrydockFunction(this, 'WorkerFunction', {
      ...common,
      handler: 'worker',
      description: 'Drydock: lease and resource updates from the work queue',
      timeout: workerTimeout,
      // Waiting is a loop by design: an update that must wait re-enqueues itself with a delay,
      // for as long as the lease waits. Without this, Lambda would drop it after ~16 rounds.
      allowRecursiveLoop: true,
    })
      .bindTable(this.table)
      .bindWorkQueue(this.workQueue)
      .bindSetupWorkflow(this.setupWorkflow)
      .bindHostControl(this.hostControl);
    bindFleet(this.workerFunction, false);
    this.workerFunction.addEventSource(
      new SqsEventSource(this.workQueue.queue, {
        batchSize: 10,
        reportBatchItemFailures: true,
        maxConcurrency: props.workerMaxConcurrency ?? 16,
      }),
    );

    this.sweepFunction = new DrydockFunction(this, 'SweepFunction', {
      ...common,
      handler: 'sweep',
      description: 'Drydock: the every-minute sweep (expiry, reclaim, re-drive, reconcile)',
      // Finish before the next tick; a failed sweep is not retried, the next tick redoes it.
      timeout: Duration.seconds(50),
      retryAttempts: 0,
    })
      .bindTable(this.table)
      // No setup workflow: the sweep only enqueues updates; the worker starts setups.
      .bindWorkQueue(this.workQueue);
    bindFleet(this.sweepFunction, false);

    this.api = new LeaseApi(this, 'Api', {
      handler: this.apiFunction,
      stageName: props.apiStageName,
      throttlingRateLimit: props.apiThrottlingRateLimit,
      throttlingBurstLimit: props.apiThrottlingBurstLimit,
      accessLogRetention: props.logRetention,
      cloudWatchRole: props.apiGatewayCloudWatchRole,
      allowedPrincipals: props.allowedPrincipals,
      allowedOrgId: props.allowedOrgId,
    });

    this.eventRouting = new EventRouting(this, 'Events', {
      sweepFunction: this.sweepFunction,
      workQueue: this.workQueue,
    });

    this.operations = new Operations(this, 'Operations', {
      functions: [this.apiFunction, this.workerFunction, this.sweepFunction, this.setupFunction],
      workQueue: this.workQueue,
      table: this.table,
      api: this.api,
      setupWorkflow: this.setupWorkflow,
      alarmTopic: props.alarmTopic ?? existingTopic(this, props.alarmTopicArn),
      alarmEmail: props.alarmEmail,
      oldestWaitAlarmThreshold: props.oldestWaitAlarmThreshold,
    });
    new CfnOutput(this, 'DashboardName', {
      value: this.operations.dashboard.dashboard.dashboardName,
    });
    new CfnOutput(this, 'AlarmTopicArn', {
      description: 'The topic every Drydock alarm notifies (subscribe people or chat to it)',
      value: this.operations.alarmTopic.topicArn,
    });

    new CfnOutput(this, 'ApiUrl', {
      description: 'Lease API base URL (SigV4); routes are under v1/',
      value: this.api.url,
    });
    new CfnOutput(this, 'TableName', { value: this.table.table.tableName });
    new CfnOutput(this, 'QueueUrl', { value: this.workQueue.queue.queueUrl });
    new CfnOutput(this, 'CommandLogGroupName', {
      description:
        "Where SSM Run Command writes command output (the hosts' instance profile writes here)",
      value: this.hostControl.commandLogGroup.logGroupName,
    });
    // What an ec2-host blueprint names (README "Spot hosts").
    if (hostFleet) {
      new CfnOutput(this, 'HostSubnetIds', {
        description: 'Subnets ec2-host blueprints may launch into (subnetIds), one per AZ',
        value: Fn.join(',', hostFleet.network.subnetIds),
      });
      new CfnOutput(this, 'HostSecurityGroupId', {
        description: 'Security group for ec2-host blueprints (securityGroupIds): no inbound rules',
        value: hostFleet.network.securityGroup.securityGroupId,
      });
      new CfnOutput(this, 'HostInstanceProfileArn', {
        description:
          "The hosts' instance profile (SSM agent, command output); the ec2-host default",
        value: hostFleet.instanceProfile.instanceProfileArn,
      });
    }
    new CfnOutput(this, 'StateMachineArn', {
      value: this.setupWorkflow.stateMachine.stateMachineArn,
    });
  }
}

/** The alarm topic named by ARN, imported; validated early so a typo fails the synth. */
function existingTopic(stack: Stack, arn: string | undefined): sns.ITopic | undefined {
  if (arn === undefined) return undefined;
  if (!/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$/.test(arn)) {
    throw invalidProp(stack, 'alarmTopicArn', 'an SNS topic ARN', arn);
  }
  return sns.Topic.fromTopicArn(stack, 'ExistingAlarmTopic', arn);
}
