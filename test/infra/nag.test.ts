import { type App, Validations } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { describe, expect, it, vi } from 'vitest';
import { newApp, newStack } from './support.ts';

/**
 * cdk-nag 3 is a policy-validation plugin, not an Aspect: findings are not annotations, and
 * acknowledgements are `Validations.of(scope).acknowledge(...)` recorded as construct
 * metadata. These tests run the AwsSolutions pack the way bin/app.ts does.
 */

interface Finding {
  rule: string;
  path: string;
  severity: string;
}

function findings(app: App): Finding[] {
  const report = new AwsSolutionsChecks().validateScope(app);
  return report.violations.flatMap((v) =>
    v.violatingResources.map((r) => ({
      rule: v.ruleName,
      path: (r as { constructPath?: string }).constructPath ?? '',
      severity: v.severity ?? 'error',
    })),
  );
}

interface Acknowledgement {
  rule: string;
  path: string;
  reason: string;
}

/**
 * Acknowledgements aws-cdk-lib makes itself, not ours, so the checks on ours leave them out:
 * Stack acknowledges CloudFormation's W3010 ("literal AZs limit portability") on itself
 * whenever a construct reads `stack.availabilityZones` (ec2.Vpc always does: HostNetwork), and
 * every ec2.FlowLog acknowledges F3002/F3003 for its DestinationOptions casing.
 */
const CDK_ACKNOWLEDGEMENTS: { rule: string; reason: string }[] = [
  {
    rule: 'CloudFormation-Validate::W3010',
    reason: 'Literal AZs in template are the result of accessing stack.availabilityZones',
  },
  ...['F3002', 'F3003'].map((id) => ({
    rule: `CloudFormation-Validate::${id}`,
    reason: 'AWS::EC2::FlowLog DestinationOptions accepts properties in camelCase',
  })),
];

const isCdkAcknowledgement = (ack: Acknowledgement) =>
  CDK_ACKNOWLEDGEMENTS.some((cdk) => ack.rule === cdk.rule && ack.reason.startsWith(cdk.reason));

function acknowledgements(root: IConstruct): Acknowledgement[] {
  return root.node
    .findAll()
    .flatMap((construct) =>
      construct.node.metadata
        .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
        .flatMap((entry) =>
          Object.entries(entry.data as Record<string, string>).map(([id, reason]) => ({
            rule: id.replace(/^annotation::/i, ''),
            path: construct.node.path,
            reason,
          })),
        ),
    )
    .filter((ack) => !isCdkAcknowledgement(ack));
}

const covers = (ack: Acknowledgement, finding: Finding) =>
  ack.rule === finding.rule &&
  (finding.path === ack.path || finding.path.startsWith(`${ack.path}/`));

describe('cdk-nag AwsSolutions', () => {
  const app = newApp();
  const stack = newStack({}, app);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));

  it('synthesizes with the pack registered (an unacknowledged error would throw)', () => {
    expect(() => app.synth()).not.toThrow();
  });

  it('leaves no unacknowledged error or warning', () => {
    expect(findings(app)).toEqual([]);
  });

  it('stays clean when synthesized for a concrete account and region', () => {
    // ARNs then carry literal account/region instead of pseudo parameters, and so do the
    // finding ids the acknowledgements must match.
    const pinned = newApp();
    Template.fromStack(newStack({ env: { account: '111122223333', region: 'eu-west-1' } }, pinned));
    expect(findings(pinned)).toEqual([]);
  });

  it("stays clean in the operator's VPC, and without the EC2 host fleet", () => {
    const own = newApp();
    own.node.setContext('drydock:vpcId', 'vpc-0123456789abcdef0');
    own.node.setContext('drydock:subnetIds', 'subnet-0aaaaaaaaaaaaaaaa,subnet-0bbbbbbbbbbbbbbbb');
    Template.fromStack(newStack({}, own));
    expect(findings(own)).toEqual([]);
    const without = newApp();
    Template.fromStack(newStack({ ec2Hosts: false }, without));
    expect(findings(without)).toEqual([]);
  });

  it('acknowledges only findings that exist, each on the construct that owns it', () => {
    // Build the same stack with acknowledgements switched off to see every raw finding.
    const acknowledge = vi.spyOn(Validations.prototype, 'acknowledge').mockImplementation(() => {});
    const raw = (() => {
      const bare = newApp();
      Template.fromStack(newStack({}, bare));
      return findings(bare);
    })();
    acknowledge.mockRestore();

    const acks = acknowledgements(app);
    expect(raw.length).toBeGreaterThan(0);
    for (const finding of raw) {
      expect(
        acks.some((ack) => covers(ack, finding)),
        `${finding.rule} at ${finding.path}`,
      ).toBe(true);
    }
    for (const ack of acks) {
      expect(
        raw.some((finding) => covers(ack, finding)),
        `stale: ${ack.rule} at ${ack.path}`,
      ).toBe(true);
    }
  });

  it('gives every acknowledgement a real reason', () => {
    const acks = acknowledgements(app);
    expect(acks.length).toBeGreaterThan(0);
    for (const ack of acks) {
      expect(ack.reason.length, `${ack.rule} at ${ack.path}`).toBeGreaterThan(60);
    }
  });

  it('acknowledges no rule wholesale: IAM findings are acknowledged one resource or policy at a time', () => {
    for (const ack of acknowledgements(app)) {
      if (ack.rule.startsWith('AwsSolutions-IAM'))
        expect(ack.rule).toMatch(/\[(Resource|Policy)::.+\]$/);
      expect(ack.path).not.toBe(stack.node.path);
    }
  });

  it('leaves no CDK warning or error annotations (deprecated APIs, bad configuration)', () => {
    const annotations = Annotations.fromStack(stack);
    expect(annotations.findError('*', Match.anyValue())).toEqual([]);
    expect(annotations.findWarning('*', Match.anyValue())).toEqual([]);
    expect(annotations.findError('*', Match.stringLikeRegexp('AwsSolutions-.*'))).toEqual([]);
  });
});
