/**
 * The use cases the handlers and the CLI call, in one import. Each validates what only the
 * domain can know (ownership, state), does one thing, and returns domain objects or throws a
 * typed error whose message says what to do. They live one module per aggregate; this file
 * only re-exports them (no logic here), so importers need not know the split.
 */
export { type Caller, getLease } from './access.ts';
export { createBlueprint, getBlueprint, updateBlueprint } from './blueprint-admin.ts';
export { type BlueprintInput, blueprintInputSchema } from './blueprint-schema.ts';
export {
  cancelCommand,
  getCommand,
  readCommand,
  startCommand,
} from './commands.ts';
export {
  type DeadLetter,
  type DeadLetterPeek,
  type DeadLetterQueue,
  listDeadLetters,
  MAX_DEAD_LETTERS_LISTED,
  type RedriveStarted,
  redriveDeadLetters,
} from './dead-letters.ts';
export { processUpdate } from './dispatch.ts';
export { ForbiddenError } from './errors.ts';
export { type HostEvent, type HostEventOutcome, handleHostEvent } from './host-events.ts';
export {
  IDEMPOTENCY_KEY_TTL_SECONDS,
  type LeaseRequest,
  type LeaseRequestOutcome,
  releaseLease,
  requestLease,
  submitLeaseRequest,
} from './leases.ts';
export {
  DEFAULT_PAGE_SIZE,
  LISTED_LEASE_STATUSES,
  LISTED_RESOURCE_STATUSES,
  type ListQuery,
  listBlueprints,
  listLeases,
  listResources,
  MAX_PAGE_SIZE,
} from './listings.ts';
export {
  type LogQuery,
  readBlueprintLogs,
  readLeaseLogs,
  readLogs,
  readResourceLogs,
} from './logs.ts';
export { recordPoolGauges } from './pool-gauges.ts';
export { MAX_WAITING_PAGES, type PoolStats, poolStats } from './pool-stats.ts';
export { getResource, releaseResource } from './resources.ts';
export { advanceSetup, failSetup, type SetupStepOutcome } from './setup.ts';
export { runSweep } from './sweep.ts';
