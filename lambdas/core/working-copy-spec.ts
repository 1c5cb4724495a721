/**
 * What a `working-copy` lease asks for, checked once at the edge (the API body, the CLI, a child
 * lease) and normalised (each repository's directory filled in), so the engine, the plug-in's
 * matching (`canAcquire`: same repository set) and the idempotency hash all see one form.
 */
import { z } from 'zod';
import { ValidationError } from './errors.ts';
import type { WorkingCopyRepository, WorkingCopySpec } from './model.ts';
import { formatZodIssues } from './validation.ts';

/** A git ref or commit as a lease may name it: no spaces, no option look-alikes, no `..`. */
const gitRef = z
  .string()
  .min(1)
  .max(256)
  .regex(
    /^(?!-)(?!.*\.\.)[A-Za-z0-9._/@+=-]+$/,
    'a ref is a branch, tag, commit or full ref (refs/changes/…): letters, digits and ._/@+=- only',
  );

/** A directory inside the working copy: relative, plain segments, never `..`. */
const directory = z
  .string()
  .min(1)
  .max(200)
  .regex(
    /^(?!\/)(?!.*(^|\/)\.\.?(\/|$))[A-Za-z0-9._/-]+$/,
    'a directory is a relative path of plain segments (letters, digits, ._-), without . or ..',
  );

const repositorySchema = z
  .object({
    url: z
      .string()
      .min(1)
      .max(2048)
      .regex(/^(?!-)\S+$/, 'a repository URL has no spaces and does not start with -'),
    ref: gitRef.optional(),
    merge: z.array(gitRef).max(20).optional(),
    directory: directory.optional(),
  })
  .strict();

export const workingCopySpecSchema = z
  .object({ repositories: z.array(repositorySchema).min(1).max(10) })
  .strict();

/** The directory a repository is cloned into when the lease names none: the URL's last part. */
export function defaultDirectory(url: string): string {
  const last = url.replace(/\/+$/, '').split(/[/:]/).at(-1) ?? '';
  const name = last.replace(/\.git$/, '').replace(/[^A-Za-z0-9._-]/g, '_');
  return name && name !== '.' && name !== '..' ? name : 'repo';
}

/** Validate and normalise a working-copy spec; the error names every problem. */
export function parseWorkingCopySpec(input: unknown): WorkingCopySpec {
  const parsed = workingCopySpecSchema.safeParse(input);
  if (!parsed.success) {
    throw new ValidationError(
      `invalid workingCopy: ${formatZodIssues(parsed.error, { at: 'workingCopy' })}`,
    );
  }
  const repositories: WorkingCopyRepository[] = parsed.data.repositories.map((r) => ({
    ...r,
    directory: r.directory ?? defaultDirectory(r.url),
  }));
  const dirs = repositories.map((r) => r.directory as string);
  const clash = dirs.find((d, i) =>
    dirs.some((o, j) => j !== i && (o === d || o.startsWith(`${d}/`))),
  );
  if (clash) {
    throw new ValidationError(
      `invalid workingCopy: two repositories would share the directory '${clash}'; give each a distinct "directory"`,
    );
  }
  return { repositories };
}

/** The repository set a working copy holds (URL + directory, in order): what reuse matches on. */
export function repositorySetKey(spec: WorkingCopySpec): string {
  return JSON.stringify(spec.repositories.map((r) => [r.url, r.directory]));
}
