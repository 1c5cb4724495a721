/**
 * What a benchmark hands back and how it is shown: a JSON file per benchmark under
 * bench/results/ (raw runs included, so a figure can always be traced to its runs) and a
 * markdown table per benchmark on stdout (pasted into BENCHMARKS.md).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { type BenchEnv, dynamoDbLocalVersion } from './emulators.ts';
import { type Figure, round } from './stats.ts';

/** What every benchmark gets from bench/run.ts. */
export interface BenchContext {
  /** The emulators (absent for benchmarks that bring their own, like warm-pool). */
  env?: BenchEnv;
  /** Runs per figure (each figure is the median of these). */
  runs: number;
  quick: boolean;
  /** DynamoDB Local's java, for CPU accounting. */
  javaPid?: number;
  cores: number;
  log: (message: string) => void;
  /** Where to write a CPU profile of the first run's measured window (--cpu-prof). */
  profileDir?: string;
}

export interface Machine {
  /** `nproc`: cores this process may use. */
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  java: string;
  dynamoDbLocal: string;
  /** 1-minute load average when the bench started (other work on the machine skews results). */
  loadAverageAtStart: number;
  platform: string;
}

export function machine(): Machine {
  // `java -version` writes to stderr.
  const run = spawnSync('java', ['-version'], { encoding: 'utf8' });
  const java = `${run.stderr ?? ''}${run.stdout ?? ''}`.split('\n')[0]?.trim() || 'unknown';
  return {
    cores: availableParallelism(),
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: round(totalmem() / 2 ** 30, 1),
    node: process.version,
    java,
    dynamoDbLocal: dynamoDbLocalVersion(),
    loadAverageAtStart: round(loadavg()[0] ?? 0, 2),
    platform: `${process.platform}-${process.arch}`,
  };
}

/** One row of a result table: a figure over runs, or a single value. */
export interface Row {
  label: string;
  unit?: string;
  figure: Figure;
  /** Decimal places shown. @default 1 */
  digits?: number;
}

export interface BenchResult {
  name: string;
  title: string;
  /** What was run (sizes, settings), as recorded in the JSON. */
  config: Record<string, unknown>;
  /** The headline table. */
  rows: Row[];
  /** Extra markdown after the table (e.g. the scaling table, per-operation times). */
  extraMarkdown?: string;
  notes: string[];
  /** Runs behind each figure. */
  runsPerFigure: number;
  runs: unknown[];
  violations: string[];
  wallMs: number;
}

function fmt(value: number, digits: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  return value.toFixed(digits);
}

export function markdownTable(headers: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [
    line(headers),
    line(headers.map((_, i) => (i === 0 ? '---' : '---:'))),
    ...rows.map(line),
  ].join('\n');
}

export function figureCells(f: Figure, digits = 1): string[] {
  return [fmt(f.median, digits), fmt(f.min, digits), fmt(f.max, digits)];
}

export function renderResult(result: BenchResult): string {
  const runs = result.runsPerFigure;
  const table = markdownTable(
    ['figure', `median of ${runs}`, 'min', 'max'],
    result.rows.map((row) => [
      row.unit ? `${row.label} (${row.unit})` : row.label,
      ...figureCells(row.figure, row.digits ?? 1),
    ]),
  );
  const parts = [`### ${result.title}`, '', table];
  if (result.extraMarkdown) parts.push('', result.extraMarkdown);
  if (result.notes.length) parts.push('', ...result.notes.map((n) => `- ${n}`));
  if (result.violations.length) {
    parts.push('', '**INVARIANT VIOLATIONS**', ...result.violations.map((v) => `- ${v}`));
  }
  return parts.join('\n');
}

/** Writes bench/results/<name>.json atomically (a .tmp file, then a rename). */
export function writeResult(
  dir: string,
  result: BenchResult,
  context: { machine: Machine; startedAt: string; quick: boolean },
): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${result.name}.json`);
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, `${JSON.stringify({ ...context, ...result }, null, 2)}\n`);
  renameSync(tmp, file);
  return file;
}

/** The emulators of a benchmark that needs them. */
export function requireEnv(ctx: BenchContext): BenchEnv {
  if (!ctx.env) throw new Error('this benchmark needs the emulators (bench/run.ts starts them)');
  return ctx.env;
}
