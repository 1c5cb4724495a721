/** The bounded output tail on a command record: offsets, what a reader gets, what was cut. */
import { describe, expect, it } from 'vitest';
import { appendOutput, readOutput, recordedOffsets } from '../../lambdas/core/command-output.ts';

describe('command output on the record', () => {
  it('appends chunks and lets a reader continue from any offset it was given', () => {
    let command = { output: appendOutput({}, { stdout: 'one\n', stderr: '' }) };
    command = { output: appendOutput(command, { stdout: 'two\n', stderr: 'warn\n' }) };
    expect(recordedOffsets(command)).toEqual({ stdout: 8, stderr: 5 });
    const first = readOutput(command, {});
    expect(first.stdout).toEqual({ from: 0, to: 8, text: 'one\ntwo\n' });
    const next = readOutput(command, { stdout: 4, stderr: 5 });
    expect(next.stdout.text).toBe('two\n');
    expect(next.stderr).toEqual({ from: 5, to: 5, text: '' });
  });

  it('keeps only the last bytes, on a whole character, and tells a late reader what it missed', () => {
    let command = { output: appendOutput({}, { stdout: 'aaaa', stderr: '' }, 6) };
    command = { output: appendOutput(command, { stdout: 'bbé', stderr: '' }, 6) }; // é is 2 bytes
    const tail = command.output.stdout;
    expect(tail.end).toBe(8);
    expect(Buffer.byteLength(tail.text)).toBeLessThanOrEqual(6);
    expect(tail.start).toBe(tail.end - Buffer.byteLength(tail.text));
    expect(tail.text.endsWith('bbé')).toBe(true);
    const late = readOutput(command, { stdout: 0 });
    expect(late.stdout.skipped).toBe(tail.start);
    expect(late.stdout.text).toBe(tail.text);
  });
});
