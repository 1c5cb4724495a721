/**
 * The one real synthesis: `cdk synth` through cdk.json and bin/app.ts, bundling the real
 * handlers with esbuild and running cdk-nag as the CLI does. The other infra tests skip
 * bundling and use stand-in handlers; this one proves the handlers bundle and load.
 *
 * It needs lambdas/handlers/{api,worker,sweep,setup}.ts. Without them it fails, on purpose:
 * a skipped test would let a stack that cannot be deployed pass CI.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  HANDLER_NAMES,
  handlerEntry,
  PROJECT_ROOT,
} from '../../lib/constructs/drydock-function.ts';

const run = promisify(execFile);
const missing = HANDLER_NAMES.map((name) => handlerEntry(name)).filter(
  (entry) => !existsSync(entry),
);

function expectHandlers(): void {
  expect(
    missing.map((entry) => path.relative(PROJECT_ROOT, entry)),
    'handler entry files are missing, so the stack cannot be synthesized: each of ' +
      'lambdas/handlers/{api,worker,sweep,setup}.ts must exist and export `handler`',
  ).toEqual([]);
}

interface SynthesizedResource {
  Type: string;
  Properties: { Environment?: { Variables?: Record<string, string> } };
  Metadata?: Record<string, unknown>;
}

describe('cdk synth (real bundling, cdk-nag)', () => {
  const outdir = mkdtempSync(path.join(tmpdir(), 'drydock-synth-'));
  let template: { Resources: Record<string, SynthesizedResource> };

  beforeAll(async () => {
    if (missing.length > 0) return;
    const bin = path.join(PROJECT_ROOT, 'node_modules', '.bin');
    await run(path.join(bin, 'cdk'), ['synth', '-q', '--no-notices', '-o', outdir], {
      cwd: PROJECT_ROOT,
      env: {
        ...process.env,
        PATH: `${bin}${path.delimiter}${process.env.PATH}`,
        CDK_DISABLE_CLI_TELEMETRY: 'true',
      },
      maxBuffer: 16 * 1024 * 1024,
    });
    template = JSON.parse(readFileSync(path.join(outdir, 'Drydock.template.json'), 'utf8'));
  }, 180_000);

  afterAll(() => rmSync(outdir, { recursive: true, force: true }));

  it('has the four handler files to bundle', expectHandlers);

  it('reports no cdk-nag or CloudFormation validation finding', () => {
    expectHandlers();
    const report = JSON.parse(readFileSync(path.join(outdir, 'validation-report.json'), 'utf8'));
    const violations = (report.pluginReports ?? []).flatMap(
      (r: { violations?: unknown[] }) => r.violations ?? [],
    );
    expect(violations).toEqual([]);
  });

  it('bundles each handler as minified ESM with a source map, and the bundle loads on Node 24', async () => {
    expectHandlers();
    const functions = Object.values(template.Resources).filter(
      (r) => r.Type === 'AWS::Lambda::Function',
    );
    expect(functions).toHaveLength(4);

    // Placeholders for what the handlers may read when their module loads.
    Object.assign(process.env, {
      AWS_REGION: 'us-east-1',
      TABLE_NAME: 'drydock',
      QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/drydock-work',
      SETUP_STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:123456789012:stateMachine:setup',
      ADMIN_PRINCIPALS: '',
      DRYDOCK_DEPLOYMENT: 'Drydock',
      LOG_LEVEL: 'ERROR',
    });
    for (const fn of functions) {
      const service = fn.Properties.Environment?.Variables?.POWERTOOLS_SERVICE_NAME;
      const asset = fn.Metadata?.['aws:asset:path'] as string | undefined;
      expect(asset, service).toBeDefined();
      const bundle = path.join(outdir, asset as string, 'index.mjs');
      expect(existsSync(`${bundle}.map`), `${service}: source map`).toBe(true);
      expect(readFileSync(bundle, 'utf8')).toMatch(/^import \{ createRequire \}/);
      const loaded = await import(pathToFileURL(bundle).href);
      expect(typeof loaded.handler, `${service}: exports handler`).toBe('function');
    }
  });
});
