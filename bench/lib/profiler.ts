/**
 * A V8 CPU profile of just the measured window of a benchmark (not the emulator start-up or the
 * local runtime's CDK synth), written as a .cpuprofile that Chrome DevTools, speedscope or
 * bench/profile-summary.ts can read.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';

export interface Profiling {
  /** Stops profiling and writes the profile; returns the file. */
  stop(): Promise<string>;
}

export async function startProfiling(file: string): Promise<Profiling> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  // 1 ms sampling keeps the overhead low over runs of tens of seconds.
  await session.post('Profiler.setSamplingInterval', { interval: 1000 });
  await session.post('Profiler.start');
  return {
    async stop() {
      const { profile } = await session.post('Profiler.stop');
      session.disconnect();
      writeFileSync(file, JSON.stringify(profile));
      return file;
    },
  };
}
