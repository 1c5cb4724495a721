/**
 * The one check of a command spec (moved here from the blueprint contract suite when the check
 * moved from each plug-in to the engine: plug-ins now receive parsed commands only).
 */
import { describe, expect, it } from 'vitest';
import { parseCommandSpec, parsedOfRecord } from '../../lambdas/core/command-spec.ts';

describe('parseCommandSpec', () => {
  it('refuses a malformed command spec with a ValidationError', () => {
    expect(() => parseCommandSpec({ argv: ['echo'], script: 'echo' }, 300)).toThrow(
      expect.objectContaining({ name: 'ValidationError' }),
    );
    expect(() => parseCommandSpec({}, 300)).toThrow(
      expect.objectContaining({ name: 'ValidationError' }),
    );
  });

  it('names every problem at once and never echoes env values', () => {
    let error: unknown;
    try {
      parseCommandSpec(
        { argv: [], script: ' ', timeoutSeconds: 4000, env: { TOKEN: 's3cret' } },
        300,
      );
    } catch (err) {
      error = err;
    }
    expect(String((error as Error).message)).toMatch(
      /give exactly one of argv or script.*argv must be.*script must not be empty.*timeoutSeconds/,
    );
    expect(JSON.stringify(error)).not.toContain('s3cret');
  });

  it('resolves the default timeout and keeps cwd and env', () => {
    expect(parseCommandSpec({ argv: ['make', 'test'], cwd: 'src', env: { A: '1' } }, 300)).toEqual({
      kind: 'argv',
      argv: ['make', 'test'],
      text: 'make test',
      timeoutSeconds: 300,
      cwd: 'src',
      env: { A: '1' },
    });
    expect(parseCommandSpec({ script: 'echo hi', timeoutSeconds: 5 }, 300)).toMatchObject({
      kind: 'script',
      text: 'echo hi',
      timeoutSeconds: 5,
    });
    // A recorded command comes back as it was parsed, without being checked again.
    expect(parsedOfRecord({ script: 'echo hi', timeoutSeconds: 5 })).toEqual(
      parseCommandSpec({ script: 'echo hi', timeoutSeconds: 5 }, 300),
    );
  });
});
