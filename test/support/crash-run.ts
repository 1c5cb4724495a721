/**
 * Running the crash scenarios (test/engine/crash*.test.ts). `startCrashRun` builds one fresh
 * system whose worker-side engine crashes right after its N-th write (crash.ts): a delivery the
 * crash killed is delivered again to a fresh process, a sweep that crashed runs again at the next
 * tick, and `recover` is the last sweep, for what only the sweep can find (a message that died
 * with its sender). `crashAtEveryWrite` runs a scenario clean, checks that it crossed the writes
 * it names, then once per write point with a crash right after that write, and hands each end
 * state to the scenario's own checks. `expectNothingLeftBehind` is the end-state check they share.
 */
import { expect } from 'vitest';
import { hostTimeline, syntheticScopes } from '../../lambdas/blueprints/synthetic/index.ts';
import type { BlueprintType } from '../../lambdas/core/blueprint.ts';
import type { Engine, EngineSettings } from '../../lambdas/core/engine.ts';
import { InjectedCrash } from '../../lambdas/core/errors.ts';
import {
  type CommandRecord,
  LEASE_STATUSES,
  LIVE_COMMAND_STATUSES,
} from '../../lambdas/core/model.ts';
import type { SweepReport } from '../../lambdas/core/sweep.ts';
import { runSweep } from '../../lambdas/core/use-cases.ts';
import { CrashPlan, crashingQueue, crashingStore } from './crash.ts';
import { type TestSystem, testSystem } from './system.ts';

export interface CrashRun {
  sys: TestSystem;
  plan: CrashPlan;
  /** The workers' engine: its store and queue crash after the planned write. */
  crashing: Engine;
  /** A crashed update is delivered again, to a fresh process; any other error fails the test. */
  onError: (err: unknown) => 'throw' | 'redeliver';
  /**
   * Deliver through the crashing engine until `until` holds or the queue is empty. With
   * `sweepsWhileWaiting`, the (plain) sweep runs every minute of the virtual clock meanwhile.
   */
  drain(until?: () => Promise<boolean>): Promise<void>;
  /** One sweep on the crashing engine; crashed, it runs again (the next tick). */
  sweep(): Promise<SweepReport>;
  /** Two minutes on, a plain sweep and everything it sends, delivered. */
  recover(): Promise<SweepReport>;
  /**
   * Slot locks freed by the sweeps the scenario did not ask for (those while leases wait, and
   * the recovery): each was orphaned by a crash, and must be 0.
   */
  strayLocksFreed: number;
}

export interface CrashRunOptions {
  /**
   * The sweep runs every minute (of the virtual clock) while leases wait: a crash between a
   * reclaim and its message leaves a released resource only the sweep re-drives.
   */
  sweepsWhileWaiting?: boolean;
  // biome-ignore lint/suspicious/noExplicitAny: plug-ins of any config type, as the registry takes them.
  plugins?: ReadonlyArray<BlueprintType<any>>;
  /** Engine settings other than the test defaults. */
  settings?: Partial<EngineSettings>;
}

export async function startCrashRun(
  crashAfter: number,
  options: CrashRunOptions = {},
): Promise<CrashRun> {
  const sys = await testSystem(
    options.settings ?? {},
    options.plugins ? { plugins: options.plugins } : {},
  );
  const plan = new CrashPlan();
  plan.crashAfter = crashAfter;
  const crashing = sys.engineWith({
    store: crashingStore(sys.store, plan),
    queue: crashingQueue(sys.queue, plan),
  });
  const onError = (err: unknown) => {
    if (!(err instanceof InjectedCrash)) return 'throw' as const;
    plan.revive(); // the message is delivered again to a fresh process
    return 'redeliver' as const;
  };
  // The minute of sweeps counts from the first drain, when the leases start to wait.
  let lastSweep: number | undefined;
  const run: CrashRun = {
    sys,
    plan,
    crashing,
    onError,
    async drain(until) {
      lastSweep ??= sys.clock.now();
      await sys.queue.drain(crashing, {
        onError,
        ...(until || options.sweepsWhileWaiting
          ? {
              until: async () => {
                if (options.sweepsWhileWaiting && sys.clock.now() - (lastSweep ?? 0) >= 60_000) {
                  lastSweep = sys.clock.now();
                  run.strayLocksFreed += (await runSweep(sys.engine)).locksFreed;
                }
                return until ? until() : false;
              },
            }
          : {}),
      });
    },
    async sweep() {
      for (;;) {
        try {
          return await runSweep(crashing);
        } catch (err) {
          if (onError(err) === 'throw') throw err;
        }
      }
    },
    async recover() {
      sys.clock.advance(120_000);
      const report = await runSweep(sys.engine);
      run.strayLocksFreed += report.locksFreed;
      await sys.queue.drain(sys.engine);
      return report;
    },
    strayLocksFreed: 0,
  };
  return run;
}

/**
 * Run the scenario clean, then once per write point of that clean run with a crash right after
 * it, checking each end state with `check(result, where)`.
 */
export async function crashAtEveryWrite<R extends { crash: CrashRun }>(
  run: (crashAfter: number) => Promise<R>,
  scenario: {
    /** Writes the clean run must contain, so the scenario provably crosses those paths. */
    mustCross: string[];
  },
  check: (result: R, where: string) => Promise<void>,
): Promise<void> {
  const clean = await run(0);
  const points = clean.crash.plan.log;
  expect(points.length).toBeGreaterThan(8);
  for (const path of scenario.mustCross) {
    expect(
      points.some((p) => p.includes(path)),
      `${path} in ${points.join(' ')}`,
    ).toBe(true);
  }
  await check(clean, 'clean run');

  for (let k = 1; k <= points.length; k++) {
    const result = await run(k);
    // Deliveries follow a clock that also runs in real time, so a run's k-th write may differ
    // from the clean run's: name the one this run crashed after.
    const crashedAfter =
      result.crash.plan.log[k - 1] ?? `nothing: the run made ${result.crash.plan.writes} writes`;
    const where = `crash after write ${k} of ${points.length} (${crashedAfter})`;
    expect(result.crash.plan.crashed, where).toBe(true);
    await check(result, where);
  }
}

/**
 * The end state every crash scenario must reach: no lease still in flight, every lease ended
 * with a reason, every command ended with its output or why it did not, exactly the warm
 * resources' pool slots held (none orphaned for the sweep to free), and their hosts the only ones
 * alive.
 */
export async function expectNothingLeftBehind(
  { sys, strayLocksFreed }: CrashRun,
  where: string,
  left: { warm: string[]; leaseIds: string[]; commands?: CommandRecord[] },
): Promise<void> {
  for (const status of LEASE_STATUSES.filter((s) => s !== 'destroyed')) {
    expect((await sys.store.listLeasesByStatus(status)).items, `${where}: ${status}`).toEqual([]);
  }
  for (const id of left.leaseIds) {
    const lease = await sys.store.getLease(id);
    expect(lease?.status, where).toBe('destroyed');
    expect(lease?.endReason, `${where}: lease ${id} ended without a reason`).toBeTruthy();
  }
  for (const c of left.commands ?? []) {
    const now = await sys.store.getCommand(c.leaseId, c.id);
    expect(LIVE_COMMAND_STATUSES as readonly string[], where).not.toContain(now?.status);
    const ended = `${where}: command ${c.id} ${now?.status}`;
    if (now?.status === 'finished') expect(now.result, `${ended} without its result`).toBeDefined();
    else expect(now?.error, `${ended} without a reason`).toBeTruthy();
  }
  const locks = (await sys.store.listSlotLocks()).items.map((l) => l.ownerId);
  expect(locks.sort(), where).toEqual([...left.warm].sort());
  expect(strayLocksFreed, `${where}: locks only a sweep freed`).toBe(0);
  const bill = hostTimeline(await sys.store.listRecords(syntheticScopes.hosts('pool')));
  expect(bill.alive.sort(), where).toEqual(left.warm.map((id) => `synthetic-${id}`).sort());
}
