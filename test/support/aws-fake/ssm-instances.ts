/**
 * DescribeInstanceInformation over the registry, following
 * docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeInstanceInformation.html and
 * API_InstanceInformationStringFilter.html: filters are ANDed, the values of one filter ORed;
 * keys InstanceIds, PingStatus, PlatformTypes, ResourceType, AgentVersion, `tag-key` and
 * `tag:<key>` (the instance's tags: EC2 tags for `i-…`, SSM tags for `mi-…`); MaxResults 5–50.
 * Deregistered instances are not listed; Inactive and ConnectionLost ones are.
 */
import type {
  DescribeInstanceInformationCommandInput,
  DescribeInstanceInformationCommandOutput,
  InstanceInformation,
  InstanceInformationStringFilter,
} from '@aws-sdk/client-ssm';
import { ssmErrors } from './errors.ts';
import type { InstanceRegistry, ManagedInstance } from './instances.ts';
import { paginate } from './pagination.ts';

const OPERATION = 'DescribeInstanceInformation';
const PLAIN_KEYS = ['InstanceIds', 'PingStatus', 'PlatformTypes', 'ResourceType', 'AgentVersion'];
export const AGENT_VERSION = '3.3.1142.0';

function resourceType(instance: ManagedInstance): 'EC2Instance' | 'ManagedInstance' {
  return instance.isEc2 ? 'EC2Instance' : 'ManagedInstance';
}

function matches(instance: ManagedInstance, filter: InstanceInformationStringFilter): boolean {
  const key = filter.Key ?? '';
  const values = filter.Values ?? [];
  if (key.startsWith('tag:')) {
    const tag = instance.tags[key.slice('tag:'.length)];
    return tag !== undefined && values.includes(tag);
  }
  switch (key) {
    case 'tag-key':
      return values.some((value) => value in instance.tags);
    case 'InstanceIds':
      return values.includes(instance.id);
    case 'PingStatus':
      return values.includes(instance.ping);
    case 'PlatformTypes':
      return values.includes(instance.platform);
    case 'ResourceType':
      return values.includes(resourceType(instance));
    case 'AgentVersion':
      return values.includes(AGENT_VERSION);
    default:
      throw ssmErrors.invalidFilterKey(`The filter key '${key}' is not valid.`);
  }
}

function checkFilter(filter: InstanceInformationStringFilter): void {
  const key = filter.Key ?? '';
  if (!(PLAIN_KEYS.includes(key) || key === 'tag-key' || /^tag:.+/.test(key))) {
    throw ssmErrors.invalidFilterKey(`The filter key '${key}' is not valid.`);
  }
  if (!filter.Values || filter.Values.length === 0 || filter.Values.length > 100) {
    throw ssmErrors.validation(`Filter '${key}' needs 1 to 100 values.`);
  }
}

export function describeInstance(instance: ManagedInstance): InstanceInformation {
  return {
    InstanceId: instance.id,
    PingStatus: instance.ping,
    LastPingDateTime: new Date(instance.lastPingAt),
    AgentVersion: AGENT_VERSION,
    IsLatestVersion: true,
    PlatformType: instance.platform,
    PlatformName:
      instance.platform === 'Linux' ? 'Amazon Linux' : 'Microsoft Windows Server 2022 Datacenter',
    PlatformVersion: instance.platform === 'Linux' ? '2023' : '10.0.20348',
    ResourceType: resourceType(instance),
    RegistrationDate: instance.isEc2 ? undefined : new Date(instance.registeredAt),
    ComputerName: `${instance.id}.fake.internal`,
    IPAddress: '10.0.0.1',
    SourceId: instance.id,
    SourceType: instance.isEc2 ? 'AWS::EC2::Instance' : 'AWS::SSM::ManagedInstance',
  };
}

export function describeInstanceInformation(
  registry: InstanceRegistry,
  input: DescribeInstanceInformationCommandInput,
  defaultPageSize: number,
): DescribeInstanceInformationCommandOutput {
  const filters: InstanceInformationStringFilter[] = [
    ...(input.Filters ?? []),
    // The older list form (key/valueSet) means the same for the keys it allows.
    ...(input.InstanceInformationFilterList ?? []).map((f) => ({ Key: f.key, Values: f.valueSet })),
  ];
  for (const filter of filters) checkFilter(filter);
  const pageSize = input.MaxResults ?? defaultPageSize;
  if (pageSize < 5 || pageSize > 50) {
    throw ssmErrors.validation(
      `1 validation error detected: Value '${pageSize}' at 'maxResults' failed to satisfy constraint: Member must have value between 5 and 50`,
    );
  }
  const selected = registry.all().filter((i) => filters.every((f) => matches(i, f)));
  const { page, nextToken } = paginate(
    OPERATION,
    selected,
    pageSize,
    input.NextToken,
    ssmErrors.invalidNextToken,
  );
  return {
    InstanceInformationList: page.map(describeInstance),
    NextToken: nextToken,
    $metadata: { httpStatusCode: 200 },
  };
}
