/**
 * Output and argument helpers of the CLI. People get tables and progress lines on stderr;
 * `--json` puts machine output (and only that) on stdout.
 */

/** A failure the CLI reports as `drydock: <message>` and an exit status. */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

/** Exit statuses besides the command's own. */
export const EXIT = {
  failure: 1,
  /** The command (or the wait for the lease) timed out, as timeout(1). */
  timeout: 124,
  /** Drydock could not run the command at all (as timeout(1) and env(1) use 125). */
  cannotRun: 125,
} as const;

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  /** stderr is a terminal: live status lines may be redrawn. */
  tty: boolean;
  json: boolean;
}

export function processIo(json: boolean): Io {
  return {
    out: (text) => void process.stdout.write(text),
    err: (text) => void process.stderr.write(text),
    tty: Boolean(process.stderr.isTTY) && !process.env.CI,
    json,
  };
}

export function printJson(io: Io, value: unknown): void {
  io.out(`${JSON.stringify(value, null, 2)}\n`);
}

/** Left-aligned columns; the last column is not padded. */
export function table(headers: string[], rows: Array<Array<string | number | undefined>>): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (c === undefined ? '' : String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return `${cells
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : (c ?? '').padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')}\n`;
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** `90`, `90s`, `30m`, `1h30m`, `2d` -> seconds. */
export function parseDuration(text: string, what = 'duration'): number {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const parts = [...trimmed.matchAll(/(\d+(?:\.\d+)?)([smhd])/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== trimmed) {
    throw new CliError(
      `${what} '${text}' is not a duration; use e.g. 90s, 30m, 1h30m or a number of seconds`,
    );
  }
  return Math.round(parts.reduce((sum, p) => sum + Number(p[1]) * (UNITS[p[2] as string] ?? 0), 0));
}

/** 3725 -> `1h2m5s` */
export function formatDuration(seconds: number): string {
  if (seconds < 60) {
    return `${seconds < 10 && !Number.isInteger(seconds) ? seconds.toFixed(1) : Math.round(seconds)}s`;
  }
  const s = Math.round(seconds);
  const parts: Array<[number, string]> = [
    [Math.floor(s / 86400), 'd'],
    [Math.floor((s % 86400) / 3600), 'h'],
    [Math.floor((s % 3600) / 60), 'm'],
    [s % 60, 's'],
  ];
  return parts
    .filter(([n]) => n > 0)
    .map(([n, unit]) => `${n}${unit}`)
    .join('');
}

/** `k=v,k2=v2` (repeatable) -> { k: v, k2: v2 } */
export function parseAttributes(values: string[] | string | undefined): Record<string, string> {
  const list = Array.isArray(values) ? values : values ? [values] : [];
  const attributes: Record<string, string> = {};
  for (const item of list.flatMap((v) => v.split(','))) {
    if (item.trim() === '') continue;
    const eq = item.indexOf('=');
    if (eq <= 0)
      throw new CliError(
        `attribute '${item}' is not key=value (e.g. --attributes platform=linux,arch=x64)`,
      );
    attributes[item.slice(0, eq).trim()] = item.slice(eq + 1).trim();
  }
  return attributes;
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** How long ago an ISO time was, for tables: `12s`, `3m`, `2h`. */
export function age(iso: string | undefined, now = Date.now()): string {
  if (!iso) return '';
  const seconds = Math.max(0, (now - Date.parse(iso)) / 1000);
  if (seconds < 60) return `${Math.floor(seconds)}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

export function clip(text: string | undefined, max: number): string {
  if (!text) return '';
  const oneLine = text.replace(/\s*\n\s*/g, ' ');
  return oneLine.length > max ? `${oneLine.slice(0, max - 1)}…` : oneLine;
}

/**
 * A log event as one readable block: multi-line messages are indented under the first line
 * (the original CLI printed them as an unreadable mess).
 */
export function formatLogLine(prefix: string, message: string): string {
  const [first, ...rest] = message.split('\n');
  const indent = ' '.repeat(prefix.length + 1);
  return `${prefix} ${first}${rest.map((line) => `\n${indent}${line}`).join('')}\n`;
}
