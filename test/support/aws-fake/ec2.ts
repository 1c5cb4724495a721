/**
 * The EC2 view of the `i-…` instances: DescribeInstances and DescribeTags with the filters a
 * pool lookup uses (docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstances.html,
 * API_DescribeTags.html). Filters are ANDed, values ORed. Hybrid `mi-…` nodes are not EC2
 * instances, so they never appear here; a deregistered instance counts as gone.
 * State: Inactive (agent stopped reporting, e.g. the instance is stopped) shows as `stopped`.
 */
import type {
  DescribeInstancesCommandInput,
  DescribeInstancesCommandOutput,
  DescribeTagsCommandInput,
  DescribeTagsCommandOutput,
  Filter,
  Instance,
  TagDescription,
} from '@aws-sdk/client-ec2';
import { ec2Errors } from './errors.ts';
import type { Fleet } from './fleet.ts';
import type { InstanceRegistry, ManagedInstance } from './instances.ts';
import { paginate } from './pagination.ts';

function stateName(instance: ManagedInstance): 'running' | 'stopped' {
  return instance.ping === 'Inactive' ? 'stopped' : 'running';
}

function tagList(instance: ManagedInstance) {
  return Object.entries(instance.tags).map(([Key, Value]) => ({ Key, Value }));
}

function checkPageSize(maxResults: number | undefined): number {
  const size = maxResults ?? 1000;
  if (size < 5 || size > 1000) {
    throw ec2Errors.invalidParameterValue(`Value ( ${size} ) for parameter maxResults is invalid.`);
  }
  return size;
}

function ec2Instances(registry: InstanceRegistry): ManagedInstance[] {
  return registry.all().filter((i) => i.isEc2);
}

function describe(instance: ManagedInstance): Instance {
  const running = stateName(instance) === 'running';
  return {
    InstanceId: instance.id,
    State: { Name: stateName(instance), Code: running ? 16 : 80 },
    Tags: tagList(instance),
    PlatformDetails: instance.platform === 'Linux' ? 'Linux/UNIX' : 'Windows',
    ...(instance.platform === 'Windows' ? { Platform: 'Windows' as const } : {}),
    LaunchTime: new Date(instance.registeredAt),
  };
}

/** One instance as DescribeInstances filters and lists it (managed or launched by the fleet). */
interface Ec2View {
  id: string;
  tags: Record<string, string>;
  state: string;
  instance: Instance;
}

function viewMatches(view: Ec2View, filter: Filter): boolean {
  const name = filter.Name ?? '';
  const values = filter.Values ?? [];
  if (name.startsWith('tag:')) {
    const tag = view.tags[name.slice('tag:'.length)];
    return tag !== undefined && values.includes(tag);
  }
  switch (name) {
    case 'tag-key':
      return values.some((v) => v in view.tags);
    case 'instance-id':
      return values.includes(view.id);
    case 'instance-state-name':
      return values.includes(view.state);
    default:
      throw ec2Errors.invalidParameterValue(`The filter '${name}' is invalid`);
  }
}

export function describeInstances(
  registry: InstanceRegistry,
  input: DescribeInstancesCommandInput,
  fleet?: Fleet,
): DescribeInstancesCommandOutput {
  // A launched instance registers with SSM too: EC2 lists it once, from the fleet.
  const known: Ec2View[] = [
    ...ec2Instances(registry)
      .filter((i) => !fleet?.has(i.id))
      .map((i) => ({ id: i.id, tags: i.tags, state: stateName(i), instance: describe(i) })),
    ...(fleet?.all() ?? [])
      .filter((i) => fleet?.visible(i))
      .map((i) => ({
        id: i.id,
        tags: i.tags,
        state: fleet?.stateOf(i) ?? 'pending',
        instance: fleet?.describe(i) as Instance,
      })),
  ];
  const ids = input.InstanceIds ?? [];
  const missing = ids.filter((id) => !known.some((i) => i.id === id));
  if (missing.length > 0) throw ec2Errors.instanceNotFound(missing);
  if (ids.length > 0 && input.MaxResults !== undefined) {
    throw ec2Errors.invalidParameterValue(
      'The parameter instancesSet cannot be used with the parameter maxResults',
    );
  }
  const selected = known
    .filter((i) => ids.length === 0 || ids.includes(i.id))
    .filter((i) => (input.Filters ?? []).every((f) => viewMatches(i, f)));
  const { page, nextToken } = paginate(
    'DescribeInstances',
    selected,
    checkPageSize(input.MaxResults),
    input.NextToken,
    ec2Errors.invalidNextToken,
  );
  return {
    Reservations: page.map((i) => ({
      ReservationId: `r-${i.id.slice(2)}`,
      Instances: [i.instance],
    })),
    NextToken: nextToken,
    $metadata: { httpStatusCode: 200 },
  };
}

function tagMatches(tag: TagDescription, filter: Filter): boolean {
  const values = filter.Values ?? [];
  switch (filter.Name) {
    case 'key':
      return values.includes(tag.Key ?? '');
    case 'value':
      return values.includes(tag.Value ?? '');
    case 'resource-id':
      return values.includes(tag.ResourceId ?? '');
    case 'resource-type':
      return values.includes('instance');
    default:
      throw ec2Errors.invalidParameterValue(`The filter '${filter.Name}' is invalid`);
  }
}

export function describeTags(
  registry: InstanceRegistry,
  input: DescribeTagsCommandInput,
): DescribeTagsCommandOutput {
  const tags: TagDescription[] = ec2Instances(registry).flatMap((i) =>
    tagList(i).map((t) => ({ ...t, ResourceId: i.id, ResourceType: 'instance' as const })),
  );
  const selected = tags.filter((t) => (input.Filters ?? []).every((f) => tagMatches(t, f)));
  const { page, nextToken } = paginate(
    'DescribeTags',
    selected,
    checkPageSize(input.MaxResults),
    input.NextToken,
    ec2Errors.invalidNextToken,
  );
  return { Tags: page, NextToken: nextToken, $metadata: { httpStatusCode: 200 } };
}
