/**
 * The `drydock` CLI (bin/drydock.ts): commander wiring only; the flows live beside it.
 * Every command talks to the HTTPS API (see api.ts for how the target is found).
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { CONSOLE_HOST, ConsoleHostError } from '../console/proxy.ts';
import {
  createBlueprint,
  listBlueprints,
  listLeases,
  listResources,
  setBlueprintState,
  showBlueprintFlow,
  updateBlueprint,
} from './admin.ts';
import { ApiClient, resolveTarget } from './api.ts';
import { consoleFlow } from './console.ts';
import { dlqFlow, redriveFlow } from './dlq.ts';
import { Interrupts } from './interrupts.ts';
import { execFlow, leaseFlow, releaseFlow } from './lease.ts';
import { logsFlow } from './logs.ts';
import { CliError, collect, type Io, parseAttributes, parseDuration, processIo } from './output.ts';
import { statusFlow } from './status.ts';
import { workingCopyRequest } from './working-copy.ts';

interface GlobalOptions {
  url?: string;
  dataDir?: string;
  json?: boolean;
}

function duration(what: string) {
  return (value: string) => {
    try {
      const seconds = parseDuration(value, what);
      if (seconds <= 0) throw new CliError(`${what} must be more than 0`);
      return seconds;
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };
}

function count(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new InvalidArgumentError('must be a whole number of at least 1');
  return n;
}

function atLeastZero(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new InvalidArgumentError('must be a whole number of at least 0');
  return n;
}

function consolePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new InvalidArgumentError('a port is a whole number from 0 (any free port) to 65535');
  return port;
}

export interface MainOptions {
  /** Writers and terminal detection (tests pass their own). @default process streams */
  io?: (json: boolean) => Io;
  interrupts?: Interrupts;
}

/** Runs the CLI; resolves with the exit status. */
export async function main(argv: string[], options: MainOptions = {}): Promise<number> {
  const makeIo = options.io ?? processIo;
  const interrupts = options.interrupts ?? new Interrupts();
  let exitCode = 0;

  const program = new Command('drydock')
    .description(
      'Lease build resources from Drydock. Talks to the local runtime (`npm start`) by default, or to a deployed API with --url.',
    )
    .option('--url <url>', 'API base URL of a deployment (SigV4-signed; env DRYDOCK_URL)')
    .option(
      '--data-dir <dir>',
      'local runtime data directory (env DRYDOCK_DATA_DIR; default: nearest .drydock/)',
    )
    .option('--json', 'machine-readable output on stdout')
    .showHelpAfterError('(drydock --help lists the commands)')
    .exitOverride();

  const context = (cmd: Command) => {
    const globals = cmd.optsWithGlobals<GlobalOptions>();
    const io = makeIo(Boolean(globals.json));
    const client = new ApiClient(resolveTarget({ url: globals.url, dataDir: globals.dataDir }));
    return { io, client };
  };

  program
    .command('lease')
    .description(
      'Lease a resource and wait until it is active, showing its log as it happens (and, when stderr is not a terminal, a progress line at least every 10s: place in line, time waited, why it waits).\n' +
        'Without a command: once active, print the lease id on stdout and exit 0, keeping the lease until `drydock release <id>` or its --ttl ends.\n' +
        "With `-- <command...>`: run the command on it, stream its output as it arrives (stdout to stdout, stderr to stderr), release the lease and exit with the command's status (124: timed out, 125: drydock could not run it).\n" +
        'Ctrl-C while waiting releases the lease (exit 130); while the command runs it cancels the command, waits up to 10s for it to end, then releases the lease (Ctrl-C again stops waiting).\n' +
        'With --json: stdout is only the final JSON record ({lease, command}, the output tails in command.result); the output is not streamed.',
    )
    .option('--type <type>', 'resource type', 'host')
    .option('--attributes <k=v,...>', 'attributes the resource must have (repeatable)', collect)
    .option(
      '--ttl <duration>',
      "lease lifetime once active, e.g. 30m (default: the API's, 1h)",
      duration('--ttl'),
    )
    .option('--blueprint <id>', 'only this blueprint may serve the lease (repeatable)', collect)
    .addOption(
      new Option(
        '--timeout <duration>',
        'give up waiting for the lease to activate after this long: the server breaks it then (waitTimeoutSeconds), even if this process is gone',
      )
        .default(600, '10m')
        .argParser(duration('--timeout')),
    )
    .option(
      '--command-timeout <duration>',
      "kill the command after this long (default: the API's, 5m)",
      duration('--command-timeout'),
    )
    .option(
      '--repo <url[@ref]>',
      'working copy (--type working-copy): clone this repository and check out ref (default: its HEAD); repeatable',
      collect,
    )
    .option(
      '--merge <[dir:]ref>',
      'working copy: merge this ref on top, in order (into the first --repo unless dir: names one); repeatable',
      collect,
    )
    .option(
      '--cwd <dir>',
      "the command's working directory (working copy: relative to it; default: the first --repo)",
    )
    .argument('[command...]', 'command to run on the lease, after --')
    .action(async (command: string[], opts, cmd: Command) => {
      const { io, client } = context(cmd);
      const workingCopy = workingCopyRequest(opts.repo, opts.merge);
      interrupts.install();
      exitCode = await leaseFlow(
        client,
        {
          // --repo alone means a working copy; an explicit --type still wins.
          type:
            workingCopy && cmd.getOptionValueSource('type') === 'default'
              ? 'working-copy'
              : opts.type,
          attributes: parseAttributes(opts.attributes),
          blueprintIds: opts.blueprint,
          ttlSeconds: opts.ttl,
          timeoutSeconds: opts.timeout,
          commandTimeoutSeconds: opts.commandTimeout,
          command,
          ...(workingCopy ? { workingCopy } : {}),
          ...(opts.cwd ? { cwd: opts.cwd } : {}),
        },
        io,
        interrupts,
      );
    });

  program
    .command('exec')
    .description(
      'Run a command on an active lease, stream its output as it arrives and exit with its status (124: timed out, 125: drydock could not run it).\n' +
        'Ctrl-C cancels the command, waits up to 10s for it to end and exits 130 (Ctrl-C again stops waiting).\n' +
        'With --json: stdout is only the final JSON record ({command}, the output tails in command.result); the output is not streamed.',
    )
    .argument('<lease>', 'lease id')
    .argument('<command...>', 'command and arguments, after --')
    .option(
      '--timeout <duration>',
      "kill the command after this long (default: the API's, 5m)",
      duration('--timeout'),
    )
    .action(async (lease: string, command: string[], opts, cmd: Command) => {
      const { io, client } = context(cmd);
      interrupts.install();
      exitCode = await execFlow(client, lease, command, opts.timeout, io, interrupts);
    });

  program
    .command('release')
    .description('Release leases (idempotent)')
    .argument('<lease...>', 'lease ids')
    .action(async (leases: string[], _opts, cmd: Command) => {
      const { io, client } = context(cmd);
      exitCode = await releaseFlow(client, leases, io);
    });

  const listing = (name: string, description: string, run: typeof listLeases) =>
    program
      .command(name)
      .description(description)
      .option('--status <status>', 'only this status (blueprints: state)')
      .option('--type <type>', 'only this type')
      .option('--limit <n>', 'show at most this many', count)
      .option('--all', 'include destroyed ones too (leases, resources)')
      .action(async (opts, cmd: Command) => {
        const { io, client } = context(cmd);
        exitCode = await run(
          client,
          { status: opts.status, type: opts.type, limit: opts.limit, all: Boolean(opts.all) },
          io,
        );
      });
  listing(
    'leases',
    "List current leases (yours; everyone's for an admin); --all adds destroyed ones",
    listLeases,
  );
  listing('resources', 'List current resources (admin); --all adds destroyed ones', listResources);
  listing('blueprints', 'List blueprints', listBlueprints);

  program
    .command('status')
    .description(
      'Show each pool: live/max, leased, idle, setting up, waiting leases and the oldest wait',
    )
    .action(async (_opts, cmd: Command) => {
      const { io, client } = context(cmd);
      exitCode = await statusFlow(client, io);
    });

  const dlq = program
    .command('dlq')
    .description(
      'List what Drydock gave up on: messages in the dead-letter queue and what they were about (admin)',
    )
    .option('--limit <n>', 'show at most this many (up to 100)', count)
    .action(async (opts, cmd: Command) => {
      const { io, client } = context(cmd);
      exitCode = await dlqFlow(client, io, opts.limit);
    });
  dlq
    .command('redrive')
    .description(
      'Put the dead-lettered messages back on the work queue (admin); fix the cause first',
    )
    .action(async (_opts, cmd: Command) => {
      const { io, client } = context(cmd);
      exitCode = await redriveFlow(client, io);
    });

  program
    .command('logs')
    .description(
      'Show the log of a lease (lease-...), resource (res-...) or blueprint (any other id)',
    )
    .argument('<id>', 'lease, resource or blueprint id')
    .option('-f, --follow', 'keep showing new events until Ctrl-C')
    .action(async (id: string, opts, cmd: Command) => {
      const { io, client } = context(cmd);
      if (opts.follow) interrupts.install();
      exitCode = await logsFlow(client, id, Boolean(opts.follow), io, interrupts);
    });

  const blueprint = program.command('blueprint').description('Manage blueprints (admin)');
  blueprint
    .command('create')
    .description('Create a blueprint from a JSON file and/or options')
    .option('--file <file>', 'blueprint JSON (see blueprintInputSchema); - reads stdin')
    .option('--id <id>', 'slug, e.g. linux-pool')
    .option('--type <type>', 'plug-in type: local-host, synthetic, ...')
    .option('--resource-type <type>', 'resource type it builds (default host)')
    .option('--description <text>')
    .option('--attributes <k=v,...>', 'attributes of every resource (repeatable)', collect)
    .option('--max-resources <n>', 'most resources alive at once', count)
    .option('--leases-per-resource <n>', 'leases one resource serves at once', count)
    .option('--reclaim-on-release', 'destroy a resource as soon as its last lease is released')
    .option('--idle-ttl <duration>', 'reclaim resources idle this long', duration('--idle-ttl'))
    .option(
      '--min-idle <n>',
      'warm pool: keep n idle, ready resources (within --max-resources); a schedule via --set limits.minIdleSchedule=[...]',
      atLeastZero,
    )
    .option('--config <json>', 'plug-in config as JSON')
    .option('--set <path=value>', 'set any field, e.g. limits.maxResources=3 (repeatable)', collect)
    .action(async (opts, cmd: Command) => {
      const { io, client } = context(cmd);
      exitCode = await createBlueprint(
        client,
        {
          file: opts.file,
          id: opts.id,
          type: opts.type,
          resourceType: opts.resourceType,
          description: opts.description,
          attributes: parseAttributes(opts.attributes),
          maxResources: opts.maxResources,
          leasesPerResource: opts.leasesPerResource,
          reclaimOnRelease: opts.reclaimOnRelease,
          idleTtlSeconds: opts.idleTtl,
          minIdle: opts.minIdle,
          config: opts.config,
          set: opts.set ?? [],
        },
        io,
      );
    });
  blueprint
    .command('update')
    .description('Change a blueprint (state, limits, attributes, config, description)')
    .argument('<id>')
    .option('--file <file>', 'JSON object of the fields to replace; - reads stdin')
    .option(
      '--set <path=value>',
      'e.g. limits.maxResources=3 or limits.minIdle=2 (repeatable)',
      collect,
    )
    .action(async (id: string, opts, cmd: Command) => {
      const { io, client } = context(cmd);
      exitCode = await updateBlueprint(client, id, { file: opts.file, set: opts.set ?? [] }, io);
    });
  for (const [verb, state, what] of [
    ['enable', 'enabled', 'serve new leases again'],
    ['drain', 'draining', 'no new leases; reclaim resources as their leases end'],
    ['disable', 'disabled', 'no new leases or resources; existing leases continue'],
  ] as const) {
    blueprint
      .command(verb)
      .description(`Set a blueprint ${state}: ${what}`)
      .argument('<id>')
      .action(async (id: string, _opts, cmd: Command) => {
        const { io, client } = context(cmd);
        exitCode = await setBlueprintState(client, id, state, io);
      });
  }
  blueprint
    .command('show')
    .description('Show one blueprint')
    .argument('<id>')
    .action(async (id: string, _opts, cmd: Command) => {
      const { io, client } = context(cmd);
      exitCode = await showBlueprintFlow(client, id, io);
    });

  program
    .command('console')
    .description(
      'Open the web console: a local server on 127.0.0.1 serving the console and forwarding /v1/* to the API (--url: a deployment, each request SigV4-signed with your AWS credentials; else the local runtime). Runs until Ctrl-C.',
    )
    .option('--port <port>', 'port on 127.0.0.1, 0 for any free one', consolePort, 8788)
    .option('--host <host>', 'only 127.0.0.1 is accepted: the proxy acts with your credentials')
    .option('--no-open', 'do not open a browser')
    .action(async (opts, cmd: Command) => {
      // Refused before anything else: no server is started, nothing is resolved.
      if (opts.host !== undefined && opts.host !== CONSOLE_HOST)
        throw new CliError(new ConsoleHostError(opts.host).message);
      const { io, client } = context(cmd);
      interrupts.install();
      exitCode = await consoleFlow(
        client.target,
        { host: opts.host ?? '127.0.0.1', port: opts.port, open: opts.open },
        io,
        interrupts,
      );
    });

  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    if (err instanceof CliError) {
      process.stderr.write(`drydock: ${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(
      `drydock: unexpected error (a bug; please report it): ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    return 1;
  } finally {
    interrupts.uninstall();
  }
}
