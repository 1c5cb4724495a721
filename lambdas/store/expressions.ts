/**
 * The expression DSL of the DynamoDB store: condition fragments named after what they assert,
 * composed with `allOf`, and an UpdateExpression builder. Pure (no SDK calls): every
 * placeholder a fragment uses travels with it, and merging two fragments that bind one
 * placeholder to different values fails loudly instead of sending a wrong condition.
 */
import type { QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import { TTL_ATTRIBUTE } from './schema.ts';

export type Names = Record<string, string>;
export type Values = Record<string, unknown>;

/** A piece of a condition or update expression with the placeholders it uses. */
export interface Fragment {
  expression: string;
  names: Names;
  values: Values;
}

const ATTRIBUTE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function placeholder(attribute: string): string {
  if (!ATTRIBUTE_NAME.test(attribute)) {
    throw new Error(`attribute name '${attribute}' cannot be used in an expression`);
  }
  return `#${attribute}`;
}

export const fragment = (expression: string, names: Names = {}, values: Values = {}): Fragment => ({
  expression,
  names,
  values,
});

function mergeInto(target: Record<string, unknown>, source: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(source)) {
    if (key in target && target[key] !== value) {
      throw new Error(`expression placeholder ${key} used for two different values`);
    }
    target[key] = value;
  }
}

/** All fragments must hold. */
export function allOf(...fragments: Fragment[]): Fragment {
  const combined = fragment(fragments.map((f) => f.expression).join(' AND '));
  for (const f of fragments) {
    mergeInto(combined.names, f.names);
    mergeInto(combined.values, f.values);
  }
  return combined;
}

/*
 * Condition fragments, named after what they assert; each TxWrite's condition is composed from
 * them exactly as its contract in ports.ts reads.
 */
export const itemIsNew = fragment('attribute_not_exists(#PK)', { '#PK': 'PK' });
export const itemExists = fragment('attribute_exists(#PK)', { '#PK': 'PK' });
export const statusIs = (status: string) =>
  fragment('#status = :expectStatus', { '#status': 'status' }, { ':expectStatus': status });
export const versionIs = (version: number) =>
  fragment('#version = :expectVersion', { '#version': 'version' }, { ':expectVersion': version });
export const hasNoLeases = fragment(
  '#leaseCount = :zero',
  { '#leaseCount': 'leaseCount' },
  { ':zero': 0 },
);
export const hasFreeCapacity = fragment('#leaseCount < #capacity', {
  '#leaseCount': 'leaseCount',
  '#capacity': 'capacity',
});
export const usedFewerThan = (maxUses: number) =>
  fragment('#uses < :maxUses', { '#uses': 'uses' }, { ':maxUses': maxUses });
/** A lease held by renewal (lease-hold.ts): it has a holdSeconds. */
export const isHeld = fragment('attribute_exists(#holdSeconds)', { '#holdSeconds': 'holdSeconds' });
export const notSuspect = fragment('attribute_not_exists(#suspectSince)', {
  '#suspectSince': 'suspectSince',
});
export function statusIn(statuses: readonly string[]): Fragment {
  if (statuses.length === 0) throw new Error('statusIn needs at least one status');
  const values = Object.fromEntries(statuses.map((s, i) => [`:statusIn${i}`, s]));
  return fragment(
    `#status IN (${Object.keys(values).join(', ')})`,
    { '#status': 'status' },
    values,
  );
}
export const heldBy = (ownerId: string) =>
  fragment('#ownerId = :owner', { '#ownerId': 'ownerId' }, { ':owner': ownerId });
export const waitSeqIs = (waitSeq: number) =>
  fragment('#waitSeq = :expectWaitSeq', { '#waitSeq': 'waitSeq' }, { ':expectWaitSeq': waitSeq });
/**
 * Waited (waitSeq > 0) and not yet woken for its current wait (wake.ts): leases never woken
 * have no wokenSeq. Compared with the item's own waitSeq, not one read from an index.
 */
export const wakeable = fragment(
  '#waitSeq > :noWait AND (attribute_not_exists(#wokenSeq) OR #wokenSeq < #waitSeq)',
  { '#waitSeq': 'waitSeq', '#wokenSeq': 'wokenSeq' },
  { ':noWait': 0 },
);
export const attemptIs = (attempt: number) =>
  fragment('#attempt = :expectAttempt', { '#attempt': 'attempt' }, { ':expectAttempt': attempt });
/** A command's poll counter; commands written before polling existed have none (count 0). */
export const pollsAre = (polls: number) =>
  polls === 0
    ? fragment(
        '(attribute_not_exists(#polls) OR #polls = :expectPolls)',
        { '#polls': 'polls' },
        { ':expectPolls': polls },
      )
    : fragment('#polls = :expectPolls', { '#polls': 'polls' }, { ':expectPolls': polls });
/**
 * An item that is absent, or present but past its TTL. DynamoDB deletes expired items lazily
 * (often within days, not seconds), so "expired" must count as "free" in the condition itself.
 * The TTL is rounded up and now down, so an item never counts as expired early.
 */
export const itemIsNewOrExpired = (nowEpoch: number) =>
  fragment(
    '(attribute_not_exists(#PK) OR #ttl <= :nowEpoch)',
    { '#PK': 'PK', '#ttl': TTL_ATTRIBUTE },
    { ':nowEpoch': nowEpoch },
  );
/** Listing filter (applied after the key condition, so a page may come back short). */
/** A lease that waited at least once (its wait chain has started). */
export const hasWaited = fragment(
  '#waitSeq > :noWaits',
  { '#waitSeq': 'waitSeq' },
  { ':noWaits': 0 },
);

export const ownedBy = (owner: string) =>
  fragment('#owner = :owner', { '#owner': 'owner' }, { ':owner': owner });

/** Collects SET / REMOVE / ADD clauses of one UpdateExpression. */
export class UpdateExpression {
  private readonly sets: string[] = [];
  private readonly removes: string[] = [];
  private readonly adds: string[] = [];
  private readonly names: Names = {};
  private readonly values: Values = {};

  /** SET #attribute = :attribute */
  set(attribute: string, value: unknown): this {
    const name = placeholder(attribute);
    const valueName = `:${attribute}`;
    this.sets.push(`${name} = ${valueName}`);
    mergeInto(this.names, { [name]: attribute });
    mergeInto(this.values, { [valueName]: value });
    return this;
  }

  /**
   * SET #attribute = #from: copies another attribute of the same item (an index key built from
   * fields a write does not know, e.g. one that has only the item's id). #from must exist.
   */
  copy(attribute: string, from: string): this {
    const name = placeholder(attribute);
    const fromName = placeholder(from);
    this.sets.push(`${name} = ${fromName}`);
    mergeInto(this.names, { [name]: attribute, [fromName]: from });
    return this;
  }

  /** SET #attribute = if_not_exists(#attribute, :attribute): keeps a present value. */
  setIfAbsent(attribute: string, value: unknown): this {
    const name = placeholder(attribute);
    const valueName = `:${attribute}`;
    this.sets.push(`${name} = if_not_exists(${name}, ${valueName})`);
    mergeInto(this.names, { [name]: attribute });
    mergeInto(this.values, { [valueName]: value });
    return this;
  }

  /** SET #attribute = #attribute + :delta */
  increment(attribute: string, delta: number): this {
    const name = placeholder(attribute);
    const valueName = `:${attribute}Delta`;
    this.sets.push(`${name} = ${name} + ${valueName}`);
    mergeInto(this.names, { [name]: attribute });
    mergeInto(this.values, { [valueName]: delta });
    return this;
  }

  /** ADD #attribute :delta (creates the attribute at 0 if missing) */
  add(attribute: string, delta: number): this {
    const name = placeholder(attribute);
    const valueName = `:${attribute}Delta`;
    this.adds.push(`${name} ${valueName}`);
    mergeInto(this.names, { [name]: attribute });
    mergeInto(this.values, { [valueName]: delta });
    return this;
  }

  remove(attribute: string): this {
    const name = placeholder(attribute);
    this.removes.push(name);
    mergeInto(this.names, { [name]: attribute });
    return this;
  }

  /** SETs non-null values, REMOVEs null ones, skips undefined ones. */
  patch(fields: Record<string, unknown>): this {
    for (const [attribute, value] of Object.entries(fields)) {
      if (value === undefined) continue;
      if (value === null) this.remove(attribute);
      else this.set(attribute, value);
    }
    return this;
  }

  toFragment(): Fragment {
    const clauses = [
      this.sets.length > 0 ? `SET ${this.sets.join(', ')}` : '',
      this.removes.length > 0 ? `REMOVE ${this.removes.join(', ')}` : '',
      this.adds.length > 0 ? `ADD ${this.adds.join(', ')}` : '',
    ].filter(Boolean);
    return fragment(clauses.join(' '), this.names, this.values);
  }
}

/** ExpressionAttributeNames/Values for the given fragments; empty maps are omitted (DynamoDB rejects them). */
export function expressionAttributes(...fragments: Fragment[]) {
  const names: Names = {};
  const values: Values = {};
  for (const f of fragments) {
    mergeInto(names, f.names);
    mergeInto(values, f.values);
  }
  return {
    ...(Object.keys(names).length > 0 ? { ExpressionAttributeNames: names } : {}),
    ...(Object.keys(values).length > 0 ? { ExpressionAttributeValues: values } : {}),
  };
}

/** Adds a FilterExpression to a query (placeholders merged with the key condition's). */
export function withFilter(
  input: QueryCommandInput,
  filter: Fragment | undefined,
): QueryCommandInput {
  if (!filter) return input;
  const names: Names = { ...(input.ExpressionAttributeNames ?? {}) };
  const values: Values = { ...(input.ExpressionAttributeValues ?? {}) };
  mergeInto(names, filter.names);
  mergeInto(values, filter.values);
  return {
    ...input,
    FilterExpression: filter.expression,
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: values,
  };
}
