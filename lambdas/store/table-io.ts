/**
 * The SDK calls of the DynamoDB store, in one place: every read and write on the table goes
 * through here, and every SDK exception leaves as a domain error (sdk-errors.ts). No domain
 * knowledge: keys, queries and planned writes come in ready-made.
 */
import { randomUUID } from 'node:crypto';
import {
  BatchGetCommand,
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { DrydockError, TemporaryError, WriteConflictError } from '../core/errors.ts';
import { encodeCursor } from './cursors.ts';
import { type ItemKey, stripKeys } from './keys.ts';
import { type PlannedWrite, toTransactItem } from './planned-write.ts';
import { describeWrite, translateError } from './sdk-errors.ts';

type Item = Record<string, unknown>;

const MAX_TRANSACTION_WRITES = 100;
const MAX_BATCH_GET_KEYS = 100;
const BATCH_GET_ATTEMPTS = 8;

export class TableIo {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    readonly tableName: string,
  ) {}

  // ---- reads ---------------------------------------------------------------------------------

  /** Strongly consistent read of one item, key attributes removed. */
  async getItem<T>(key: ItemKey, what: string): Promise<T | undefined> {
    const output = await this.read(what, () =>
      this.doc.send(new GetCommand({ TableName: this.tableName, Key: key, ConsistentRead: true })),
    );
    return output.Item ? stripKeys<T>(output.Item) : undefined;
  }

  async queryPage(
    input: QueryCommandInput,
    what: string,
  ): Promise<{ items: Item[]; lastKey?: Item }> {
    const output = await this.read(what, () => this.doc.send(new QueryCommand(input)));
    return { items: output.Items ?? [], lastKey: output.LastEvaluatedKey };
  }

  /** One page of domain objects, with a cursor when DynamoDB stopped early. */
  async queryObjects<T>(
    input: QueryCommandInput,
    what: string,
  ): Promise<{ items: T[]; cursor?: string }> {
    const { items, lastKey } = await this.queryPage(input, what);
    return {
      items: items.map((item) => stripKeys<T>(item)),
      ...(lastKey ? { cursor: encodeCursor(lastKey) } : {}),
    };
  }

  /** Every item a query matches, following LastEvaluatedKey. */
  async queryAll(input: QueryCommandInput, what: string): Promise<Item[]> {
    const items: Item[] = [];
    let startKey: Item | undefined;
    do {
      const page = await this.queryPage({ ...input, ExclusiveStartKey: startKey }, what);
      items.push(...page.items);
      startKey = page.lastKey;
    } while (startKey);
    return items;
  }

  /** How many items a query matches (Select COUNT, every page). */
  async count(input: QueryCommandInput, what: string): Promise<number> {
    let count = 0;
    let startKey: Item | undefined;
    do {
      const output = await this.read(what, () =>
        this.doc.send(new QueryCommand({ ...input, Select: 'COUNT', ExclusiveStartKey: startKey })),
      );
      count += output.Count ?? 0;
      startKey = output.LastEvaluatedKey;
    } while (startKey);
    return count;
  }

  /**
   * Consistent batch read of many keys (missing ones are omitted), retrying unprocessed keys
   * with backoff: BatchGetItem returns them under throttling instead of failing.
   */
  async batchGet(keys: ItemKey[], what: string): Promise<Item[]> {
    const found: Item[] = [];
    for (let i = 0; i < keys.length; i += MAX_BATCH_GET_KEYS) {
      let pending: Item[] = keys.slice(i, i + MAX_BATCH_GET_KEYS).map((key) => ({ ...key }));
      for (let attempt = 1; pending.length > 0; attempt++) {
        if (attempt > BATCH_GET_ATTEMPTS) {
          throw new TemporaryError(
            `${what}: ${pending.length} keys still unprocessed after ${BATCH_GET_ATTEMPTS} attempts`,
          );
        }
        if (attempt > 1) await backoff(attempt);
        const output = await this.read(what, () =>
          this.doc.send(
            new BatchGetCommand({
              RequestItems: { [this.tableName]: { Keys: pending, ConsistentRead: true } },
            }),
          ),
        );
        found.push(...(output.Responses?.[this.tableName] ?? []));
        pending = output.UnprocessedKeys?.[this.tableName]?.Keys ?? [];
      }
    }
    return found;
  }

  // ---- writes --------------------------------------------------------------------------------

  /** Atomic: one conditional write alone, several as one TransactWriteItems. */
  async writeAll(planned: PlannedWrite[]): Promise<void> {
    if (planned.length === 0) return;
    if (planned.length > MAX_TRANSACTION_WRITES) {
      throw new Error(
        `a transaction holds at most ${MAX_TRANSACTION_WRITES} writes, got ${planned.length}`,
      );
    }
    const [only] = planned;
    if (planned.length === 1 && only) {
      // One write: a plain conditional write costs half a transactional one.
      await this.write(only);
      return;
    }
    const labels = planned.map((p) => p.label);
    try {
      await this.doc.send(
        new TransactWriteCommand({
          TransactItems: planned.map(toTransactItem),
          // Makes SDK retries of this call idempotent: a retry after a lost response returns
          // success instead of failing the conditions the first attempt already consumed.
          ClientRequestToken: randomUUID(),
        }),
      );
    } catch (err) {
      throw translateError(err, `transaction [${labels.join(', ')}]`, planned);
    }
  }

  async write(planned: PlannedWrite): Promise<void> {
    try {
      switch (planned.kind) {
        case 'Put':
          await this.doc.send(new PutCommand(planned.params));
          return;
        case 'Update':
          await this.doc.send(new UpdateCommand(planned.params));
          return;
        case 'Delete':
          await this.doc.send(new DeleteCommand(planned.params));
          return;
        case 'ConditionCheck':
          await this.checkAlone(planned);
          return;
      }
    } catch (err) {
      if (err instanceof DrydockError) throw err;
      throw translateError(err, planned.label, [planned]);
    }
  }

  /**
   * A lone condition check is a consistent read evaluated here: TransactWriteItems would cost
   * twice as much for the same answer, and nothing is written either way.
   */
  private async checkAlone(planned: Extract<PlannedWrite, { kind: 'ConditionCheck' }>) {
    const output = await this.doc.send(
      new GetCommand({ TableName: this.tableName, Key: planned.params.Key, ConsistentRead: true }),
    );
    if (!output.Item || !planned.holds(output.Item)) {
      throw new WriteConflictError(`${describeWrite(planned)}: condition failed`, [
        {
          label: planned.label,
          reason: 'condition',
          ...(output.Item ? { item: stripKeys<Item>(output.Item) } : {}),
        },
      ]);
    }
  }

  /** Runs a read, translating SDK errors. */
  private async read<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw translateError(err, what);
    }
  }
}

function backoff(attempt: number): Promise<void> {
  const ms = Math.min(1_000, 25 * 2 ** attempt) * (0.5 + Math.random() / 2);
  return new Promise((resolve) => setTimeout(resolve, ms));
}
