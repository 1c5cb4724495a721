/**
 * The leader of a command's process group: a small Node program that runs detached from the
 * worker that started it, so the command survives that worker (a crash, a redeploy, the whole
 * local runtime being SIGKILLed) and still leaves a record of how it ended.
 *
 * It runs the command as its child, copies the child's stdout/stderr into its own (the files
 * `stdout` and `stderr` of the command directory) up to the cap, and when the child has exited
 * and its output pipes are closed (a background job holding them keeps the command running, as
 * before), writes `exit` atomically: `{ code, signal, at, truncated }`. Node tells an exit
 * code from a death by signal exactly, where a shell's `$?` cannot (137 is both `exit 137` and
 * SIGKILL); that, and reporting a missing program the way a spawn does, is why the leader is
 * Node rather than `/bin/sh`. It costs one Node process per running command, acceptable for a
 * blueprint that runs on a developer's machine.
 *
 * The leader ignores SIGTERM/SIGINT/SIGHUP (a handler, not SIG_IGN, so its child gets the
 * default dispositions): a SIGTERM to the group stops the command and the leader still records
 * that it died by SIGTERM. Only SIGKILL (the escalation) ends the leader without a record.
 *
 * Its only input is the environment variable below (never the worker's environment: the
 * command's environment is passed inside it), so nothing in the command's env (NODE_OPTIONS)
 * can change how the leader itself runs.
 */
import { z } from 'zod';

export const LEADER_SPEC_VARIABLE = 'DRYDOCK_COMMAND';

/** What the leader is told to run. */
export interface LeaderSpec {
  file: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  /** Per stream. */
  maxOutputBytes: number;
  /** The command directory (where `exit` goes). */
  dir: string;
}

/** `exit`: written by the leader once the command is over. */
export const exitRecordSchema = z.object({
  /** null when the child died by a signal. */
  code: z.number().int().nullable(),
  signal: z.string().nullable(),
  /** Epoch ms. */
  at: z.number(),
  /** Streams cut at maxOutputBytes. */
  truncated: z.array(z.enum(['stdout', 'stderr'])),
});

// Plain JavaScript (run with `node -e`): it must not depend on this repository's loaders or
// files being present at the path the worker ran from. Kept short on purpose.
export const LEADER_SOURCE = `
'use strict';
const { spawn } = process.getBuiltinModule('node:child_process');
const fs = process.getBuiltinModule('node:fs');
const path = process.getBuiltinModule('node:path');
const spec = JSON.parse(process.env.${LEADER_SPEC_VARIABLE});
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(signal, () => {});
const truncated = [];
function copy(stream, fd, name) {
  let written = 0;
  stream.on('data', (chunk) => {
    const room = spec.maxOutputBytes - written;
    if (chunk.length > room && !truncated.includes(name)) truncated.push(name);
    let part = chunk.subarray(0, Math.max(0, room));
    while (part.length > 0) {
      const n = fs.writeSync(fd, part);
      written += n;
      part = part.subarray(n);
    }
  });
}
let spawnError;
const child = spawn(spec.file, spec.args, {
  cwd: spec.cwd,
  env: spec.env,
  stdio: ['ignore', 'pipe', 'pipe'],
});
copy(child.stdout, 1, 'stdout');
copy(child.stderr, 2, 'stderr');
child.on('error', (err) => {
  spawnError = err;
});
child.on('close', (code, signal) => {
  if (spawnError) fs.writeSync(2, spawnError.message + '\\n');
  const record = {
    code: spawnError ? 127 : code,
    signal: spawnError ? null : signal,
    at: Date.now(),
    truncated,
  };
  const tmp = path.join(spec.dir, 'exit.tmp');
  fs.writeFileSync(tmp, JSON.stringify(record));
  fs.renameSync(tmp, path.join(spec.dir, 'exit'));
  process.exit(0);
});
`;
