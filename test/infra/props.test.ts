import { Duration } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_HANDLERS_DIR,
  HANDLER_NAMES,
  handlerEntry,
} from '../../lib/constructs/drydock-function.ts';
import { FIXTURE_HANDLERS_DIR, newStack } from './support.ts';

describe('DrydockStack props', () => {
  it('rejects admin principals that are not IAM ARNs, naming them', () => {
    expect(() =>
      newStack({ adminPrincipals: ['arn:aws:iam::123456789012:user/ci', 'alice'] }),
    ).toThrow(
      'Drydock: adminPrincipals must be IAM user, role or assumed-role ARNs, got ["alice"]',
    );
  });

  it('accepts users, roles and assumed roles', () => {
    expect(() =>
      newStack({
        adminPrincipals: [
          'arn:aws:iam::123456789012:user/ci',
          'arn:aws:iam::123456789012:role/path/admin',
          'arn:aws:sts::123456789012:assumed-role/admin/alice',
        ],
      }),
    ).not.toThrow();
  });

  it.each([
    [
      { workerMaxConcurrency: 1 },
      'Drydock: workerMaxConcurrency must be an integer from 2 to 1000, got 1',
    ],
    [
      { workerMaxConcurrency: 2.5 },
      'workerMaxConcurrency must be an integer from 2 to 1000, got 2.5',
    ],
    [
      { workerTimeout: Duration.minutes(16) },
      'workerTimeout must be between 30 and 900 seconds (a worker step may wait 20 s on SSM housekeeping commands), got "16 minutes"',
    ],
    [
      { workerTimeout: Duration.seconds(20) },
      'Drydock: workerTimeout must be between 30 and 900 seconds (a worker step may wait 20 s on SSM housekeeping commands), got "20 seconds"',
    ],
    [
      { setupTimeout: Duration.seconds(30) },
      'Drydock/SetupWorkflow: timeout must be between 60 and 31536000 seconds, got "30 seconds"',
    ],
    [
      { apiThrottlingRateLimit: 0 },
      'Drydock/Api: throttlingRateLimit must be a positive number, got 0',
    ],
    [
      { apiThrottlingBurstLimit: -1 },
      'Drydock/Api: throttlingBurstLimit must be an integer from 1 to 100000, got -1',
    ],
    [
      { apiStageName: 'v1 prod' },
      'Drydock/Api: stageName must be letters, digits and underscores, got "v1 prod"',
    ],
    [
      { logLevel: 'LOUD' as never },
      'Drydock: SetupFunction.logLevel must be one of DEBUG, INFO, WARN, ERROR, got "LOUD"',
    ],
  ])('rejects %o', (props, message) => {
    expect(() => newStack(props)).toThrow(message);
  });

  it('says which handler file is missing', () => {
    expect(() => newStack({ handlersDir: '/nonexistent/handlers' })).toThrow(
      "Drydock/SetupFunction: no handler file at /nonexistent/handlers/setup.ts (handler 'setup' must live in lambdas/handlers/<name>.ts and export `handler`)",
    );
  });

  it('has a fixture for every handler, and looks for the real ones in lambdas/handlers', () => {
    expect(HANDLER_NAMES).toEqual(['api', 'worker', 'sweep', 'setup']);
    expect(handlerEntry('api', FIXTURE_HANDLERS_DIR)).toMatch(
      /test\/infra\/fixtures\/handlers\/api\.ts$/,
    );
    expect(handlerEntry('worker')).toBe(`${DEFAULT_HANDLERS_DIR}/worker.ts`);
    expect(DEFAULT_HANDLERS_DIR).toMatch(/\/lambdas\/handlers$/);
  });
});
