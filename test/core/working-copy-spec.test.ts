/**
 * What a working-copy lease may ask for, checked at the edge (core/working-copy-spec.ts) and as
 * the CLI builds it from --repo/--merge (lib/cli/working-copy.ts).
 */
import { describe, expect, it } from 'vitest';
import {
  defaultDirectory,
  parseWorkingCopySpec,
  repositorySetKey,
} from '../../lambdas/core/working-copy-spec.ts';
import { parseRepoOption, workingCopyRequest } from '../../lib/cli/working-copy.ts';

describe('working-copy lease spec', () => {
  it('fills each directory from its URL and keys the set by URL and directory, not refs', () => {
    const a = parseWorkingCopySpec({
      repositories: [{ url: 'https://git.example.com/org/app.git', ref: 'main' }],
    });
    expect(a.repositories[0]?.directory).toBe('app');
    const b = parseWorkingCopySpec({
      repositories: [{ url: 'https://git.example.com/org/app.git', ref: 'v2', merge: ['refs/x'] }],
    });
    expect(repositorySetKey(a)).toBe(repositorySetKey(b));
    const c = parseWorkingCopySpec({
      repositories: [{ url: 'https://git.example.com/org/app.git', directory: 'src' }],
    });
    expect(repositorySetKey(c)).not.toBe(repositorySetKey(a));
    expect(defaultDirectory('git@host:org/lib.git')).toBe('lib');
    expect(defaultDirectory('file:///tmp/r.git/')).toBe('r');
  });

  it('refuses refs and directories that could escape or read as options, naming each problem', () => {
    const attempt = () =>
      parseWorkingCopySpec({
        repositories: [
          { url: '--upload-pack=evil', ref: '-x', directory: '../out', merge: ['a..b'] },
        ],
      });
    expect(attempt).toThrow(/workingCopy\.repositories\.0\.url: a repository URL/);
    expect(attempt).toThrow(/repositories\.0\.ref: a ref is/);
    expect(attempt).toThrow(/repositories\.0\.directory: a directory is a relative path/);
    expect(attempt).toThrow(/repositories\.0\.merge\.0: a ref is/);
    expect(() => parseWorkingCopySpec({ repositories: [] })).toThrow(/repositories/);
    expect(() =>
      parseWorkingCopySpec({
        repositories: [{ url: 'file:///a/x.git' }, { url: 'file:///b/x.git' }],
      }),
    ).toThrow(/two repositories would share the directory 'x'; give each a distinct "directory"/);
  });

  it('the CLI splits url@ref only where @ can start a ref', () => {
    expect(parseRepoOption('file:///tmp/r.git@main')).toEqual({
      url: 'file:///tmp/r.git',
      ref: 'main',
    });
    expect(parseRepoOption('git@github.com:org/r.git')).toEqual({
      url: 'git@github.com:org/r.git',
    });
    expect(parseRepoOption('git@github.com:org/r.git@refs/changes/1/2')).toEqual({
      url: 'git@github.com:org/r.git',
      ref: 'refs/changes/1/2',
    });
    expect(parseRepoOption('https://user@host.example/r.git')).toEqual({
      url: 'https://user@host.example/r.git',
    });
  });

  it('the CLI puts --merge on the first --repo, or on the one its dir: names', () => {
    expect(
      workingCopyRequest(
        ['file:///a/app.git@main', 'file:///b/lib.git'],
        ['refs/staging/1', 'lib:refs/staging/2'],
      ),
    ).toEqual({
      repositories: [
        { url: 'file:///a/app.git', ref: 'main', directory: 'app', merge: ['refs/staging/1'] },
        { url: 'file:///b/lib.git', directory: 'lib', merge: ['refs/staging/2'] },
      ],
    });
    expect(() => workingCopyRequest(['file:///a/app.git'], ['nope:refs/x'])).toThrow(
      /--merge nope:refs\/x: no --repo is cloned into 'nope' \(directories: app\)/,
    );
    expect(() => workingCopyRequest(undefined, ['refs/x'])).toThrow(/--merge needs a --repo/);
    expect(workingCopyRequest(undefined, undefined)).toBeUndefined();
  });
});
