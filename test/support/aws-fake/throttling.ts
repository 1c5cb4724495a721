/**
 * Throttling on demand: the next `n` calls of an operation fail with the service's own
 * throttling error (SSM and CloudWatch Logs: ThrottlingException, HTTP 400; EC2:
 * RequestLimitExceeded, HTTP 503), as a real account's rate limits would make them fail.
 */
export class Throttles {
  private readonly remaining = new Map<string, number>();

  constructor(private readonly operations: readonly string[]) {}

  add(operation: string, n: number): void {
    if (!this.operations.includes(operation)) {
      throw new Error(
        `FakeAws.throttle: unknown operation '${operation}' (one of ${this.operations.join(', ')})`,
      );
    }
    this.remaining.set(operation, (this.remaining.get(operation) ?? 0) + n);
  }

  /** True when this call of `operation` is to be throttled (and counts it). */
  take(operation: string): boolean {
    const left = this.remaining.get(operation) ?? 0;
    if (left <= 0) return false;
    this.remaining.set(operation, left - 1);
    return true;
  }
}
