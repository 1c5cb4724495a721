/**
 * `drydock exec` and `drydock lease -- cmd` against a fake API whose command appends output
 * across several polls: the output is streamed in order and never twice, cuts are announced,
 * the exit status follows the command's, and Ctrl-C cancels the command before the lease is
 * released.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CommandResult, CommandStatus } from '../../lambdas/core/model.ts';
import { ApiClient } from '../../lib/cli/api.ts';
import type { ApiCommand, CommandPacing } from '../../lib/cli/command-stream.ts';
import { Interrupts } from '../../lib/cli/interrupts.ts';
import { execFlow, leaseFlow } from '../../lib/cli/lease.ts';
import type { Io } from '../../lib/cli/output.ts';

/** What one poll of the fake command does before it answers. */
interface Step {
  stdout?: string;
  stderr?: string;
  status?: CommandStatus;
  result?: Partial<CommandResult>;
  error?: string;
  /** Runs while the poll is in flight (e.g. the user presses Ctrl-C). */
  meanwhile?: () => void;
}

interface Request {
  method: string;
  path: string;
  query: Record<string, string>;
  /** Everything the CLI had written when the request arrived. */
  writtenBefore: string;
}

const pacing: CommandPacing = { pollMs: 10, firstPollMs: 5, cancelWaitMs: 2_000 };

/** The fake API's one command; each GET applies the next step. */
class FakeCommand {
  status: CommandStatus = 'queued';
  stdout = '';
  stderr = '';
  result: CommandResult | undefined;
  error: string | undefined;
  cancelRequested = false;
  /** Bytes of each stream the server keeps (a bounded tail). */
  keep = Number.POSITIVE_INFINITY;
  /** A server that answers from the oldest kept byte whatever offset is asked for. */
  ignoreOffsets = false;

  constructor(
    readonly steps: Step[],
    readonly afterCancel: Step[] = [],
  ) {}

  record(): ApiCommand {
    return {
      id: 'cmd-1',
      leaseId: 'lease-1',
      status: this.status,
      argv: ['make', 'test'],
      timeoutSeconds: 300,
      createdAt: '2026-11-30T00:00:00.000Z',
      ...(this.result ? { result: this.result } : {}),
      ...(this.error ? { error: this.error } : {}),
    };
  }

  poll(query: Record<string, string>) {
    const step = (this.cancelRequested ? this.afterCancel : this.steps).shift() ?? {};
    this.stdout += step.stdout ?? '';
    this.stderr += step.stderr ?? '';
    if (step.status) this.status = step.status;
    if (step.error) this.error = step.error;
    if (step.result) {
      this.result = {
        exitCode: 0,
        stdout: this.stdout,
        stderr: this.stderr,
        timedOut: false,
        durationMs: 1500,
        ...step.result,
      };
    }
    step.meanwhile?.();
    return {
      command: this.record(),
      output: {
        stdout: this.#chunk(this.stdout, Number(query.stdoutFrom ?? 0)),
        stderr: this.#chunk(this.stderr, Number(query.stderrFrom ?? 0)),
      },
    };
  }

  #chunk(all: string, from: number) {
    const bytes = Buffer.from(all, 'utf8');
    const oldest = Math.max(0, bytes.length - this.keep);
    const start = this.ignoreOffsets ? oldest : Math.max(from, oldest);
    return {
      from: start,
      to: bytes.length,
      text: bytes.subarray(start).toString('utf8'),
      ...(start > from ? { skipped: start - from } : {}),
    };
  }
}

describe('running a command', () => {
  let command: FakeCommand;
  let requests: Request[] = [];
  let writes: Array<['out' | 'err', string]> = [];
  const written = () => writes.map(([, t]) => t).join('');
  const out = () =>
    writes
      .filter(([s]) => s === 'out')
      .map(([, t]) => t)
      .join('');
  const err = () =>
    writes
      .filter(([s]) => s === 'err')
      .map(([, t]) => t)
      .join('');
  const io = (json = false, tty = false): Io => ({
    out: (text) => void writes.push(['out', text]),
    err: (text) => void writes.push(['err', text]),
    tty,
    json,
  });
  const sent = (method: string, path: string) =>
    requests.filter((r) => r.method === method && r.path === path);

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    requests.push({
      method: req.method ?? '',
      path,
      query: Object.fromEntries(url.searchParams),
      writtenBefore: written(),
    });
    req.resume();
    req.on('end', () => {
      const answer = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      const lease = { id: 'lease-1', type: 'host', resourceId: 'res-1' };
      if (req.method === 'POST' && path === '/v1/leases') {
        return answer(201, { lease: { ...lease, status: 'pending' } });
      }
      if (path === '/v1/leases/lease-1/logs') return answer(200, { items: [] });
      if (path === '/v1/leases/lease-1')
        return answer(200, { lease: { ...lease, status: 'active' } });
      if (path === '/v1/leases/lease-1/release') {
        return answer(200, { lease: { ...lease, status: 'released' } });
      }
      if (req.method === 'POST' && path === '/v1/leases/lease-1/commands') {
        return answer(202, { command: command.record() });
      }
      if (path === '/v1/leases/lease-1/commands/cmd-1') {
        return answer(200, command.poll(Object.fromEntries(url.searchParams)));
      }
      if (path === '/v1/leases/lease-1/commands/cmd-1/cancel') {
        if (!['finished', 'failed', 'cancelled'].includes(command.status)) {
          command.cancelRequested = true;
          command.status = 'cancelling';
        }
        return answer(202, { command: command.record() });
      }
      answer(404, { error: { code: 'not_found', message: `no route ${path}` } });
    });
  });
  let client: ApiClient;

  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    client = new ApiClient({ kind: 'local', baseUrl, token: 't', dataDir: '', infoFile: '' });
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
  beforeEach(() => {
    requests = [];
    writes = [];
  });

  const exec = (interrupts = new Interrupts(), json = false) =>
    execFlow(client, 'lease-1', ['make', 'test'], undefined, io(json), interrupts, pacing);

  it('streams each chunk as its poll returns it, in order, and never twice', async () => {
    command = new FakeCommand([
      { status: 'running' },
      { stdout: 'compiling\n' },
      { stderr: 'warning: unused\n' },
      {},
      { stdout: 'linking ✓', stderr: 'done\n' },
      { stdout: '\n', status: 'finished', result: { exitCode: 3 } },
    ]);
    expect(await exec()).toBe(3);

    const chunks = writes.filter(([, t]) => !t.startsWith('drydock ['));
    expect(chunks).toEqual([
      ['out', 'compiling\n'],
      ['err', 'warning: unused\n'],
      ['out', 'linking ✓'],
      ['err', 'done\n'],
      ['out', '\n'],
    ]);
    // result.stdout (the kept tail) is not printed again at the end.
    expect(out()).toBe('compiling\nlinking ✓\n');
    expect(err()).toMatch(/command exited 3 after 1\.5s\n$/);

    // Each chunk was written before the next poll went out: streamed, not collected.
    const polls = sent('GET', '/v1/leases/lease-1/commands/cmd-1');
    expect(polls).toHaveLength(6);
    expect(polls[2]?.writtenBefore).toContain('compiling\n');
    expect(polls[2]?.writtenBefore).not.toContain('warning');
    expect(polls[3]?.writtenBefore).toContain('warning: unused\n');
    // The next offsets are the byte offsets the server returned (✓ is 3 bytes of UTF-8).
    expect(polls.map((p) => [p.query.stdoutFrom, p.query.stderrFrom])).toEqual([
      ['0', '0'],
      ['0', '0'],
      ['10', '0'],
      ['10', '16'],
      ['10', '16'],
      ['21', '21'],
    ]);
  });

  it('on a terminal, redraws no status line once output has started', async () => {
    command = new FakeCommand([
      { status: 'running' },
      {},
      { stdout: 'half a' },
      {},
      { stdout: ' line\nno newline', status: 'finished', result: {} },
    ]);
    const code = await execFlow(
      client,
      'lease-1',
      ['make', 'test'],
      undefined,
      io(false, true),
      new Interrupts(),
      pacing,
    );
    expect(code).toBe(0);
    expect(out()).toBe('half a line\nno newline');
    const first = writes.findIndex(([, t]) => t === 'half a');
    const redraw = ([, t]: ['out' | 'err', string]) => t.startsWith('\r\x1b[K') && t.length > 4;
    expect(writes.slice(0, first).filter(redraw).at(-1)?.[1]).toMatch(
      /running `make test` on lease-1/,
    );
    expect(writes.slice(first).filter(redraw)).toEqual([]);
    // The last progress line starts on a line of its own after output without a newline.
    expect(writes.slice(-2)).toEqual([
      ['err', '\n'],
      ['err', expect.stringMatching(/command exited 0/)],
    ]);
  });

  it('never writes a byte twice, even when the server answers from an earlier offset', async () => {
    command = new FakeCommand([
      { status: 'running', stdout: 'a\n' },
      { stdout: 'b\n' },
      { stdout: 'c\n', status: 'finished', result: {} },
    ]);
    command.ignoreOffsets = true;
    expect(await exec()).toBe(0);
    expect(out()).toBe('a\nb\nc\n');
  });

  it('says how many bytes were cut when the server kept only a tail', async () => {
    command = new FakeCommand([
      { status: 'running', stdout: 'first\n' },
      { stdout: `${'x'.repeat(30)}\nlast\n`, status: 'finished', result: {} },
    ]);
    command.keep = 10;
    expect(await exec()).toBe(0);
    const chunks = writes.filter(([, t]) => !t.startsWith('drydock ['));
    expect(chunks).toEqual([
      ['out', 'first\n'],
      ['err', '[drydock: 26 bytes of output were cut]\n'],
      ['out', 'xxxx\nlast\n'],
    ]);
  });

  it.each([
    ['exits 0', { exitCode: 0 }, 0, /command exited 0/],
    ['timed out', { exitCode: null, timedOut: true }, 124, /command timed out after 5m/],
    ['killed by a signal', { exitCode: null }, 125, /command was killed by a signal/],
  ])('exits with the command status: %s', async (_name, result, code, message) => {
    command = new FakeCommand([{ status: 'finished', result }]);
    expect(await exec()).toBe(code);
    expect(err()).toMatch(message);
  });

  it('exits 125 when the command could not run', async () => {
    command = new FakeCommand([{ status: 'failed', error: 'host res-1 is gone' }]);
    expect(await exec()).toBe(125);
    expect(err()).toMatch(/command cmd-1 could not run: host res-1 is gone/);
  });

  it('with --json prints only the final record on stdout', async () => {
    command = new FakeCommand([
      { status: 'running', stdout: 'a\n' },
      { stdout: 'b\n', status: 'finished', result: { exitCode: 2 } },
    ]);
    expect(await exec(new Interrupts(), true)).toBe(2);
    const printed = JSON.parse(out()) as { command: ApiCommand };
    expect(printed.command).toMatchObject({
      id: 'cmd-1',
      status: 'finished',
      result: { exitCode: 2, stdout: 'a\nb\n' },
    });
    expect(err()).not.toMatch(/^a$/m);
  });

  it('Ctrl-C cancels the command once, streams until it is cancelled, and exits 130', async () => {
    const interrupts = new Interrupts();
    command = new FakeCommand(
      [
        { status: 'running', stdout: 'working\n' },
        { stdout: 'still working\n', meanwhile: () => interrupts.trigger('SIGINT') },
        { stdout: 'never\n' },
      ],
      [{ stdout: 'cleaning up\n' }, {}, { status: 'cancelled', error: 'killed with SIGTERM' }],
    );
    expect(await exec(interrupts)).toBe(130);
    expect(sent('POST', '/v1/leases/lease-1/commands/cmd-1/cancel')).toHaveLength(1);
    expect(out()).toBe('working\nstill working\ncleaning up\n');
    expect(err()).toMatch(/SIGINT: cancelling command cmd-1/);
    expect(err()).toMatch(/command cancelled \(killed with SIGTERM\)/);
    const last = requests.at(-1);
    expect(last?.method).toBe('GET');
    expect(command.status).toBe('cancelled');
  });

  it('SIGTERM exits 143; a command that will not end is left after the wait', async () => {
    const interrupts = new Interrupts();
    command = new FakeCommand([
      { status: 'running', meanwhile: () => interrupts.trigger('SIGTERM') },
    ]);
    const started = Date.now();
    expect(
      await execFlow(client, 'lease-1', ['make'], undefined, io(), interrupts, {
        ...pacing,
        cancelWaitMs: 300,
      }),
    ).toBe(143);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(sent('POST', '/v1/leases/lease-1/commands/cmd-1/cancel')).toHaveLength(1);
    expect(err()).toMatch(
      /stopped waiting: command cmd-1 was still cancelling; it may still be running on lease-1/,
    );
  });

  const leaseWith = (interrupts: Interrupts) =>
    leaseFlow(
      client,
      { type: 'host', attributes: {}, timeoutSeconds: 60, command: ['make', 'test'] },
      io(),
      interrupts,
      pacing,
    );

  it('lease -- cmd: Ctrl-C cancels the command, then releases the lease, exit 130', async () => {
    const interrupts = new Interrupts();
    command = new FakeCommand(
      [{ status: 'running', stdout: 'working\n', meanwhile: () => interrupts.trigger('SIGINT') }],
      [{ status: 'cancelled' }],
    );
    expect(await leaseWith(interrupts)).toBe(130);
    const order = requests
      .filter((r) => r.method === 'POST')
      .map((r) => r.path.replace('/v1/leases', ''));
    expect(order).toEqual([
      '',
      '/lease-1/commands',
      '/lease-1/commands/cmd-1/cancel',
      '/lease-1/release',
    ]);
    const release = sent('POST', '/v1/leases/lease-1/release')[0];
    expect(release?.writtenBefore).toMatch(/command cancelled/);
    expect(out()).toBe('working\n');
    expect(err()).toMatch(/released lease-1/);
  });

  it('lease -- cmd: a second Ctrl-C stops waiting at once and still releases the lease', async () => {
    const exits: number[] = [];
    const interrupts = new Interrupts({ exit: (code) => void exits.push(code), warn: () => {} });
    command = new FakeCommand(
      [{ status: 'running', meanwhile: () => interrupts.trigger('SIGINT') }],
      [{ meanwhile: () => interrupts.trigger('SIGINT') }],
    );
    const started = Date.now();
    expect(await leaseWith(interrupts)).toBe(130);
    // The cancel wait (2 s here) was cut short, and the process was not made to exit.
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(exits).toEqual([]);
    expect(sent('POST', '/v1/leases/lease-1/commands/cmd-1/cancel')).toHaveLength(1);
    expect(sent('POST', '/v1/leases/lease-1/release')).toHaveLength(1);
    expect(err()).toMatch(/it may still be running on lease-1/);
    // A third one, now that nothing is left to wait for, exits at once.
    interrupts.trigger('SIGINT');
    expect(exits).toEqual([130]);
  });
});
