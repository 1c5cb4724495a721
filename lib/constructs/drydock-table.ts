import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { STORE_DYNAMODB_ACTIONS } from '../../lambdas/store/iam-actions.ts';
import {
  GSI,
  GSI_PROJECTION,
  KEY_ATTRIBUTE_TYPE,
  TABLE_KEYS,
  TTL_ATTRIBUTE,
} from '../../lambdas/store/schema.ts';
import { acknowledgeWildcardResource } from './nag.ts';

export interface DrydockTableProps {
  /**
   * What happens to the table when it leaves the stack. Holds every lease and resource, and
   * the slot locks that stop cloud hosts from being orphaned: keep it unless the stack is a
   * throwaway test deployment.
   *
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

const ATTRIBUTE_TYPES: Record<typeof KEY_ATTRIBUTE_TYPE, dynamodb.AttributeType> = {
  S: dynamodb.AttributeType.STRING,
};

/**
 * The single table (blueprints, resources, leases, slot locks, logs), laid out exactly as
 * `lambdas/store/schema.ts` says: key and index names are read from there, never repeated.
 */
export class DrydockTable extends Construct {
  public readonly table: dynamodb.Table;

  constructor(scope: Construct, id: string, props: DrydockTableProps = {}) {
    super(scope, id);
    const keyType = ATTRIBUTE_TYPES[KEY_ATTRIBUTE_TYPE];

    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: TABLE_KEYS.partitionKey, type: keyType },
      sortKey: { name: TABLE_KEYS.sortKey, type: keyType },
      // Load follows CI traffic (bursts at merge time, idle at night): on-demand.
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      timeToLiveAttribute: TTL_ATTRIBUTE,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });

    for (const [role, index] of Object.entries(GSI)) {
      this.table.addGlobalSecondaryIndex({
        indexName: index.name,
        partitionKey: { name: index.partitionKey, type: keyType },
        sortKey: { name: index.sortKey, type: keyType },
        projectionType:
          GSI_PROJECTION[role as keyof typeof GSI] === 'ALL'
            ? dynamodb.ProjectionType.ALL
            : dynamodb.ProjectionType.KEYS_ONLY,
      });
    }
  }

  /**
   * Exactly the item actions the store issues (STORE_DYNAMODB_ACTIONS: no Scan, no
   * BatchWriteItem, no streams, no table management) on the table and its indexes.
   * Acknowledges the one wildcard, `<table>/index/*`, on the grantee's principal only (where the
   * policy lands).
   */
  public grantItemAccess(grantee: iam.IGrantable): iam.Grant {
    const grant = iam.Grant.addToPrincipal({
      grantee,
      actions: [...STORE_DYNAMODB_ACTIONS],
      resourceArns: [this.table.tableArn, `${this.table.tableArn}/index/*`],
    });
    const principal = grantee.grantPrincipal;
    if (!Construct.isConstruct(principal)) return grant;
    acknowledgeWildcardResource(
      principal,
      `${this.table.tableArn}/index/*`,
      'Queries go through the table\'s own GSIs (byType, byStatus, byOwner, free); "/index/*" ranges only ' +
        "over this table's indexes, which lambdas/store/schema.ts defines.",
    );
    return grant;
  }
}
