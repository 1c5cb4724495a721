/**
 * Small helpers shared by the host plug-ins: how a CommandSpec is read, and the lexical half of
 * the "a path may not escape the resource" rule. Plug-in specific behaviour stays in its folder.
 */
import { posix } from 'node:path';
import type { CommandSpec } from '../core/blueprint.ts';
import { ValidationError } from '../core/errors.ts';

/** DESIGN §5: every command to a host has a timeout (git fetch can hang). */
export const DEFAULT_COMMAND_TIMEOUT_SECONDS = 300;

export type ParsedCommand =
  | { kind: 'argv'; argv: [string, ...string[]]; text: string; timeoutMs: number }
  | { kind: 'script'; script: string; text: string; timeoutMs: number };

/**
 * Check a CommandSpec once, at the edge of the plug-in, and report every problem in one
 * ValidationError. `text` is what people (and the synthetic blueprint's scripted matches) see:
 * the argv joined by spaces, or the script.
 */
export function parseCommandSpec(spec: CommandSpec): ParsedCommand {
  const problems: string[] = [];
  const hasArgv = spec.argv !== undefined;
  const hasScript = spec.script !== undefined;
  if (hasArgv === hasScript) {
    problems.push(
      `exactly one of argv or script is required (got ${hasArgv ? 'both' : 'neither'})`,
    );
  }
  if (hasArgv && (!Array.isArray(spec.argv) || spec.argv.length === 0)) {
    problems.push('argv must name a program');
  }
  if (hasScript && (typeof spec.script !== 'string' || spec.script.trim() === '')) {
    problems.push('script must not be empty');
  }
  const timeoutSeconds = spec.timeoutSeconds ?? DEFAULT_COMMAND_TIMEOUT_SECONDS;
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) {
    problems.push(`timeoutSeconds must be a positive number (got ${String(spec.timeoutSeconds)})`);
  }
  if (problems.length > 0) {
    throw new ValidationError(`invalid command: ${problems.join('; ')}`, {
      context: { spec: { ...spec, env: spec.env ? Object.keys(spec.env) : undefined } },
    });
  }
  const timeoutMs = Math.round(timeoutSeconds * 1000);
  if (hasArgv) {
    const argv = spec.argv as [string, ...string[]];
    return { kind: 'argv', argv, text: argv.join(' '), timeoutMs };
  }
  const script = spec.script as string;
  return { kind: 'script', script, text: script, timeoutMs };
}

/**
 * Normalise a caller-supplied path to a relative POSIX path inside a root, or throw a
 * ValidationError naming it. Only lexical: plug-ins with real files must also check symlinks.
 * `.` (the root itself) is allowed only when `allowRoot` is set (a cwd, not a file).
 */
export function relativePathInside(
  path: string,
  what: string,
  options: { allowRoot?: boolean } = {},
): string {
  if (typeof path !== 'string' || path === '' || path.includes('\0')) {
    throw new ValidationError(`${what} '${String(path)}' is not a valid relative path`, {
      context: { path },
    });
  }
  if (posix.isAbsolute(path) || /^[A-Za-z]:[\\/]/.test(path)) {
    throw new ValidationError(
      `${what} '${path}' is absolute; give a path relative to the resource`,
      {
        context: { path },
      },
    );
  }
  const normalised = posix.normalize(path.replaceAll('\\', '/'));
  if (normalised === '..' || normalised.startsWith('../')) {
    throw new ValidationError(`${what} '${path}' escapes the resource root`, { context: { path } });
  }
  const trimmed = normalised.replace(/\/+$/, '');
  if ((trimmed === '.' || trimmed === '') && !options.allowRoot) {
    throw new ValidationError(`${what} '${path}' names the resource root, not a file`, {
      context: { path },
    });
  }
  return trimmed === '' ? '.' : trimmed;
}

/** Resolve after `ms`, or as soon as `signal` aborts; returns whether the full time passed. */
export function waitUnlessAborted(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
