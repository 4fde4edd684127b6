/**
 * Fleet incidents from the stream of stored alerts, stats and status messages. Deterministic: time comes only
 * from the injected clock (the receive time, not the hubs' clocks, which may drift or replay an offline queue).
 *
 * - outbreak:    the same class from >= outbreakHubs distinct hubs within outbreakWindowMs
 * - burst:       one hub, >= burstAlerts verdicts of one class within burstWindowMs (an alert's `count` counts)
 * - hub-offline: a status "offline" (the hub's last will, or a clean goodbye); closed by "online"
 * - hub-silent:  a hub that sent stats before and none for silentMs while not known offline; closed by stats
 *
 * outbreak and burst close after quietMs without new evidence. Opening is reported at once; evidence that
 * arrives while an incident is open marks it dirty, and tick() reports it as "updated" (at most once a tick),
 * so a flood of alerts produces one update per tick, not one per alert.
 */
import { NORMAL_LABEL } from '../shared/labels.ts';
import type { Alert, Incident, Stats, Status } from '../shared/payloads.ts';
import { PAYLOAD_VERSION } from '../shared/payloads.ts';

export interface CorrelatorOptions {
  now: () => number;
  onIncident: (i: Incident) => void;
  outbreakHubs?: number;
  outbreakWindowMs?: number;
  burstAlerts?: number;
  burstWindowMs?: number;
  quietMs?: number;
  silentMs?: number;
}

interface Open {
  inc: Incident;
  lastEvidence: number;
  dirty: boolean;
  hubs: Set<string>;
  sites: Set<string>;
}

const MAX_LISTED = 4096;
const hubKey = (site: string, hub: string): string => `${site}/${hub}`;

export class Correlator {
  private readonly o: Required<Omit<CorrelatorOptions, 'now' | 'onIncident'>>;
  private readonly open = new Map<string, Open>();
  /** class → hub key → [last alert time, alerts since window start] */
  private readonly classHubs = new Map<string, Map<string, { last: number; n: number; site: string }>>();
  /** hub key + class → time-ordered [time, verdicts] within the burst window */
  private readonly bursts = new Map<string, { t: number[]; c: number[]; sum: number }>();
  private readonly hubs = new Map<string, { site: string; hub: string; statsAt?: number; state?: string }>();

  constructor(private readonly opts: CorrelatorOptions) {
    this.o = {
      outbreakHubs: opts.outbreakHubs ?? 3,
      outbreakWindowMs: opts.outbreakWindowMs ?? 60_000,
      burstAlerts: opts.burstAlerts ?? 100,
      burstWindowMs: opts.burstWindowMs ?? 10_000,
      quietMs: opts.quietMs ?? 120_000,
      silentMs: opts.silentMs ?? 90_000,
    };
  }

  /** Open incidents, newest first. */
  openIncidents(): Incident[] {
    return [...this.open.values()].map((o) => o.inc).sort((a, b) => b.openedAt - a.openedAt);
  }

  /** Takes back incidents that were open when the aggregator stopped, so they can still be closed. */
  restore(incidents: readonly Incident[]): void {
    const now = this.opts.now();
    for (const inc of incidents) {
      if (inc.state === 'closed') continue;
      const key = this.keyOf(inc);
      if (!key || this.open.has(key)) continue;
      this.open.set(key, { inc: { ...inc }, lastEvidence: now, dirty: false, hubs: new Set(inc.hubs), sites: new Set(inc.sites) });
    }
  }

  onAlerts(alerts: readonly Alert[]): void {
    const now = this.opts.now();
    for (const a of alerts) {
      if (a.class === NORMAL_LABEL) continue;
      this.outbreak(a, now);
      this.burst(a, now);
    }
  }

  onStatus(s: Status): void {
    const now = this.opts.now();
    const k = hubKey(s.site, s.hub);
    const h = this.hub(s.site, s.hub);
    h.state = s.state;
    const key = `hub-offline:${k}`;
    if (s.state === 'offline') {
      if (!this.open.has(key)) this.openIncident(key, 'hub-offline', undefined, s.site, k, 0, now, `hub ${k} went offline`);
      this.closeKey(`hub-silent:${k}`, now); // offline says more than silent
    } else {
      this.closeKey(key, now);
    }
  }

  onStats(s: Stats): void {
    const now = this.opts.now();
    const h = this.hub(s.site, s.hub);
    h.statsAt = now;
    this.closeKey(`hub-silent:${hubKey(s.site, s.hub)}`, now);
  }

  /** Reports dirty incidents as updated, closes quiet ones, opens hub-silent ones. Call about once a second. */
  tick(): void {
    const now = this.opts.now();
    for (const [key, o] of this.open) {
      if ((o.inc.kind === 'outbreak' || o.inc.kind === 'burst') && now - o.lastEvidence >= this.o.quietMs) {
        this.closeKey(key, now);
      } else if (o.dirty) {
        o.dirty = false;
        o.inc = { ...o.inc, state: 'updated', updatedAt: now, hubs: [...o.hubs].slice(0, MAX_LISTED), sites: [...o.sites].slice(0, MAX_LISTED) };
        o.inc.summary = this.summaryOf(o.inc);
        this.opts.onIncident(o.inc);
      }
    }
    for (const [k, h] of this.hubs) {
      if (h.statsAt === undefined || h.state === 'offline') continue;
      const key = `hub-silent:${k}`;
      if (now - h.statsAt >= this.o.silentMs && !this.open.has(key)) {
        this.openIncident(key, 'hub-silent', undefined, h.site, k, 0, now, '');
      }
    }
    // Forget window state nobody can use any more, so memory stays bounded by the active fleet.
    for (const [cls, m] of this.classHubs) {
      for (const [k, v] of m) if (now - v.last > this.o.outbreakWindowMs) m.delete(k);
      if (m.size === 0) this.classHubs.delete(cls);
    }
    for (const [k, b] of this.bursts) if (b.t.length === 0 || now - b.t[b.t.length - 1] > this.o.burstWindowMs) this.bursts.delete(k);
  }

  private hub(site: string, hub: string) {
    const k = hubKey(site, hub);
    let h = this.hubs.get(k);
    if (!h) this.hubs.set(k, (h = { site, hub }));
    return h;
  }

  private outbreak(a: Alert, now: number): void {
    const k = hubKey(a.site, a.hub);
    const key = `outbreak:${a.class}`;
    const o = this.open.get(key);
    if (o) {
      this.evidence(o, a.site, k, now);
      return;
    }
    let m = this.classHubs.get(a.class);
    if (!m) this.classHubs.set(a.class, (m = new Map()));
    const e = m.get(k);
    if (e && now - e.last <= this.o.outbreakWindowMs) (e.last = now, e.n++);
    else m.set(k, { last: now, n: 1, site: a.site });
    for (const [hk, v] of m) if (now - v.last > this.o.outbreakWindowMs) m.delete(hk);
    if (m.size < this.o.outbreakHubs) return;
    let n = 0;
    for (const v of m.values()) n += v.n;
    const inc = this.openIncident(key, 'outbreak', a.class, a.site, k, n, now, '');
    for (const [hk, v] of m) (inc.hubs.add(hk), inc.sites.add(v.site));
    inc.inc = { ...inc.inc, hubs: [...inc.hubs].slice(0, MAX_LISTED), sites: [...inc.sites].slice(0, MAX_LISTED) };
    inc.inc.summary = this.summaryOf(inc.inc);
    // openIncident already reported it with one hub; report the full picture at once.
    this.opts.onIncident(inc.inc);
    this.classHubs.delete(a.class);
  }

  private burst(a: Alert, now: number): void {
    const k = hubKey(a.site, a.hub);
    const key = `burst:${k}:${a.class}`;
    const o = this.open.get(key);
    if (o) {
      this.evidence(o, a.site, k, now, a.count);
      return;
    }
    let b = this.bursts.get(key);
    if (!b) this.bursts.set(key, (b = { t: [], c: [], sum: 0 }));
    b.t.push(now);
    b.c.push(a.count);
    b.sum += a.count;
    while (b.t.length && now - b.t[0] > this.o.burstWindowMs) {
      b.t.shift();
      b.sum -= b.c.shift()!;
    }
    if (b.sum >= this.o.burstAlerts) {
      this.openIncident(key, 'burst', a.class, a.site, k, b.sum, now, '');
      this.bursts.delete(key);
    }
  }

  private evidence(o: Open, site: string, k: string, now: number, n = 1): void {
    o.inc.alerts += n;
    o.lastEvidence = now;
    o.dirty = true;
    if (o.hubs.size < MAX_LISTED) o.hubs.add(k);
    if (o.sites.size < MAX_LISTED) o.sites.add(site);
  }

  private openIncident(key: string, kind: Incident['kind'], cls: string | undefined, site: string, k: string,
    alerts: number, now: number, summary: string): Open {
    const inc: Incident = {
      v: PAYLOAD_VERSION, id: `${key}:${now}`, kind, state: 'open', ...(cls ? { class: cls } : {}),
      sites: [site], hubs: [k], alerts, openedAt: now, updatedAt: now, summary,
    };
    inc.summary = summary || this.summaryOf(inc);
    const o: Open = { inc, lastEvidence: now, dirty: false, hubs: new Set([k]), sites: new Set([site]) };
    this.open.set(key, o);
    if (kind !== 'outbreak') this.opts.onIncident(inc);
    return o;
  }

  private closeKey(key: string, now: number): void {
    const o = this.open.get(key);
    if (!o) return;
    this.open.delete(key);
    const inc: Incident = {
      ...o.inc, state: 'closed', updatedAt: now, closedAt: now,
      hubs: [...o.hubs].slice(0, MAX_LISTED), sites: [...o.sites].slice(0, MAX_LISTED),
    };
    inc.summary = this.summaryOf(inc);
    this.opts.onIncident(inc);
  }

  private keyOf(inc: Incident): string | undefined {
    if (inc.kind === 'outbreak' && inc.class) return `outbreak:${inc.class}`;
    if (inc.kind === 'burst' && inc.class && inc.hubs[0]) return `burst:${inc.hubs[0]}:${inc.class}`;
    if ((inc.kind === 'hub-offline' || inc.kind === 'hub-silent') && inc.hubs[0]) return `${inc.kind}:${inc.hubs[0]}`;
    return undefined;
  }

  private summaryOf(i: Incident): string {
    const s = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`;
    const text = (() => {
      switch (i.kind) {
        case 'outbreak':
          return `${i.class} from ${s(i.hubs.length, 'hub')} at ${s(i.sites.length, 'site')}, ${s(i.alerts, 'alert')}`;
        case 'burst':
          return `burst of ${i.class} on ${i.hubs[0]}: ${s(i.alerts, 'verdict')}`;
        case 'hub-offline':
          return `hub ${i.hubs[0]} ${i.state === 'closed' ? 'back online' : 'offline'}`;
        case 'hub-silent':
          return `hub ${i.hubs[0]} ${i.state === 'closed' ? 'reporting again' : `sent no stats for ${Math.round(this.o.silentMs / 1000)} s`}`;
      }
    })();
    return text.slice(0, 256);
  }
}
