/**
 * The DynamoDB actions the deployed store issues, and so exactly what the stack grants each
 * function on the table (lib/constructs/drydock-table.ts; issue 15, point 4). A transaction
 * needs the action of each of its items (there is no TransactWriteItems action in IAM).
 *
 * test/infra/least-privilege.test.ts reads the store's source for the SDK commands and
 * transaction items it uses and fails when this list and the code disagree, either way. Not
 * here on purpose: Scan (listing-backfill.ts, free-backfill.ts) and table management (table.ts),
 * which only the local runtime runs.
 */
export const STORE_DYNAMODB_ACTIONS = [
  'dynamodb:GetItem', // GetCommand
  'dynamodb:BatchGetItem', // BatchGetCommand
  'dynamodb:Query', // QueryCommand
  'dynamodb:PutItem', // PutCommand, transaction Put
  'dynamodb:UpdateItem', // UpdateCommand, transaction Update
  'dynamodb:DeleteItem', // DeleteCommand, transaction Delete
  'dynamodb:ConditionCheckItem', // transaction ConditionCheck
] as const;

/** Store modules only the local runtime runs: their commands are never granted. */
export const LOCAL_ONLY_STORE_MODULES = [
  'table.ts',
  'listing-backfill.ts',
  'free-backfill.ts',
] as const;
