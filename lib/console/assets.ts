/**
 * The web console's files (web/), built on the fly: esbuild bundles web/main.ts in a few
 * milliseconds, so nothing generated is committed and `npm start` and `drydock console` serve
 * exactly the sources of this checkout. Built once per server, on the first request for it.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const WEB_DIR = fileURLToPath(new URL('../../web/', import.meta.url));

export interface ConsoleAssets {
  /** The bundled app (one ES module, no imports left). */
  script(): Promise<string>;
  stylesheet(): Promise<string>;
}

/** A typed failure to build the console, naming what to fix. */
export class ConsoleBuildError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ConsoleBuildError';
  }
}

async function bundle(): Promise<string> {
  // Loaded only when someone opens the console: a runtime nobody browses never loads esbuild.
  const { build } = await import('esbuild');
  try {
    const result = await build({
      entryPoints: [`${WEB_DIR}main.ts`],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      write: false,
      sourcemap: 'inline',
      logLevel: 'silent',
    });
    const file = result.outputFiles[0];
    if (!file) throw new ConsoleBuildError('esbuild produced no output for web/main.ts');
    return file.text;
  } catch (err) {
    if (err instanceof ConsoleBuildError) throw err;
    throw new ConsoleBuildError(
      `building the web console (web/main.ts) failed: ${(err as Error).message}; run \`npx tsc --noEmit\` to see the error in the sources`,
      { cause: err },
    );
  }
}

/** `load` once; a failure is forgotten, so the next call tries again (e.g. after a fix). */
function memo(load: () => Promise<string>): () => Promise<string> {
  let pending: Promise<string> | undefined;
  return () => {
    if (!pending) {
      const attempt = load();
      pending = attempt;
      attempt.catch(() => {
        if (pending === attempt) pending = undefined;
      });
    }
    return pending;
  };
}

/** The console's files, each built or read once per server. */
export function consoleAssets(): ConsoleAssets {
  return {
    script: memo(bundle),
    stylesheet: memo(() => readFile(`${WEB_DIR}console.css`, 'utf8')),
  };
}
