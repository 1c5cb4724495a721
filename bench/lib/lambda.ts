/**
 * Invoking the real worker handler in-process, as Lambda's SQS event source mapping would: an
 * SQS event of received messages, a Lambda context with a deadline, and the handler's
 * structured log lines read back — the same way one would count what the workers did on AWS
 * (CloudWatch Logs Insights over `update processed` lines), since the handler's only other
 * output is the batch's failures.
 */
export { lambdaContext, sqsEvent } from '../../lib/local/lambda-events.ts';

export type LogEntry = Record<string, unknown> & { level?: string; message?: string };

/**
 * Takes the JSON log lines written to stdout/stderr (Powertools' logger writes one JSON object
 * per line) and hands them to `onEntry` instead of printing them; everything else passes
 * through. Returns a function that restores the streams.
 */
export function captureJsonLogs(onEntry: (entry: LogEntry) => void): () => void {
  const streams = [process.stdout, process.stderr];
  const originals = streams.map((s) => s.write);
  streams.forEach((stream, i) => {
    const original = originals[i]!;
    let pending = '';
    stream.write = ((chunk: unknown, ...rest: unknown[]) => {
      const text =
        typeof chunk === 'string'
          ? chunk
          : chunk instanceof Uint8Array
            ? Buffer.from(chunk).toString('utf8')
            : undefined;
      if (text === undefined || (!pending && !text.startsWith('{'))) {
        return (original as (...args: unknown[]) => boolean).call(stream, chunk, ...rest);
      }
      pending += text;
      let newline = pending.indexOf('\n');
      while (newline >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        try {
          onEntry(JSON.parse(line) as LogEntry);
        } catch {
          original.call(stream, `${line}\n`);
        }
        newline = pending.indexOf('\n');
      }
      const callback = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
      callback?.();
      return true;
    }) as typeof stream.write;
  });
  return () => {
    streams.forEach((stream, i) => {
      stream.write = originals[i]!;
    });
  };
}
