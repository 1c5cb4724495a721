/**
 * SSM managed instances: which instances a tag filter or id list names, and whether one can run
 * commands (registered, agent Online, Linux). Shared by host plug-ins; knows no pool semantics.
 */
import {
  DescribeInstanceInformationCommand,
  type InstanceInformation,
  type InstanceInformationStringFilter,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import { translateSsmError } from './errors.ts';

export interface ManagedInstance {
  instanceId: string;
  /** `Online`, `ConnectionLost`, `Inactive`. */
  pingStatus: string;
  /** `Linux`, `Windows`, `MacOS`. */
  platformType: string;
  /** When the agent last reported (ms since the epoch), if SSM says. */
  lastPingAtMs?: number;
}

export type InstanceSelector = { tags: Record<string, string> } | { ids: string[] };

const tagFilters = (tags: Record<string, string>): InstanceInformationStringFilter[] =>
  Object.entries(tags).map(([key, value]) => ({ Key: `tag:${key}`, Values: [value] }));

function filtersOf(
  selector: InstanceSelector,
  requiredTags: Record<string, string>,
): InstanceInformationStringFilter[] {
  // Filters are ANDed: an instance must also carry every required tag (one filter per key).
  return 'ids' in selector
    ? [{ Key: 'InstanceIds', Values: selector.ids }, ...tagFilters(requiredTags)]
    : tagFilters({ ...selector.tags, ...requiredTags });
}

function toManaged(info: InstanceInformation): ManagedInstance | undefined {
  if (!info.InstanceId) return undefined;
  return {
    instanceId: info.InstanceId,
    pingStatus: info.PingStatus ?? 'Unknown',
    platformType: info.PlatformType ?? 'Unknown',
    ...(info.LastPingDateTime ? { lastPingAtMs: info.LastPingDateTime.getTime() } : {}),
  };
}

/**
 * Every registered instance the selector names and that carries every `requiredTags` tag,
 * whatever its ping status (callers report the offline ones by name), sorted by id so choices
 * are stable.
 */
export async function describeInstances(
  ssm: SSMClient,
  selector: InstanceSelector,
  requiredTags: Record<string, string> = {},
): Promise<ManagedInstance[]> {
  const found: ManagedInstance[] = [];
  let token: string | undefined;
  const what = 'ids' in selector ? selector.ids.join(',') : 'pool';
  for (let page = 0; page < 20; page++) {
    const out = await ssm
      .send(
        new DescribeInstanceInformationCommand({
          Filters: filtersOf(selector, requiredTags),
          MaxResults: 50,
          ...(token === undefined ? {} : { NextToken: token }),
        }),
      )
      .catch((err) => {
        throw translateSsmError(err, 'DescribeInstanceInformation', what);
      });
    for (const info of out?.InstanceInformationList ?? []) {
      const managed = toManaged(info);
      if (managed) found.push(managed);
    }
    token = out?.NextToken;
    if (!token) break;
  }
  return found.sort((a, b) => a.instanceId.localeCompare(b.instanceId));
}

/** One instance as SSM knows it, or undefined when it is not registered (or deregistered). */
export async function describeInstance(
  ssm: SSMClient,
  instanceId: string,
): Promise<ManagedInstance | undefined> {
  const [found] = await describeInstances(ssm, { ids: [instanceId] });
  return found?.instanceId === instanceId ? found : undefined;
}

/** Why an instance cannot run commands now, or undefined when it can. */
export function whyNotUsable(instance: ManagedInstance): string | undefined {
  if (instance.platformType !== 'Linux') {
    return `instance ${instance.instanceId} runs ${instance.platformType}, not Linux`;
  }
  if (instance.pingStatus !== 'Online') {
    return `instance ${instance.instanceId} is ${instance.pingStatus} (its SSM agent is not online)`;
  }
  return undefined;
}
