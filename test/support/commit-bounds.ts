/**
 * "Never more leases on a host than its capacity at once", checked from history by the
 * contention tests: when each lease was surely active and when it may have ended, from the
 * store calls themselves (commitBounds), and the peak per resource from those (peakPerResource).
 */
import type { Lease } from '../../lambdas/core/model.ts';
import type { Store, TxWrite } from '../../lambdas/core/ports.ts';

/**
 * When each lease's activation had surely committed (its transaction answered) and when each
 * lease's end could have committed at the earliest (its transaction was sent). The times in the
 * items are stamped before a transaction is sent, and on a loaded machine a transaction may wait
 * for a connection (lambdas/store/connections.ts) well after its stamp: a lease stamped active a
 * little before the release of the host's previous lease was stamped can still have committed
 * after it (the slot lock orders them). Overlaps of these bounds happened for certain.
 */
export function commitBounds(): {
  wrap: (store: Store) => Store;
  activatedBy: Map<string, number>;
  endedFrom: Map<string, number>;
} {
  const activatedBy = new Map<string, number>();
  const endedFrom = new Map<string, number>();
  const wrap = (store: Store): Store =>
    new Proxy(store, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (prop !== 'transact' || typeof value !== 'function') return value;
        return async (writes: TxWrite[]) => {
          const sent = Date.now();
          await value.call(target, writes);
          const answered = Date.now();
          for (const w of writes) {
            if (w.op !== 'updateLease') continue;
            if (w.set.status === 'active') activatedBy.set(w.id, answered);
            else if (w.expect.status === 'active' && w.set.status && !endedFrom.has(w.id)) {
              endedFrom.set(w.id, sent);
            }
          }
        };
      },
    });
  return { wrap, activatedBy, endedFrom };
}

/** The most leases active on one resource at any instant, from activation/end commit bounds. */
export function peakPerResource(
  leases: Lease[],
  bounds: Pick<ReturnType<typeof commitBounds>, 'activatedBy' | 'endedFrom'>,
): Map<string, number> {
  const events = new Map<string, Array<{ at: number; delta: number }>>();
  for (const l of leases) {
    if (!l.resourceId || !l.activatedAt) continue;
    const stampedEnd = l.releasedAt ?? l.destroyedAt;
    const start = bounds.activatedBy.get(l.id) ?? Date.parse(l.activatedAt);
    const end = bounds.endedFrom.get(l.id) ?? (stampedEnd ? Date.parse(stampedEnd) : undefined);
    const list = events.get(l.resourceId) ?? [];
    list.push({ at: start, delta: 1 });
    list.push({ at: end ?? Number.POSITIVE_INFINITY, delta: -1 });
    events.set(l.resourceId, list);
  }
  const peaks = new Map<string, number>();
  for (const [id, list] of events) {
    // At the same millisecond an end comes first: the next lease's activation follows it.
    list.sort((a, b) => a.at - b.at || a.delta - b.delta);
    let now = 0;
    let peak = 0;
    for (const e of list) {
      now += e.delta;
      peak = Math.max(peak, now);
    }
    peaks.set(id, peak);
  }
  return peaks;
}
