/**
 * The one check of a command spec (DESIGN §5: every command to a host has a timeout). The API
 * calls it when a holder starts a command; plug-ins receive its result, never a raw spec.
 */
import type { ParsedCommand } from './blueprint.ts';
import { ValidationError } from './errors.ts';
import type { CommandSpec } from './model.ts';

/** The longest command timeout a holder may ask for. */
export const MAX_COMMAND_TIMEOUT_SECONDS = 3600;

/** Every problem with a spec in one ValidationError; env values are never echoed back. */
export function parseCommandSpec(spec: CommandSpec, defaultTimeoutSeconds: number): ParsedCommand {
  const problems: string[] = [];
  const hasArgv = spec.argv !== undefined;
  const hasScript = spec.script !== undefined;
  if (hasArgv === hasScript) {
    problems.push(`give exactly one of argv or script (got ${hasArgv ? 'both' : 'neither'})`);
  }
  if (hasArgv && (!Array.isArray(spec.argv) || spec.argv.length === 0 || !spec.argv[0])) {
    problems.push('argv must be a non-empty list starting with the program to run');
  }
  if (hasScript && (typeof spec.script !== 'string' || spec.script.trim() === '')) {
    problems.push('script must not be empty');
  }
  const timeoutSeconds = spec.timeoutSeconds ?? defaultTimeoutSeconds;
  if (
    !Number.isInteger(timeoutSeconds) ||
    timeoutSeconds < 1 ||
    timeoutSeconds > MAX_COMMAND_TIMEOUT_SECONDS
  ) {
    problems.push(
      `timeoutSeconds must be a whole number from 1 to ${MAX_COMMAND_TIMEOUT_SECONDS}, got ${spec.timeoutSeconds}`,
    );
  }
  if (problems.length > 0) {
    throw new ValidationError(`invalid command: ${problems.join('; ')}`, {
      context: { spec: { ...spec, env: spec.env ? Object.keys(spec.env) : undefined } },
    });
  }
  const extras = {
    timeoutSeconds,
    ...(spec.cwd === undefined ? {} : { cwd: spec.cwd }),
    ...(spec.env === undefined ? {} : { env: spec.env }),
  };
  if (hasArgv) {
    const argv = spec.argv as [string, ...string[]];
    return { kind: 'argv', argv, text: argv.join(' '), ...extras };
  }
  const script = spec.script as string;
  return { kind: 'script', script, text: script, ...extras };
}

/**
 * The command a record holds, as plug-ins receive it. Not checked again: startCommand checked it
 * (parseCommandSpec) before it was recorded, and a rule changed since must not fail it later.
 */
export function parsedOfRecord(command: {
  argv?: string[];
  script?: string;
  timeoutSeconds: number;
  cwd?: string;
  env?: Record<string, string>;
}): ParsedCommand {
  const extras = {
    timeoutSeconds: command.timeoutSeconds,
    ...(command.cwd === undefined ? {} : { cwd: command.cwd }),
    ...(command.env === undefined ? {} : { env: command.env }),
  };
  if (command.argv) {
    const argv = command.argv as [string, ...string[]];
    return { kind: 'argv', argv, text: argv.join(' '), ...extras };
  }
  const script = command.script ?? '';
  return { kind: 'script', script, text: script, ...extras };
}

/** How much of a command a log line shows: enough to recognise it, never a whole script. */
export const SHOWN_COMMAND_CHARS = 120;

/**
 * A command as log lines and messages show it: its first line, cut to SHOWN_COMMAND_CHARS,
 * saying how much was left out (a 64 KiB script must not be repeated in every log line).
 */
export function shownCommand(text: string): string {
  const newline = text.indexOf('\n');
  const firstLine = newline === -1 ? text : text.slice(0, newline);
  const cut =
    firstLine.length > SHOWN_COMMAND_CHARS ? firstLine.slice(0, SHOWN_COMMAND_CHARS) : firstLine;
  const left = text.length - cut.length;
  return left > 0 ? `${cut}… (+${left} characters)` : cut;
}
