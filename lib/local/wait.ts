/**
 * Waiting for a condition with a deadline: the one poller the local runtime (DynamoDB Local's
 * startup), the benchmarks and the tests share.
 */

export interface WaitForOptions {
  /** @default 10_000 */
  timeoutMs?: number;
  /** @default 50 */
  intervalMs?: number;
  /** What is being waited for, for the timeout error. */
  message?: string;
  /**
   * Checked before each try: an error returned here ends the wait at once (the thing waited
   * for died, say), where an error thrown by the condition only means "not yet".
   */
  giveUp?: () => Error | undefined;
}

/**
 * Polls `condition` until it returns a truthy value (which is returned) or the deadline
 * passes. Errors thrown by `condition` count as "not yet" and are reported at the deadline.
 */
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  options: WaitForOptions = {},
): Promise<NonNullable<T>> {
  const { timeoutMs = 10_000, intervalMs = 50, message = 'condition', giveUp } = options;
  const started = Date.now();
  let last: unknown;
  let lastError: unknown;
  for (;;) {
    const fatal = giveUp?.();
    if (fatal) throw fatal;
    try {
      last = await condition();
      if (last) return last as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() - started >= timeoutMs) {
      const detail = lastError
        ? `last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`
        : `last value: ${JSON.stringify(last)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${message} (${detail})`, {
        cause: lastError,
      });
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
