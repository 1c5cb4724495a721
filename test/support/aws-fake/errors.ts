/**
 * The service errors the fake throws, built from the SDK's own exception classes so a plug-in's
 * error translation (`err instanceof InvalidInstanceId`, `err.name === 'ThrottlingException'`,
 * `err.$metadata.httpStatusCode`) is exercised exactly as on AWS.
 *
 * Shapes follow the API references: SSM SendCommand / GetCommandInvocation / CancelCommand /
 * DescribeInstanceInformation "Errors" sections (docs.aws.amazon.com/systems-manager/latest/APIReference/),
 * CloudWatch Logs GetLogEvents "Errors" (docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_GetLogEvents.html),
 * and the EC2 error codes page (docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html),
 * where EC2 errors are codes, not modelled classes (the SDK throws EC2ServiceException with `name`).
 */
import {
  InvalidParameterException as LogsInvalidParameterException,
  ThrottlingException as LogsThrottlingException,
  ResourceNotFoundException,
} from '@aws-sdk/client-cloudwatch-logs';
import { EC2ServiceException } from '@aws-sdk/client-ec2';
import {
  DuplicateInstanceId,
  InvalidCommandId,
  InvalidDocument,
  InvalidFilterKey,
  InvalidInstanceId,
  InvalidNextToken,
  InvalidParameters,
  InvocationDoesNotExist,
  SSMServiceException,
  ThrottlingException as SsmThrottlingException,
} from '@aws-sdk/client-ssm';

/** What the SDK's deserializer puts on every service error. */
function metadata(httpStatusCode = 400) {
  return { httpStatusCode, requestId: 'fake-request-id', attempts: 1, totalRetryDelay: 0 };
}

export const ssmErrors = {
  invalidInstanceId: (message: string) => new InvalidInstanceId({ message, $metadata: metadata() }),
  invalidDocument: (message: string) => new InvalidDocument({ message, $metadata: metadata() }),
  invalidParameters: (message: string) => new InvalidParameters({ message, $metadata: metadata() }),
  invalidCommandId: (message: string) => new InvalidCommandId({ message, $metadata: metadata() }),
  duplicateInstanceId: (message: string) =>
    new DuplicateInstanceId({ message, $metadata: metadata() }),
  invocationDoesNotExist: (message: string) =>
    new InvocationDoesNotExist({ message, $metadata: metadata() }),
  invalidNextToken: (message: string) => new InvalidNextToken({ message, $metadata: metadata() }),
  invalidFilterKey: (message: string) => new InvalidFilterKey({ message, $metadata: metadata() }),
  /** Unmodelled in SSM's error list but sent by the service for out-of-range members. */
  validation: (message: string) =>
    new SSMServiceException({
      name: 'ValidationException',
      $fault: 'client',
      message,
      $metadata: metadata(),
    }),
  throttling: () =>
    new SsmThrottlingException({
      message: 'Rate exceeded',
      Message: 'Rate exceeded',
      $metadata: metadata(400),
    }),
};

export const logsErrors = {
  resourceNotFound: (message: string) =>
    new ResourceNotFoundException({ message, $metadata: metadata() }),
  invalidParameter: (message: string) =>
    new LogsInvalidParameterException({ message, $metadata: metadata() }),
  throttling: () =>
    new LogsThrottlingException({ message: 'Rate exceeded', $metadata: metadata(400) }),
};

function ec2Error(name: string, message: string, httpStatusCode = 400) {
  return new EC2ServiceException({
    name,
    $fault: 'client',
    message,
    $metadata: metadata(httpStatusCode),
  });
}

export const ec2Errors = {
  instanceNotFound: (ids: string[]) =>
    ec2Error('InvalidInstanceID.NotFound', `The instance IDs '${ids.join(', ')}' do not exist`),
  invalidParameterValue: (message: string) => ec2Error('InvalidParameterValue', message),
  invalidNextToken: (message: string) => ec2Error('InvalidNextToken', message),
  /** EC2 throttles with `RequestLimitExceeded` (HTTP 503), not `ThrottlingException`. */
  throttling: () => ec2Error('RequestLimitExceeded', 'Request limit exceeded.', 503),
  /** Any EC2 error code by name (capacity codes, IdempotentParameterMismatch, …). */
  code: (name: string, message: string) => ec2Error(name, message),
};
