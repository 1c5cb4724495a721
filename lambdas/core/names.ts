/**
 * What a name may be (issue 16, point 7): resource types, attribute names and lease ids share
 * one pattern — printable ASCII letters, digits and `_ . -`, starting with a letter or digit, at
 * most 64 characters — so no name is blank, holds a control character or a path separator, or
 * grows without bound. Blueprint ids are names too, held to a stricter subset (lowercase, digits
 * and dashes) because they also name directories, records and stack resources.
 *
 * Every edge (the API's zod schemas, the engine's own checks) refuses a bad name with a message
 * that shows the pattern.
 */
import { z } from 'zod';
import { ValidationError } from './errors.ts';

export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
export const NAME_RULE = `letters, digits, _ . - starting with a letter or digit, 1 to 64 characters (pattern ${NAME_PATTERN.source})`;

export const BLUEPRINT_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
export const BLUEPRINT_ID_RULE = `lowercase letters, digits and dashes starting with a letter or digit, 1 to 63 characters, e.g. linux-pool (pattern ${BLUEPRINT_ID_PATTERN.source})`;

/** zod schema of a name; `what` says which (`type`, `attribute name`). */
export const nameSchema = (what: string) =>
  z.string().regex(NAME_PATTERN, `${what} must be ${NAME_RULE}`);

export const blueprintIdSchema = z
  .string()
  .regex(BLUEPRINT_ID_PATTERN, `blueprint id must be ${BLUEPRINT_ID_RULE}`);

/** Throws a ValidationError naming the pattern unless `value` is a name. */
export function checkName(what: string, value: string): void {
  if (!NAME_PATTERN.test(value)) {
    throw new ValidationError(`${what} ${JSON.stringify(value)} is not a name: use ${NAME_RULE}`);
  }
}

export function checkBlueprintId(value: string): void {
  if (!BLUEPRINT_ID_PATTERN.test(value)) {
    throw new ValidationError(
      `blueprint id ${JSON.stringify(value)} is not valid: use ${BLUEPRINT_ID_RULE}`,
    );
  }
}
