/**
 * What each demo hub "sees": the traffic lab's generators, run on a lab clock in chunks as the replay needs them.
 * Every hub has benign device life (lab/devices.ts) all the time; an attacked hub also gets the kill chain below,
 * repeated every cycle and started at its own phase, so across the fleet several attack classes are live at once.
 * Nothing here reads ../shared/data: a fresh clone has every generator.
 */
import { Rng } from '../../shared/random.ts';
import { FrameList, PayloadPool } from '../../lab/wire.ts';
import { benignChatter } from '../../lab/devices.ts';
import { dosSynFlood } from '../../lab/attacks/dos.ts';
import { miraiAckFlood, miraiBruteforce, miraiHttpFlood, miraiUdpFlood } from '../../lab/attacks/mirai.ts';
import { mitmArpSpoofing } from '../../lab/attacks/mitm.ts';
import { scanHostPort, scanPortOs } from '../../lab/attacks/scan.ts';
import type { GenContext, TrafficGenerator } from '../../lab/attacks/types.ts';

export interface AttackKind {
  name: string;
  /** The class the corpus labels it with (what the hub should report). */
  cat: string;
  generate: TrafficGenerator;
}

export const ATTACKS: Record<string, AttackKind> = {
  'scan-hostport': { name: 'scan-hostport', cat: 'Scan', generate: scanHostPort },
  'scan-port-os': { name: 'scan-port-os', cat: 'Scan', generate: scanPortOs },
  'mirai-bruteforce': { name: 'mirai-bruteforce', cat: 'Mirai', generate: miraiBruteforce },
  'mirai-udp-flood': { name: 'mirai-udp-flood', cat: 'Mirai', generate: miraiUdpFlood },
  'mirai-ack-flood': { name: 'mirai-ack-flood', cat: 'Mirai', generate: miraiAckFlood },
  'mirai-http-flood': { name: 'mirai-http-flood', cat: 'Mirai', generate: miraiHttpFlood },
  'syn-flood': { name: 'syn-flood', cat: 'DoS', generate: dosSynFlood },
  'arp-spoof': { name: 'arp-spoof', cat: 'MITM ARP Spoofing', generate: mitmArpSpoofing },
};

export interface Episode {
  /** Lab seconds after the cycle's start. */
  at: number;
  attack: string;
  /** Flows' worth of traffic (the generator's `units`). */
  units: number;
}

/** One cycle of an attacked hub: recon, then the botnet moves in, then a flood, then someone in the middle. */
export const KILL_CHAIN: readonly Episode[] = [
  { at: 4, attack: 'scan-hostport', units: 120 },
  { at: 12, attack: 'scan-port-os', units: 60 },
  { at: 22, attack: 'mirai-bruteforce', units: 25 },
  { at: 36, attack: 'mirai-udp-flood', units: 60 },
  { at: 42, attack: 'mirai-ack-flood', units: 60 },
  { at: 48, attack: 'mirai-http-flood', units: 30 },
  { at: 62, attack: 'syn-flood', units: 200 },
  { at: 80, attack: 'arp-spoof', units: 30 },
];
export const CYCLE_S = 110;

export interface HubPlan {
  site: string;
  hub: string;
  /** Empty: benign-only hub. */
  episodes: readonly Episode[];
  /** Lab seconds the hub's cycle is shifted by (attacked hubs do not all run the same step at once). */
  phaseS: number;
  seed: number;
}

/** Sites × hubs; the first hub of every site is attacked (with its own phase), the others stay benign. */
export function fleetPlan(sites: number, hubsPerSite: number, seed: number): HubPlan[] {
  const plans: HubPlan[] = [];
  for (let s = 0; s < sites; s++) {
    for (let h = 0; h < hubsPerSite; h++) {
      const attacked = h === 0;
      plans.push({
        site: `site-${s + 1}`,
        hub: `hub-${h + 1}`,
        episodes: attacked ? KILL_CHAIN : [],
        // Site k starts its chain a k-th of the way into it: within a minute the fleet shows scans, Mirai and MITM.
        phaseS: attacked ? -((s * CYCLE_S) / Math.max(1, sites)) % CYCLE_S : 0,
        seed: (seed * 1009 + s * 31 + h) >>> 0,
      });
    }
  }
  return plans;
}

/** Benign sessions per lab second (benignChatter's mean gap is 0.3 s). */
const BENIGN_UNITS_PER_S = 1 / 0.3;
const CHUNK_S = 20;

/**
 * A hub's frames in time order, generated CHUNK_S lab seconds at a time. Frames a generator writes past the end of
 * its chunk (long sessions, SYN-ACK retransmissions) wait in the pending list until they are due.
 */
export class TrafficSource {
  private readonly ctx: GenContext & { sink: FrameList };
  private generatedUntil: number;
  private pendTimes: number[] = [];
  private pendFrames: Uint8Array[] = [];
  private at = 0;
  /** Attack episodes started so far, by attack name. */
  readonly started: Record<string, number> = {};

  constructor(private readonly plan: HubPlan, readonly startUs: number) {
    const rng = new Rng(plan.seed);
    this.ctx = { rng, pool: new PayloadPool(rng), sink: new FrameList() };
    this.generatedUntil = startUs;
  }

  /** Frames with time < untilUs (µs on the lab clock), in order. */
  take(untilUs: number): { frames: Uint8Array[]; times: number[] } {
    while (this.generatedUntil < untilUs + CHUNK_S * 1e6 / 2) this.generate();
    let end = this.at;
    while (end < this.pendTimes.length && this.pendTimes[end] < untilUs) end++;
    const out = { frames: this.pendFrames.slice(this.at, end), times: this.pendTimes.slice(this.at, end) };
    this.at = end;
    return out;
  }

  /** Adds frames made elsewhere (a replayed real capture); none may be earlier than what was already taken. */
  addFrames(list: FrameList): void {
    const sink = this.ctx.sink;
    for (let i = 0; i < list.length; i++) sink.push(list.times[i], list.frames[i]);
    this.merge();
  }

  private generate(): void {
    const from = this.generatedUntil;
    const to = from + CHUNK_S * 1e6;
    benignChatter(this.ctx, from, Math.round(CHUNK_S * BENIGN_UNITS_PER_S));
    const cycleUs = CYCLE_S * 1e6;
    for (const ep of this.plan.episodes) {
      // Episode times: startUs + phase + k·cycle + at, for every k that lands in [from, to).
      const base = this.startUs + (this.plan.phaseS + ep.at) * 1e6;
      let k = Math.ceil((from - base) / cycleUs);
      for (let t = base + k * cycleUs; t < to; k++, t = base + k * cycleUs) {
        if (t < from || t < this.startUs) continue;
        ATTACKS[ep.attack].generate(this.ctx, t, ep.units);
        this.started[ep.attack] = (this.started[ep.attack] ?? 0) + 1;
      }
    }
    this.merge();
    this.generatedUntil = to;
  }

  /** Merges the sink's new frames into what is still pending (new frames are never earlier than what was taken). */
  private merge(): void {
    const sink = this.ctx.sink;
    const order = sink.order();
    const times = this.pendTimes.slice(this.at);
    const frames = this.pendFrames.slice(this.at);
    const nt: number[] = [];
    const nf: Uint8Array[] = [];
    let i = 0;
    for (let j = 0; j < order.length; j++) {
      const t = sink.times[order[j]];
      while (i < times.length && times[i] <= t) {
        nt.push(times[i]);
        nf.push(frames[i++]);
      }
      nt.push(t);
      nf.push(sink.frames[order[j]]);
    }
    while (i < times.length) {
      nt.push(times[i]);
      nf.push(frames[i++]);
    }
    this.pendTimes = nt;
    this.pendFrames = nf;
    this.at = 0;
    sink.times = [];
    sink.frames = [];
  }
}
