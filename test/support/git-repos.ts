/**
 * Real git repositories for working-copy tests: a bare "remote" in a temp dir, and a scratch
 * clone to make commits in and push from. Everything runs the real `git` binary.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 'Test',
  GIT_AUTHOR_EMAIL: 'test@example.com',
  GIT_COMMITTER_NAME: 'Test',
  GIT_COMMITTER_EMAIL: 'test@example.com',
  GIT_TERMINAL_PROMPT: '0',
};

export function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', ['-c', 'protocol.file.allow=always', ...args], {
    cwd,
    env: ENV,
    encoding: 'utf8',
  }).trim();
}

export interface TestRepo {
  /** The bare repository (the remote). */
  bare: string;
  url: string;
  /** A scratch clone that commits are made in. */
  work: string;
  /** Commit `files` on the scratch clone's current branch; returns the commit. */
  commit(message: string, files: Record<string, string>): string;
  /** Push HEAD of the scratch clone to `ref` of the remote (a branch name or a full ref). */
  push(ref: string): void;
  checkout(ref: string, options?: { create?: boolean }): void;
}

export function makeRepo(name = 'r'): TestRepo {
  const dir = mkdtempSync(join(tmpdir(), 'drydock-git-'));
  const bare = join(dir, `${name}.git`);
  const work = join(dir, 'work');
  git(dir, 'init', '--quiet', '--bare', '--initial-branch=main', bare);
  git(dir, 'init', '--quiet', '--initial-branch=main', work);
  git(work, 'remote', 'add', 'origin', bare);
  return {
    bare,
    url: `file://${bare}`,
    work,
    commit(message, files) {
      for (const [file, content] of Object.entries(files)) writeFileSync(join(work, file), content);
      git(work, 'add', '--all');
      git(work, 'commit', '--quiet', '-m', message);
      return git(work, 'rev-parse', 'HEAD');
    },
    push(ref) {
      const target = ref.startsWith('refs/') ? ref : `refs/heads/${ref}`;
      git(work, 'push', '--quiet', '--force', 'origin', `HEAD:${target}`);
    },
    checkout(ref, options = {}) {
      git(work, 'checkout', '--quiet', ...(options.create ? ['-b'] : []), ref);
    },
  };
}
