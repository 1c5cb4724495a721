/**
 * One base error; subclasses set `name`, take `{ cause }` and carry context. Adapters translate
 * SDK exceptions into these so the core never sees an AWS type.
 */
export class DrydockError extends Error {
  /** A stable code for API responses and CLI output. */
  readonly code: string;
  readonly context: Record<string, unknown>;
  constructor(
    code: string,
    message: string,
    options: { cause?: unknown; context?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DrydockError';
    this.code = code;
    this.context = options.context ?? {};
  }
}

/** Bad input from a caller or operator; the message says what to fix. */
export class ValidationError extends DrydockError {
  constructor(
    message: string,
    options: { cause?: unknown; context?: Record<string, unknown> } = {},
  ) {
    super('invalid_request', message, options);
    this.name = 'ValidationError';
  }
}

export class NotFoundError extends DrydockError {
  constructor(what: string, id: string) {
    super('not_found', `${what} '${id}' does not exist`, { context: { what, id } });
    this.name = 'NotFoundError';
  }
}

export class ForbiddenError extends DrydockError {
  constructor(message: string) {
    super('forbidden', message);
    this.name = 'ForbiddenError';
  }
}

/** A request that conflicts with the object's current state (e.g. release of a destroyed lease). */
export class StateConflictError extends DrydockError {
  constructor(message: string, context: Record<string, unknown> = {}) {
    super('conflict', message, { context });
    this.name = 'StateConflictError';
  }
}

/** Why one write of a cancelled transaction failed. */
export interface WriteFailure {
  /** The write's label (`writeLabel` in ports.ts), e.g. `updateLease:L1`, `takeSlotLock:k`. */
  label: string;
  /** `condition`: its condition was false; `conflict`: another transaction touched the item. */
  reason: 'condition' | 'conflict' | 'other';
  /**
   * The item as it was when the condition failed (key attributes removed), when DynamoDB
   * returned it; absent for a missing item. Kept out of `context`: it may hold secrets.
   */
  item?: Record<string, unknown>;
}

/**
 * A conditional write or transaction did not apply because the world changed since it was
 * planned (another worker won, a slot is taken). Always safe to re-plan and retry.
 */
export class WriteConflictError extends DrydockError {
  readonly failures: WriteFailure[];
  constructor(message: string, failures: WriteFailure[], options: { cause?: unknown } = {}) {
    super('write_conflict', message, {
      ...options,
      context: { failures: failures.map(({ label, reason }) => ({ label, reason })) },
    });
    this.name = 'WriteConflictError';
    this.failures = failures;
  }

  /** Labels of the writes that failed. */
  get labels(): string[] {
    return this.failures.map((f) => f.label);
  }

  /** Whether the write labelled `label` failed (for `reason`, when given). */
  failed(label: string, reason?: WriteFailure['reason']): boolean {
    return this.failures.some(
      (f) => f.label === label && (reason === undefined || f.reason === reason),
    );
  }
}

/** Temporary failure (throttling, cloud capacity, a busy dependency): retry later. */
export class TemporaryError extends DrydockError {
  constructor(
    message: string,
    options: { cause?: unknown; context?: Record<string, unknown> } = {},
  ) {
    super('temporary', message, options);
    this.name = 'TemporaryError';
  }
}

/** The resource behind a lease is gone or unreachable. */
export class ResourceGoneError extends DrydockError {
  constructor(
    message: string,
    options: { cause?: unknown; context?: Record<string, unknown> } = {},
  ) {
    super('resource_gone', message, options);
    this.name = 'ResourceGoneError';
  }
}

/** Test hook: an injected crash between two writes (crash tests). Never caught by the core. */
export class InjectedCrash extends Error {
  constructor(point: string) {
    super(`injected crash at ${point}`);
    this.name = 'InjectedCrash';
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
