/**
 * The git calls of a working copy, as plans (steps.ts): set up the clones, check a lease's refs
 * out, clean up after it, check the clones' health. Every call is one command with its own
 * timeout; paths are relative to the host lease's working directory, so the same plans run on
 * local-host, static-host and ec2-host hosts.
 *
 * Every call but `init` names the repository explicitly (`--git-dir=.git --work-tree=.`): git
 * must never fall back to a repository *around* the clone when the clone's `.git` is damaged.
 */
import { posix } from 'node:path';
import { ResourceGoneError } from '../../core/errors.ts';
import type { WorkingCopyRepository } from '../../core/model.ts';
import type { WorkingCopyConfig } from './config.ts';
import { type Plan, type StepResult, succeeded } from './steps.ts';

/** Where a working copy's clones live on the host: `<root>/<key>/<directory>`. */
export interface Layout {
  /** `<root>/<key>`: the working copy's directory (holder commands' cwd base). */
  home: string;
  repositories: Array<WorkingCopyRepository & { directory: string }>;
}

export function cloneDir(layout: Layout, index: number): string {
  const repo = layout.repositories[index];
  if (!repo) throw new Error(`no repository #${index} in this working copy`);
  return posix.join(layout.home, repo.directory);
}

function isLocalUrl(url: string): boolean {
  return url.startsWith('file://') || url.startsWith('/');
}

/** `git [-c …] -C <dir> --git-dir=.git --work-tree=. <args>` */
function git(
  config: WorkingCopyConfig,
  dir: string,
  url: string,
  args: string[],
): [string, ...string[]] {
  const settings = Object.entries(config.gitConfig).flatMap(([k, v]) => ['-c', `${k}=${v}`]);
  // Only where a local repository is used: file:// is otherwise refused (submodule attacks).
  const file = isLocalUrl(url) ? ['-c', 'protocol.file.allow=always'] : [];
  return ['git', ...settings, ...file, '-C', dir, '--git-dir=.git', '--work-tree=.', ...args];
}

/** A shell word, single-quoted. */
function sh(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

// ---- setup: one clone per repository, reused when a healthy one is already there ----------

/**
 * Per repository: probe for a usable clone (`git fsck --connectivity-only`); if there is none,
 * wipe the directory and `git init` + `git remote add origin <url>`. Objects come with the first
 * lease's fetch: setup never talks to the remote, so an unreachable remote breaks a lease (with
 * the fetch's reason), not the working copy over and over.
 */
export function setupPlan(config: WorkingCopyConfig, layout: Layout): Plan {
  const t = config.timeouts;
  return (done) => {
    for (const [i, repo] of layout.repositories.entries()) {
      const dir = cloneDir(layout, i);
      const probe = done[`probe${i}`];
      if (!probe) {
        return {
          id: `probe${i}`,
          text: `git fsck --connectivity-only (reuse ${repo.directory}?)`,
          command: {
            script: `[ -d ${sh(`${dir}/.git`)} ] || exit 3; exec ${git(config, dir, repo.url, ['fsck', '--connectivity-only', '--no-progress']).map(sh).join(' ')}`,
          },
          timeoutSeconds: t.fsck,
          probe: true,
        };
      }
      if (succeeded(probe)) {
        if (!done[`remote${i}`]) {
          return {
            id: `remote${i}`,
            text: `git remote set-url origin ${repo.url} (reusing the clone in ${repo.directory})`,
            command: {
              argv: git(config, dir, repo.url, ['remote', 'set-url', 'origin', repo.url]),
            },
            timeoutSeconds: t.setup,
          };
        }
        continue;
      }
      if (!done[`init${i}`]) {
        return {
          id: `init${i}`,
          text: `git init ${repo.directory} (origin ${repo.url})`,
          command: {
            script: [
              `rm -rf ${sh(dir)}`,
              `mkdir -p ${sh(dir)}`,
              `git -C ${sh(dir)} init --quiet`,
              `${git(config, dir, repo.url, ['remote', 'add', 'origin', repo.url]).map(sh).join(' ')}`,
            ].join(' && '),
          },
          timeoutSeconds: t.setup,
        };
      }
    }
    return 'done';
  };
}

// ---- a lease: fetch, resolve, check out, clean, merge ---------------------------------------

/** A ref that must be fetched by name (not covered by fetching all branches and tags). */
function fetchedByName(ref: string): boolean {
  return ref === 'HEAD' || ref.startsWith('refs/');
}

/** The refs a repository's lease wants: what to check out, then what to merge, in order. */
function wanted(repo: WorkingCopyRepository): string[] {
  return [repo.ref ?? 'HEAD', ...(repo.merge ?? [])];
}

function localRef(i: number, n: number): string {
  return `refs/drydock/want/${i}/${n}`;
}

/** Commits are looked up as the fetched ref, a branch of origin, a tag, then as given. */
function candidates(ref: string, i: number, n: number): string[] {
  if (fetchedByName(ref)) return [localRef(i, n)];
  return [`refs/remotes/origin/${ref}`, `refs/tags/${ref}`, ref];
}

/** Why a lease's checkout failed, for the holder: names the ref, or the conflicting files. */
export class CheckoutError extends Error {}

/** Files git reported as conflicting (`CONFLICT (content): Merge conflict in a.txt`). */
export function conflictingFiles(output: string): string[] {
  const files = new Set<string>();
  // `CONFLICT (content): Merge conflict in <file>`, or `CONFLICT (modify/delete): <file> deleted…`
  for (const m of output.matchAll(/^CONFLICT \([^)]*\): (?:Merge conflict in (\S+)|(\S+))/gm)) {
    const file = m[1] ?? m[2];
    if (file) files.add(file);
  }
  return [...files];
}

export function leasePlan(config: WorkingCopyConfig, layout: Layout): Plan {
  const t = config.timeouts;
  const ident = ['-c', 'user.name=Drydock', '-c', 'user.email=drydock@localhost'];
  return (done) => {
    for (const [i, repo] of layout.repositories.entries()) {
      const dir = cloneDir(layout, i);
      const refs = wanted(repo);
      const sane = done[`sane${i}`];
      if (!sane) {
        return {
          id: `sane${i}`,
          text: `git rev-parse --git-dir in ${repo.directory}`,
          command: { argv: git(config, dir, repo.url, ['rev-parse', '--git-dir']) },
          timeoutSeconds: t.checkout,
          probe: true,
        };
      }
      if (sane.timedOut) {
        throw new CheckoutError(`git rev-parse --git-dir timed out after ${t.checkout}s`);
      }
      if (!succeeded(sane)) {
        // Damaged since the last lease (its .git gone or gutted): the copy, not this lease, is
        // at fault. ResourceGoneError breaks the copy; the lease is served by a rebuilt one.
        const said = (sane.stderr.trim() || sane.stdout.trim()).split('\n').at(-1) ?? '';
        throw new ResourceGoneError(
          `the clone in ${repo.directory} is damaged (${said}); the working copy will be rebuilt`,
        );
      }
      if (!done[`fetch${i}`]) {
        const named = refs.flatMap((ref, n) =>
          fetchedByName(ref) ? [`+${ref}:${localRef(i, n)}`] : [],
        );
        return {
          id: `fetch${i}`,
          text: `git fetch ${repo.url} ${refs.join(' ')}`,
          command: {
            argv: git(config, dir, repo.url, [
              'fetch',
              '--quiet',
              '--no-tags',
              '--force',
              '--prune',
              'origin',
              '+refs/heads/*:refs/remotes/origin/*',
              '+refs/tags/*:refs/tags/*',
              ...named,
            ]),
          },
          timeoutSeconds: t.fetch,
        };
      }
      for (const [n, ref] of refs.entries()) {
        const resolved = done[`resolve${i}-${n}`];
        if (!resolved) {
          const tries = candidates(ref, i, n)
            .map(
              (c) =>
                `${git(config, dir, repo.url, ['rev-parse', '--verify', '--quiet', `${c}^{commit}`])
                  .map(sh)
                  .join(' ')} && exit 0`,
            )
            .join('; ');
          return {
            id: `resolve${i}-${n}`,
            text: `git rev-parse ${ref}`,
            command: { script: `${tries}; exit 1` },
            timeoutSeconds: t.checkout,
            probe: true,
          };
        }
        if (!succeeded(resolved)) {
          throw new CheckoutError(
            resolved.timedOut
              ? `git rev-parse ${ref} timed out after ${t.checkout}s`
              : `ref '${ref}' was not found in ${repo.url} (not a branch, tag, commit or fetchable ref there)`,
          );
        }
        const sha = resolved.stdout.trim();
        if (n === 0 && !done[`checkout${i}`]) {
          return {
            id: `checkout${i}`,
            text: `git checkout ${ref} (${sha.slice(0, 12)})`,
            command: {
              argv: git(config, dir, repo.url, [
                '-c',
                'advice.detachedHead=false',
                'checkout',
                '--quiet',
                '--force',
                '--detach',
                sha,
              ]),
            },
            timeoutSeconds: t.checkout,
          };
        }
        if (n === 0 && !done[`clean${i}`]) {
          return {
            id: `clean${i}`,
            text: `git clean -ffdx`,
            command: { argv: git(config, dir, repo.url, ['clean', '-ffdxq']) },
            timeoutSeconds: t.clean,
          };
        }
        if (n > 0) {
          const merged = done[`merge${i}-${n}`];
          if (!merged) {
            return {
              id: `merge${i}-${n}`,
              text: `git merge ${ref} (${sha.slice(0, 12)})`,
              command: {
                argv: git(config, dir, repo.url, [...ident, 'merge', '--no-edit', '--quiet', sha]),
              },
              timeoutSeconds: t.merge,
              probe: true,
            };
          }
          if (!succeeded(merged)) throw new CheckoutError(mergeFailure(ref, repo, merged, t.merge));
        }
      }
    }
    return 'done';
  };
}

function mergeFailure(
  ref: string,
  repo: WorkingCopyRepository,
  result: StepResult,
  timeoutSeconds: number,
): string {
  if (result.timedOut) return `git merge ${ref} timed out after ${timeoutSeconds}s`;
  const files = conflictingFiles(`${result.stdout}\n${result.stderr}`);
  if (files.length > 0) {
    return `merging ${ref} into ${repo.directory} conflicts in ${files.join(', ')}`;
  }
  const said = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-3).join(' / ');
  return `git merge ${ref} in ${repo.directory} failed (exit ${result.exitCode}): ${said}`;
}

// ---- release: back to a detached, clean state ------------------------------------------------

export function releasePlan(config: WorkingCopyConfig, layout: Layout): Plan {
  const t = config.timeouts;
  return (done) => {
    for (const [i, repo] of layout.repositories.entries()) {
      const dir = cloneDir(layout, i);
      const gitIn = (args: string[]) => git(config, dir, repo.url, args).map(sh).join(' ');
      if (!done[`reset${i}`]) {
        return {
          id: `reset${i}`,
          text: `git reset --hard in ${repo.directory}`,
          // A lease that never got to its checkout leaves no HEAD to reset to (a fresh clone).
          command: {
            script: `if ${gitIn(['rev-parse', '--quiet', '--verify', 'HEAD'])} >/dev/null; then exec ${gitIn(['reset', '--hard', '--quiet'])}; fi`,
          },
          timeoutSeconds: t.clean,
        };
      }
      const calls: Array<[string, string, string[], number]> = [
        [`clean${i}`, 'git clean -ffdx', ['clean', '-ffdxq'], t.clean],
        [
          `subclean${i}`,
          'git submodule foreach git clean -ffdx',
          ['submodule', 'foreach', '--quiet', '--recursive', 'git', 'clean', '-ffdxq'],
          t.clean,
        ],
      ];
      for (const [id, text, args, timeoutSeconds] of calls) {
        if (!done[id]) {
          return {
            id,
            text: `${text} in ${repo.directory}`,
            command: { argv: git(config, dir, repo.url, args) },
            timeoutSeconds,
          };
        }
      }
    }
    return 'done';
  };
}

// ---- health: is every clone intact and clean? ------------------------------------------------

/**
 * Repair, then verify: put the clone back (a lease whose merge conflicted left it mid-merge; a
 * fresh clone has no HEAD yet, so there is nothing to reset to), then it must be clean
 * (`git status`) and whole (`git fsck --connectivity-only`). A damaged `.git` fails here.
 */
export function healthPlan(config: WorkingCopyConfig, layout: Layout): Plan {
  const t = config.timeouts;
  return (done) => {
    for (const [i, repo] of layout.repositories.entries()) {
      const dir = cloneDir(layout, i);
      const gitIn = (args: string[]) => git(config, dir, repo.url, args).map(sh).join(' ');
      if (!done[`restore${i}`]) {
        return {
          id: `restore${i}`,
          text: `git reset --hard && git clean -ffdx in ${repo.directory}`,
          command: {
            script: `if ${gitIn(['rev-parse', '--quiet', '--verify', 'HEAD'])} >/dev/null; then ${gitIn(['reset', '--hard', '--quiet'])} || exit $?; fi; exec ${gitIn(['clean', '-ffdxq'])}`,
          },
          timeoutSeconds: t.clean,
        };
      }
      if (!done[`status${i}`]) {
        return {
          id: `status${i}`,
          text: `git status in ${repo.directory}`,
          // Clean means no output at all: anything listed is dirt a release left behind.
          command: {
            script: `out=$(${git(config, dir, repo.url, ['status', '--porcelain', '--ignored']).map(sh).join(' ')}) || exit $?; [ -z "$out" ] || { echo "not clean: $out" >&2; exit 4; }`,
          },
          timeoutSeconds: t.clean,
        };
      }
      if (!done[`fsck${i}`]) {
        return {
          id: `fsck${i}`,
          text: `git fsck --connectivity-only in ${repo.directory}`,
          command: {
            argv: git(config, dir, repo.url, ['fsck', '--connectivity-only', '--no-progress']),
          },
          timeoutSeconds: t.fsck,
        };
      }
    }
    return 'done';
  };
}
