/**
 * The local runtime's data directory: who runs on it (`local.json`, which the CLI reads to
 * find the runtime) and the refusal to start a second runtime on the same one.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive } from './process.ts';

export const LOCAL_INFO_FILE = 'local.json';
export const TOKEN_FILE = 'token';

/** What local.json holds. */
export interface LocalInfo {
  url: string;
  token: string;
  pid: number;
  javaPid?: number;
  dataDir: string;
  startedAt: string;
  /** The SQS emulator's queues (for tests, and operators poking at them with an SQS client). */
  queues?: { sqsEndpoint: string; workQueueUrl: string; deadLetterQueueUrl: string };
}

/**
 * Creates `dataDir` (0700) if needed and makes sure no other live runtime uses it; returns
 * the paths of its info and token files.
 */
export function claimDataDir(dataDir: string): { infoFile: string; tokenFile: string } {
  const infoFile = join(dataDir, LOCAL_INFO_FILE);
  const tokenFile = join(dataDir, TOKEN_FILE);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  if (existsSync(infoFile)) {
    try {
      const other = JSON.parse(readFileSync(infoFile, 'utf8')) as Partial<LocalInfo>;
      if (typeof other.pid === 'number' && other.pid !== process.pid && isAlive(other.pid)) {
        throw new Error(
          `another drydock runtime (pid ${other.pid}, ${other.url}) is already running on ${dataDir}; stop it first or use another --data-dir`,
        );
      }
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err;
    }
  }
  return { infoFile, tokenFile };
}

/** Writes local.json (0600: it holds the token); returns a function that removes it. */
export function publishLocalInfo(infoFile: string, info: LocalInfo): () => void {
  writeFileSync(infoFile, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
  chmodSync(infoFile, 0o600);
  return () => rmSync(infoFile, { force: true });
}
