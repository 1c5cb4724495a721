import { type Duration, Token } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/**
 * Early prop validation for the Drydock constructs: fail at construction time, naming the
 * construct, the prop and the bad value, rather than at deploy time with a CloudFormation
 * error that names neither. Unresolved tokens are left to CloudFormation.
 */

export function invalidProp(
  scope: IConstruct,
  prop: string,
  expected: string,
  got: unknown,
): Error {
  return new Error(`${scope.node.path}: ${prop} must be ${expected}, got ${JSON.stringify(got)}`);
}

export function checkInteger(
  scope: IConstruct,
  prop: string,
  value: number | undefined,
  min: number,
  max: number,
): void {
  if (value === undefined || Token.isUnresolved(value)) return;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw invalidProp(scope, prop, `an integer from ${min} to ${max}`, value);
  }
}

export function checkPositiveNumber(
  scope: IConstruct,
  prop: string,
  value: number | undefined,
): void {
  if (value === undefined || Token.isUnresolved(value)) return;
  if (!Number.isFinite(value) || value <= 0) {
    throw invalidProp(scope, prop, 'a positive number', value);
  }
}

/** Checks min <= duration <= max, both given in seconds; `why` explains the bounds. */
export function checkDuration(
  scope: IConstruct,
  prop: string,
  value: Duration | undefined,
  minSeconds: number,
  maxSeconds: number,
  why?: string,
): void {
  if (value === undefined || value.isUnresolved()) return;
  const seconds = value.toSeconds({ integral: false });
  if (seconds < minSeconds || seconds > maxSeconds) {
    throw invalidProp(
      scope,
      prop,
      `between ${minSeconds} and ${maxSeconds} seconds${why ? ` (${why})` : ''}`,
      value.toHumanString(),
    );
  }
}
