import { RemovalPolicy } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { GSI, TABLE_KEYS, TTL_ATTRIBUTE } from '../../lambdas/store/schema.ts';
import { synth } from './support.ts';

describe('DrydockTable', () => {
  const { template } = synth();

  it('is the only table, keyed as the schema says', () => {
    template.resourceCountIs('AWS::DynamoDB::Table', 1);
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [
        { AttributeName: TABLE_KEYS.partitionKey, KeyType: 'HASH' },
        { AttributeName: TABLE_KEYS.sortKey, KeyType: 'RANGE' },
      ],
    });
  });

  it('declares every key attribute as a string', () => {
    const table = Object.values(template.findResources('AWS::DynamoDB::Table'))[0];
    const definitions = table?.Properties.AttributeDefinitions as {
      AttributeName: string;
      AttributeType: string;
    }[];
    const expected = [
      TABLE_KEYS.partitionKey,
      TABLE_KEYS.sortKey,
      ...Object.values(GSI).flatMap((index) => [index.partitionKey, index.sortKey]),
    ];
    expect(definitions.map((d) => d.AttributeName).sort()).toEqual([...expected].sort());
    expect(new Set(definitions.map((d) => d.AttributeType))).toEqual(new Set(['S']));
  });

  it('has both GSIs with projection ALL', () => {
    const { byType, byStatus } = GSI;
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      GlobalSecondaryIndexes: Match.arrayWith(
        [byType, byStatus].map((index) => ({
          IndexName: index.name,
          KeySchema: [
            { AttributeName: index.partitionKey, KeyType: 'HASH' },
            { AttributeName: index.sortKey, KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        })),
      ),
    });
    expect([byType, byStatus].map((index) => index.name)).toEqual(['GSI1', 'GSI2']);
  });

  it('has the listing GSI (byOwner) with keys only: status changes never write to it', () => {
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      GlobalSecondaryIndexes: Match.arrayWith([
        {
          IndexName: GSI.byOwner.name,
          KeySchema: [
            { AttributeName: GSI.byOwner.partitionKey, KeyType: 'HASH' },
            { AttributeName: GSI.byOwner.sortKey, KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'KEYS_ONLY' },
        },
      ]),
    });
    expect(Object.values(GSI).map((index) => index.name)).toEqual(['GSI1', 'GSI2', 'GSI3', 'GSI4']);
  });

  it('has the sparse free-candidate GSI (free) with projection ALL: the warm path reads whole items from one page', () => {
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      GlobalSecondaryIndexes: Match.arrayWith([
        {
          IndexName: GSI.free.name,
          KeySchema: [
            { AttributeName: GSI.free.partitionKey, KeyType: 'HASH' },
            { AttributeName: GSI.free.sortKey, KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        },
      ]),
    });
    const table = Object.values(template.findResources('AWS::DynamoDB::Table'))[0];
    expect(table?.Properties.GlobalSecondaryIndexes).toHaveLength(4);
  });

  it('is on-demand, point-in-time recoverable, encrypted, with TTL on the schema attribute', () => {
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true },
      TimeToLiveSpecification: { AttributeName: TTL_ATTRIBUTE, Enabled: true },
      ProvisionedThroughput: Match.absent(),
      TableName: Match.absent(),
    });
  });

  it('is retained when the stack lets go of it', () => {
    template.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
  });

  it('can be made disposable for throwaway deployments', () => {
    const disposable = synth({ tableRemovalPolicy: RemovalPolicy.DESTROY }).template;
    disposable.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Delete' });
  });
});
