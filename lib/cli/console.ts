/**
 * `drydock console`: the web console for the API this CLI talks to (a deployment with --url,
 * else the local runtime), through a local server that signs each request with the user's own
 * credentials (lib/console/proxy.ts). Runs until Ctrl-C.
 */
import { spawn } from 'node:child_process';
import { consoleAssets } from '../console/assets.ts';
import { ConsoleHostError, startConsoleServer } from '../console/proxy.ts';
import { describeTarget, type Target } from './api.ts';
import { exitCodeOf, type Interrupts } from './interrupts.ts';
import { CliError, type Io } from './output.ts';

export interface ConsoleFlowOptions {
  host: string;
  port: number;
  open: boolean;
}

/** The platform's "open this URL" command. */
function openerFor(platform: NodeJS.Platform): [string, string[]] {
  if (platform === 'darwin') return ['open', []];
  if (platform === 'win32') return ['cmd', ['/c', 'start', '""']];
  return ['xdg-open', []];
}

/** Opens the URL in the user's browser; says what to do when that is not possible. */
function openBrowser(url: string, io: Io): void {
  const [command, args] = openerFor(process.platform);
  const failed = () => io.err(`drydock: could not open a browser (${command}); open ${url}\n`);
  try {
    const child = spawn(command, [...args, url], { stdio: 'ignore', detached: true });
    child.once('error', failed);
    child.unref();
  } catch {
    failed();
  }
}

export async function consoleFlow(
  target: Target,
  options: ConsoleFlowOptions,
  io: Io,
  interrupts: Interrupts,
): Promise<number> {
  let server: Awaited<ReturnType<typeof startConsoleServer>>;
  try {
    server = await startConsoleServer({
      target,
      host: options.host,
      port: options.port,
      assets: consoleAssets(),
      warn: (message) => io.err(`${message}\n`),
    });
  } catch (err) {
    if (err instanceof ConsoleHostError) throw new CliError(err.message);
    throw new CliError((err as Error).message);
  }
  io.err(
    `drydock: console for ${describeTarget(target)} at ${server.url}\n` +
      'drydock: requests are signed with your own credentials; Ctrl-C stops it\n',
  );
  if (io.json) io.out(`${JSON.stringify({ url: server.url })}\n`);
  if (options.open) openBrowser(server.url, io);
  await new Promise<void>((done) => {
    if (interrupts.signal.aborted) done();
    else interrupts.signal.addEventListener('abort', () => done(), { once: true });
  });
  await server.close();
  return exitCodeOf(interrupts.received ?? 'SIGINT');
}
