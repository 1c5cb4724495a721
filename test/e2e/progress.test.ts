/**
 * What a waiting `drydock lease` prints when its output is not a terminal (CI logs), against
 * the local runtime (issue 16, point 3): never silent for 10 s, and a booting host's progress.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  drydock,
  type RuntimeProcess,
  spawnDrydock,
  startRuntime,
  tearDownRuntime,
  tempDataDir,
} from './support.ts';

describe('drydock lease with its output piped', () => {
  const dataDir = tempDataDir('progress');
  let runtime: RuntimeProcess | undefined;

  beforeAll(async () => {
    runtime = await startRuntime(dataDir);
  }, 120_000);

  afterAll(() => tearDownRuntime(runtime, dataDir), 60_000);

  it('prints a progress line at least every 10 s while a 1-host pool is held for 35 s', async () => {
    const created = await drydock(dataDir, [
      'blueprint',
      'create',
      '--id',
      'one',
      '--type',
      'local-host',
      '--max-resources',
      '1',
      '--leases-per-resource',
      '1',
      '--attributes',
      `platform=${process.platform}`,
    ]);
    expect(created.code, created.stderr).toBe(0);
    const held = await drydock(dataDir, ['lease', '--blueprint', 'one', '--ttl', '5m']);
    expect(held.code, held.stderr).toBe(0);
    const holder = held.stdout.trim();

    const waiter = spawnDrydock(dataDir, ['lease', '--blueprint', 'one', '--timeout', '2m']);
    // The scenario: the only host stays leased for 35 s while the other lease waits.
    await new Promise((resolve) => setTimeout(resolve, 35_000));
    const released = await drydock(dataDir, ['release', holder]);
    expect(released.code, released.stderr).toBe(0);
    const run = await waiter.done;
    expect(run.code, run.stderr).toBe(0);

    const progress = run.stderr
      .split('\n')
      .filter((line) => /lease-\w+ pending for \d+s, /.test(line));
    expect(progress.length, run.stderr).toBeGreaterThanOrEqual(3);
    for (const line of progress) {
      expect(line).toMatch(
        /^drydock \[[^\]]+\] lease-\w+ pending for \d+s, no leases ahead of this one: blueprint 'one' is at its limit of 1 host, all leased$/,
      );
    }
  }, 120_000);

  it('shows the boot progress of a host that boots in 5 s, between acquired and active', async () => {
    const file = join(dataDir, 'slowboot.json');
    writeFileSync(
      file,
      JSON.stringify({
        id: 'slowboot',
        type: 'synthetic',
        resourceType: 'host',
        attributes: { platform: 'synthetic' },
        limits: { maxResources: 1, leasesPerResource: 1 },
        config: { activation: { delaySeconds: 5 } },
      }),
    );
    const created = await drydock(dataDir, ['blueprint', 'create', '--file', file]);
    expect(created.code, created.stderr).toBe(0);

    const run = await drydock(dataDir, ['lease', '--blueprint', 'slowboot', '--', 'true']);
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stderr.split('\n');
    const acquired = lines.findIndex((l) => /acquired on new host res-/.test(l));
    const boot = lines.findIndex((l) =>
      /setting up host res-\w+: host \S+ is booting; ready in about \ds$/.test(l),
    );
    const active = lines.findIndex((l) => / active after /.test(l));
    expect(acquired, run.stderr).toBeGreaterThanOrEqual(0);
    expect(boot, run.stderr).toBeGreaterThan(acquired);
    expect(active, run.stderr).toBeGreaterThan(boot);
  }, 90_000);
});
