/**
 * The managed instances behind all three fake clients: one record per registration, with its
 * ping history, so a command's fate can be replayed against when the instance was reachable.
 *
 * SSM's view (DescribeInstanceInformation, docs.aws.amazon.com/systems-manager/latest/APIReference/API_InstanceInformation.html):
 * PingStatus is Online, ConnectionLost or Inactive; a deregistered instance is no longer listed.
 * EC2's view exists only for `i-…` ids (hybrid `mi-…` nodes are not EC2 instances).
 */
import type { Clock } from '../../../lambdas/core/ports.ts';

export type PingStatus = 'Online' | 'ConnectionLost' | 'Inactive';
export type Platform = 'Linux' | 'Windows';

export interface NewInstance {
  id: string;
  tags?: Record<string, string>;
  platform?: Platform;
  ping?: PingStatus;
}

/** One registration of a managed instance. Re-registering an id makes a new record. */
export class ManagedInstance {
  readonly id: string;
  readonly platform: Platform;
  readonly registeredAt: number;
  tags: Record<string, string>;
  deregisteredAt: number | undefined;
  /** Ping status from each `from` until the next entry's `from`; appended only at "now". */
  private readonly pings: Array<{ from: number; ping: PingStatus }>;

  constructor(spec: NewInstance, now: number) {
    this.id = spec.id;
    this.platform = spec.platform ?? 'Linux';
    this.tags = { ...(spec.tags ?? {}) };
    this.registeredAt = now;
    this.deregisteredAt = undefined;
    this.pings = [{ from: now, ping: spec.ping ?? 'Online' }];
  }

  get isEc2(): boolean {
    return this.id.startsWith('i-');
  }

  get ping(): PingStatus {
    return this.pings[this.pings.length - 1]!.ping;
  }

  get lastPingAt(): number {
    return this.pings[this.pings.length - 1]!.from;
  }

  setPing(ping: PingStatus, now: number): void {
    if (ping !== this.ping) this.pings.push({ from: now, ping });
  }

  /** Can the agent talk to the service at time `t` (t <= now)? */
  reachableAt(t: number): boolean {
    if (t < this.registeredAt) return false;
    if (this.deregisteredAt !== undefined && t >= this.deregisteredAt) return false;
    let ping: PingStatus = this.pings[0]!.ping;
    for (const entry of this.pings) {
      if (entry.from > t) break;
      ping = entry.ping;
    }
    return ping === 'Online';
  }

  /** The first moment in [from, until] at which the agent is reachable, if any. */
  firstReachable(from: number, until: number): number | undefined {
    if (from > until) return undefined;
    if (this.reachableAt(from)) return from;
    for (const entry of this.pings) {
      if (entry.from > from && entry.from <= until && this.reachableAt(entry.from)) {
        return entry.from;
      }
    }
    return undefined;
  }

  /**
   * Since when the service has not heard from the agent (undefined while it is reachable): the
   * start of the current offline stretch, or the deregistration. Reports the agent makes while
   * unreachable (a command finishing, output) reach the service only once it is back.
   */
  silentSince(now: number): number | undefined {
    if (this.deregisteredAt !== undefined) return this.offlineStretchStart(this.deregisteredAt);
    return this.reachableAt(now) ? undefined : this.offlineStretchStart(now);
  }

  /** When the offline stretch that contains `at` began (`at` itself if it was online before). */
  private offlineStretchStart(at: number): number {
    let start: number | undefined;
    for (const entry of this.pings) {
      if (entry.from >= at) break;
      start = entry.ping === 'Online' ? undefined : (start ?? entry.from);
    }
    return start ?? at;
  }
}

/** Live registrations by id, and every registration ever made (commands keep theirs). */
export class InstanceRegistry {
  private readonly live = new Map<string, ManagedInstance>();

  constructor(private readonly clock: Clock) {}

  add(spec: NewInstance): ManagedInstance {
    if (!/^(i|mi)-[0-9a-f]{8,17}$/.test(spec.id)) {
      throw new Error(
        `FakeAws.addInstance: '${spec.id}' is not a managed instance id (i-… or mi-… with 8–17 hex digits)`,
      );
    }
    if (this.live.has(spec.id)) {
      throw new Error(`FakeAws.addInstance: '${spec.id}' is already registered`);
    }
    const instance = new ManagedInstance(spec, this.clock.now());
    this.live.set(spec.id, instance);
    return instance;
  }

  /** The live registration, or undefined when unknown or deregistered. */
  get(id: string): ManagedInstance | undefined {
    return this.live.get(id);
  }

  require(id: string, operation: string): ManagedInstance {
    const instance = this.live.get(id);
    if (!instance) throw new Error(`FakeAws.${operation}: no registered instance '${id}'`);
    return instance;
  }

  deregister(id: string): void {
    const instance = this.require(id, 'deregister');
    instance.deregisteredAt = this.clock.now();
    this.live.delete(id);
  }

  /** Live registrations in registration order (the order the fake lists them in). */
  all(): ManagedInstance[] {
    return [...this.live.values()];
  }
}
