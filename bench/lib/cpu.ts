/**
 * CPU time of this process and of DynamoDB Local's java, so a result can say where the two
 * cores went: the engine (node) or the emulated database (java). Linux only (/proc); elsewhere
 * the java figure is absent.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    } catch {
      ticksPerSecond = 100;
    }
    if (!Number.isFinite(ticksPerSecond) || ticksPerSecond <= 0) ticksPerSecond = 100;
  }
  return ticksPerSecond;
}

/** User + system CPU milliseconds of a process, from /proc/<pid>/stat; undefined if unreadable. */
export function processCpuMs(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which is in parentheses and may contain spaces).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return ((utime + stime) * 1000) / clockTicks();
  } catch {
    return undefined;
  }
}

export interface CpuSample {
  wallMs: number;
  nodeMs: number;
  javaMs: number | undefined;
}

export interface CpuUse {
  wallMs: number;
  /** CPU ms of the bench process (engine, workers, SDK, emulated SQS, HTTP). */
  nodeMs: number;
  /** CPU ms of DynamoDB Local. */
  javaMs: number | undefined;
  /** (node + java) / wall / cores: how busy the machine was (0..1). */
  utilization: number | undefined;
}

export function sampleCpu(javaPid: number | undefined): CpuSample {
  const usage = process.cpuUsage();
  return {
    wallMs: performance.now(),
    nodeMs: (usage.user + usage.system) / 1000,
    javaMs: processCpuMs(javaPid),
  };
}

export function cpuSince(start: CpuSample, javaPid: number | undefined, cores: number): CpuUse {
  const end = sampleCpu(javaPid);
  const wallMs = end.wallMs - start.wallMs;
  const nodeMs = end.nodeMs - start.nodeMs;
  const javaMs =
    end.javaMs !== undefined && start.javaMs !== undefined ? end.javaMs - start.javaMs : undefined;
  return {
    wallMs: Math.round(wallMs),
    nodeMs: Math.round(nodeMs),
    javaMs: javaMs === undefined ? undefined : Math.round(javaMs),
    utilization:
      javaMs === undefined || wallMs <= 0
        ? undefined
        : Math.round(((nodeMs + javaMs) / wallMs / cores) * 100) / 100,
  };
}
