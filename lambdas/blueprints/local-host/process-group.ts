/**
 * Signalling and watching a command's process group. A command runs as its own group (its
 * leader called setsid), so one signal reaches the whole tree: the shell, `git`, and whatever
 * they left in the background.
 *
 * A pgid is not reused while any process is still in that group, so signalling a group we saw
 * alive is safe; once it is gone it may be reused, so callers record that it is gone (the
 * `gone` file, command-files.ts) and never look at that pgid again.
 */
import { readdir, readFile } from 'node:fs/promises';

/** Signal a whole process group; false if the group no longer exists. */
export function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (err) {
    // EPERM: something in the group still exists but is not ours to signal.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether anything in the process group is still running. On Linux an unreaped zombie does not
 * count (containers often run an init that reaps late, and a leader whose starter died is
 * reaped by whoever adopted it); elsewhere any member counts.
 */
export async function groupRunning(pgid: number): Promise<boolean> {
  if (!signalGroup(pgid, 0)) return false;
  if (process.platform !== 'linux') return true;
  // The common case, cheaply: the leader itself is still running.
  const leader = await processStat(String(pgid));
  if (leader && leader.pgrp === pgid && leader.state !== 'Z') return true;
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return true;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const member = await processStat(entry);
    if (member && member.pgrp === pgid && member.state !== 'Z') return true;
  }
  return false;
}

/** State and process group of a process, or undefined if it is gone. */
async function processStat(pid: string): Promise<{ state: string; pgrp: number } | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // "<pid> (<comm>) <state> <ppid> <pgrp> ..."; comm may contain spaces and parentheses.
    const [state = '', , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state, pgrp: Number(pgrp) };
  } catch {
    // The process exited while we looked.
    return undefined;
  }
}
