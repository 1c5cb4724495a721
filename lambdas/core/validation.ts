/**
 * How a zod failure reads in an error message: every problem, each with where it is, in one
 * line (`limits.maxResources: Too big: expected number to be <=1000; id: ...`). Every edge that
 * parses with zod (HTTP bodies, queue messages, workflow events, the environment, blueprint
 * definitions) reports through this, so a caller sees the same shape wherever it went wrong.
 */
import type { z } from 'zod';

export interface IssueFormat {
  /**
   * What to call the input itself when a problem has no path (e.g. `(event)`, `(message)`).
   * @default '(root)'
   */
  root?: string;
  /** Where the input sits, put in front of every path (e.g. `body` gives `body.limits`). */
  at?: string;
  /** A clearer wording for some issues; undefined keeps zod's message. */
  message?: (issue: z.core.$ZodIssue) => string | undefined;
}

/** Every issue of a failed parse as `<path>: <message>`, joined with `; `. */
export function formatZodIssues(error: z.ZodError, format: IssueFormat = {}): string {
  const root = format.root ?? '(root)';
  return error.issues
    .map((issue) => {
      // Record keys are part of the path: a 100 KB key must not come back whole.
      const path = [
        ...(format.at === undefined ? [] : [format.at]),
        ...issue.path.map((part) => cut(String(part))),
      ];
      const where = path.join('.') || root;
      return `${where}: ${format.message?.(issue) ?? keyMessage(issue) ?? issue.message}`;
    })
    .join('; ');
}

/** How much of a caller's text an error message quotes. */
export const QUOTED_CHARS = 40;

/** At most QUOTED_CHARS of `text`, saying how much was left out. */
export function cut(text: string): string {
  return text.length > QUOTED_CHARS
    ? `${text.slice(0, QUOTED_CHARS)}…(${text.length} characters)`
    : text;
}

/** `text` quoted for an error message: a short prefix only (messages must stay small). */
export function quoted(text: string): string {
  return `'${cut(text)}'`;
}

/** A record key that failed its own schema: say why (zod's own message is "Invalid key"). */
function keyMessage(issue: z.core.$ZodIssue): string | undefined {
  if (issue.code !== 'invalid_key' || issue.issues.length === 0) return undefined;
  return issue.issues.map((inner) => inner.message).join('; ');
}
