/**
 * Shell lines for AWS-RunShellScript. The agent writes the `commands` lines to a script file and
 * runs it with `sh`, as root, so everything the lease holder gives is quoted here and nothing of
 * it is ever interpolated unquoted.
 */
import { ValidationError } from '../../core/errors.ts';

/** `value` as one single-quoted shell word. */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `export NAME='value'` lines. A bad name is refused by name; values never appear in errors. */
export function exportLines(env: Record<string, string> | undefined): string[] {
  return Object.entries(env ?? {}).map(([name, value]) => {
    if (!ENV_NAME.test(name)) {
      throw new ValidationError(`env name '${name}' is not a valid shell variable name`, {
        context: { name },
      });
    }
    return `export ${name}=${shellQuote(value)}`;
  });
}

/** Exit code of the prelude when the working directory cannot be entered (before the command). */
export const CWD_EXIT_CODE = 125;

/**
 * The whole script of a lease command: create and enter the working directory, export env, run
 * the command (an argv as one quoted line; a script as is). With `user`, everything after the
 * directory is created runs as that user through `runuser`.
 */
export function commandScript(options: {
  workDir: string;
  /** Relative, already checked to stay inside workDir. */
  cwd: string;
  env?: Record<string, string>;
  command: { kind: 'argv'; argv: string[] } | { kind: 'script'; script: string };
  user?: string;
}): string[] {
  const { workDir, cwd, env, command, user } = options;
  const body = [
    `cd -- ${shellQuote(cwd)} || exit ${CWD_EXIT_CODE}`,
    ...exportLines(env),
    ...(command.kind === 'argv' ? [command.argv.map(shellQuote).join(' ')] : [command.script]),
  ];
  const prepare = `mkdir -p -- ${shellQuote(workDir)} && cd -- ${shellQuote(workDir)} || exit ${CWD_EXIT_CODE}`;
  if (user === undefined) return [prepare, ...body.join('\n').split('\n')];
  return [
    prepare,
    `chown -- ${shellQuote(user)} . || exit ${CWD_EXIT_CODE}`,
    `exec runuser -u ${shellQuote(user)} -- /bin/sh -c ${shellQuote(body.join('\n'))}`,
  ];
}
