/**
 * Browser tests of the web console: the real local runtime (startLocalRuntime, in this test
 * file's process) with real leases, and Debian's Chromium driven headless by playwright-core.
 * Each page a test looks at is saved under test-results/console/ so a failure can be seen.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { type LocalRuntime, startLocalRuntime } from '../../lib/local/runtime.ts';
import { ROOT } from '../e2e/support.ts';
import { waitFor } from '../support/env.ts';

/** Debian's Chromium (.ci/run installs it): playwright-core downloads no browser. */
export const CHROMIUM = '/usr/bin/chromium';
export const SCREENSHOTS = join(ROOT, 'test-results', 'console');

/** A holder who is no admin: sees only its own leases. */
export const HOLDER = {
  principal: 'local:holder',
  token: 'holder-token-0123456789abcdef0123456789',
};

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Root in a container: Chromium's sandbox needs user namespaces it may not have.
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
}

export interface ConsoleRuntime {
  runtime: LocalRuntime;
  dataDir: string;
  /** `fetch` on the runtime's API as its user (an admin), or with another token. */
  api<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    options?: { token?: string; headers?: Record<string, string> },
  ): Promise<{ status: number; body: T }>;
  stop(): Promise<void>;
}

export async function startConsoleRuntime(prefix: string): Promise<ConsoleRuntime> {
  const dataDir = mkdtempSync(join(tmpdir(), `drydock-console-${prefix}-`));
  const runtime = await startLocalRuntime({
    dataDir,
    port: 0,
    defaultBlueprint: false,
    workers: 2,
    holders: [HOLDER],
    warn: (message) => process.stderr.write(`${message}\n`),
  });
  return {
    runtime,
    dataDir,
    async api(method, path, body, options = {}) {
      const response = await fetch(`${runtime.url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${options.token ?? runtime.token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...options.headers,
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await response.text();
      return { status: response.status, body: (text ? JSON.parse(text) : undefined) as never };
    },
    async stop() {
      try {
        await runtime.stop();
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    },
  };
}

/** Saves what the page shows now as test-results/console/<name>.png. */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** Polls `read` until `accept` holds, failing with the last value at the deadline. */
export async function eventually<T>(
  read: () => Promise<T>,
  accept: (value: T) => boolean,
  message: string,
  timeoutMs = 15_000,
): Promise<T> {
  let last: T | undefined;
  try {
    return await waitFor(
      async () => {
        last = await read();
        return accept(last) ? { value: last } : undefined;
      },
      { timeoutMs, intervalMs: 100, message },
    ).then((r) => r.value);
  } catch (err) {
    throw new Error(`${(err as Error).message}; last seen: ${JSON.stringify(last)}`);
  }
}
