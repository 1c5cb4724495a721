/** Small facts about processes the local runtime and its tests need. */
import { existsSync, readFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';

/**
 * Whether a process runs. A zombie (killed but not yet reaped) does not count; a process we
 * may not signal (EPERM) does. Without /proc (macOS) signal 0 is all there is to go on.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  if (!existsSync('/proc/self/stat')) return true;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false; // gone between the signal and the read
  }
}

/** `killed by SIGKILL (exit code 137)`: a shell wrapper reports its child's signal as 128+n. */
export function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  if (signal) return `killed by ${signal}`;
  if (code !== null && code > 128) {
    const name = Object.entries(osConstants.signals).find(([, n]) => n === code - 128)?.[0];
    if (name) return `killed by ${name} (exit code ${code})`;
  }
  return `exit code ${code}`;
}

/** An error's stack (or message), for warnings a person reads. */
export function errorText(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}
