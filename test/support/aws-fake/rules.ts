/**
 * Scripted behaviour of commands on the fake's instances. The fake runs no shell: the first rule
 * whose `match` finds the script text (the `commands` parameter joined with '\n') decides the
 * exit code, how long it runs and what it prints, on the fake clock.
 */

export interface CommandRule {
  match: RegExp;
  /** Printed as the command starts. */
  stdout?: string;
  stderr?: string;
  /** @default 0 */
  exitCode?: number;
  /** From the start of execution to exit. @default the last chunk's afterMs, or 0 */
  durationMs?: number;
  /** Further output, each piece printed `afterMs` after the start of execution. */
  chunks?: Array<{ afterMs: number; stdout?: string; stderr?: string }>;
}

export type StreamName = 'stdout' | 'stderr';

/** One piece of output, printed `afterMs` after execution starts. */
export interface OutputChunk {
  afterMs: number;
  stream: StreamName;
  text: string;
}

/** What a script will do once an agent runs it. */
export interface Script {
  exitCode: number;
  durationMs: number;
  /** In the order printed (by afterMs, then as listed). */
  chunks: OutputChunk[];
}

const UNMATCHED: Script = { exitCode: 0, durationMs: 0, chunks: [] };

function toChunks(rule: CommandRule): OutputChunk[] {
  const pieces = [{ afterMs: 0, stdout: rule.stdout, stderr: rule.stderr }, ...(rule.chunks ?? [])];
  const chunks: OutputChunk[] = [];
  for (const piece of pieces) {
    if (piece.stdout) chunks.push({ afterMs: piece.afterMs, stream: 'stdout', text: piece.stdout });
    if (piece.stderr) chunks.push({ afterMs: piece.afterMs, stream: 'stderr', text: piece.stderr });
  }
  // Array.prototype.sort is stable: chunks printed at the same moment keep their listed order.
  return chunks.sort((a, b) => a.afterMs - b.afterMs);
}

export function scriptFor(rules: readonly CommandRule[], text: string): Script {
  for (const rule of rules) {
    rule.match.lastIndex = 0; // a /g or /y RegExp remembers where it last matched
    if (!rule.match.test(text)) continue;
    const chunks = toChunks(rule);
    const lastChunk = chunks.reduce((latest, c) => Math.max(latest, c.afterMs), 0);
    return { exitCode: rule.exitCode ?? 0, durationMs: rule.durationMs ?? lastChunk, chunks };
  }
  return UNMATCHED;
}
