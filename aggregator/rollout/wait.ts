/**
 * Waiting on hubs through the aggregator's tables: a hub runs a bundle when its stored status names the version
 * (the aggregator writes it from the hub's retained status); it refused one when its `bundlesRejected` stats
 * counter rose after the publish (the hub publishes stats at once when it refuses a downlink).
 */
import type { HubRef, HubView, RolloutStore } from './store.ts';

export const hubName = (h: HubRef): string => `${h.site}/${h.hub}`;

export interface WaitResult {
  confirmed: string[];
  refused: { hub: string; error: string | null }[];
  /** Did not report the version before the deadline (or before waiting stopped on a refusal). */
  pending: string[];
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/** Each hub's bundlesRejected counter now, to compare with after a publish. */
export async function rejectedCounts(store: RolloutStore): Promise<Map<string, number>> {
  return new Map((await store.hubs()).map((h) => [hubName(h), h.bundlesRejected]));
}

export interface WaitOptions {
  timeoutMs: number;
  pollMs: number;
  now: () => number;
  /** Stop as soon as one hub refused (a canary that refuses decides the rollout). */
  stopOnRefusal?: boolean;
  onConfirmed?: (hub: string) => void;
}

/** Polls the hubs table until every hub runs `version` or refused it, or the time is up. */
export async function waitForVersion(
  store: RolloutStore, hubs: readonly HubRef[], version: string, before: ReadonlyMap<string, number>, o: WaitOptions,
): Promise<WaitResult> {
  const pending = new Set(hubs.map(hubName));
  const res: WaitResult = { confirmed: [], refused: [], pending: [] };
  const deadline = o.now() + o.timeoutMs;
  for (;;) {
    const views = new Map<string, HubView>((await store.hubs()).map((h) => [hubName(h), h]));
    for (const name of [...pending]) {
      const v = views.get(name);
      if (v?.bundle === version) {
        pending.delete(name);
        res.confirmed.push(name);
        o.onConfirmed?.(name);
      } else if (v && v.bundlesRejected > (before.get(name) ?? 0)) {
        pending.delete(name);
        res.refused.push({ hub: name, error: v.lastError });
      }
    }
    if (pending.size === 0 || (o.stopOnRefusal && res.refused.length) || o.now() >= deadline) break;
    await sleep(Math.min(o.pollMs, deadline - o.now()));
  }
  res.pending = [...pending];
  return res;
}
