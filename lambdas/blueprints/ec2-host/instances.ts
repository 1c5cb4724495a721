/** Looking up and terminating a resource's EC2 instance (DescribeInstances, TerminateInstances). */
import {
  DescribeInstancesCommand,
  type EC2Client,
  type Instance,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { errorName } from '../ssm/errors.ts';
import { translateEc2Error } from './launch.ts';

/** States in which an instance is gone or going: its binding and pool slot may be freed. */
export const GONE_STATES = new Set(['shutting-down', 'terminated']);

/**
 * One instance by id, or undefined when EC2 does not know it: right after RunInstances that means
 * "not visible yet" (DescribeInstances is eventually consistent); long after, "gone".
 */
export async function describeById(
  ec2: EC2Client,
  instanceId: string,
): Promise<Instance | undefined> {
  try {
    const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
    return out.Reservations?.[0]?.Instances?.[0];
  } catch (err) {
    if (errorName(err) === 'InvalidInstanceID.NotFound') return undefined;
    throw translateEc2Error(err, 'DescribeInstances', instanceId);
  }
}

export function stateOf(instance: Instance | undefined): string {
  return instance?.State?.Name ?? 'unknown';
}

/**
 * TerminateInstances. `notGone`: ids not yet shutting-down or terminated (normally none: EC2
 * answers with the state the call moved them to). `unknown`: EC2 does not know an id, which right
 * after a launch means "not visible yet" and long after means "terminated and forgotten"; the
 * caller knows which.
 */
export async function terminate(
  ec2: EC2Client,
  instanceIds: string[],
): Promise<{ notGone: string[]; unknown: boolean }> {
  if (instanceIds.length === 0) return { notGone: [], unknown: false };
  try {
    const out = await ec2.send(new TerminateInstancesCommand({ InstanceIds: instanceIds }));
    const notGone = (out.TerminatingInstances ?? [])
      .filter((t) => !GONE_STATES.has(t.CurrentState?.Name ?? ''))
      .map((t) => t.InstanceId ?? '');
    return { notGone, unknown: false };
  } catch (err) {
    if (errorName(err) === 'InvalidInstanceID.NotFound')
      return { notGone: instanceIds, unknown: true };
    throw translateEc2Error(err, 'TerminateInstances', instanceIds.join(', '));
  }
}
