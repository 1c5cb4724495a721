/**
 * The working-copy options of `drydock lease`: `--repo <url>[@<ref>]` (repeatable), `--merge
 * [<directory>:]<ref>` (repeatable, in order; the first repository unless a directory is named)
 * and `--cwd <dir>`, turned into the API's structured `workingCopy` request field. The server
 * validates it again (core/working-copy-spec.ts); this only gives early, CLI-worded errors.
 */
import type { WorkingCopySpec } from '../../lambdas/core/model.ts';
import { defaultDirectory } from '../../lambdas/core/working-copy-spec.ts';
import { CliError, EXIT } from './output.ts';

/**
 * `<url>@<ref>` splits at the last `@` when what follows can be a ref (no `:`, which refs never
 * hold) and what precedes is a whole URL or path (not `https://user` of `https://user@host/r`).
 */
export function parseRepoOption(value: string): { url: string; ref?: string } {
  const at = value.lastIndexOf('@');
  if (at > 0) {
    const url = value.slice(0, at);
    const ref = value.slice(at + 1);
    const afterScheme = url.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
    if (ref && !ref.includes(':') && afterScheme.includes('/')) return { url, ref };
  }
  return { url: value };
}

/** The `workingCopy` request field from --repo and --merge, or undefined without --repo. */
export function workingCopyRequest(
  repos: string[] | undefined,
  merges: string[] | undefined,
): WorkingCopySpec | undefined {
  if (!repos?.length) {
    if (merges?.length) {
      throw new CliError('--merge needs a --repo to merge into', EXIT.failure);
    }
    return undefined;
  }
  const repositories = repos.map((value) => {
    const { url, ref } = parseRepoOption(value);
    return {
      url,
      ...(ref ? { ref } : {}),
      directory: defaultDirectory(url),
      merge: [] as string[],
    };
  });
  for (const value of merges ?? []) {
    const colon = value.indexOf(':');
    const directory = colon > 0 ? value.slice(0, colon) : undefined;
    const ref = colon > 0 ? value.slice(colon + 1) : value;
    const target = directory
      ? repositories.find((r) => r.directory === directory)
      : repositories[0];
    if (!target) {
      throw new CliError(
        `--merge ${value}: no --repo is cloned into '${directory}' (directories: ${repositories.map((r) => r.directory).join(', ')})`,
        EXIT.failure,
      );
    }
    target.merge.push(ref);
  }
  return {
    repositories: repositories.map(({ merge, ...r }) => (merge.length ? { ...r, merge } : r)),
  };
}
