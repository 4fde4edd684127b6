/**
 * All the hub's watchers behind one call per packet batch and one per finished flow. Each packet is decoded once
 * (PacketView) and shown to every packet watcher; the ARP watcher keeps its own batch loop (ARP is rare and it
 * predates the view). Findings come back in arrival order; each watcher's memory is fixed at construction.
 */
import type { FlowRecord, PacketBatch } from '../../shared/packets.ts';
import type { Evidence } from '../../shared/payloads.ts';
import type { BundleManifest } from '../../shared/manifest.ts';
import { mergeWatcherSettings, parseWatcherSettings, type WatcherSettings } from '../../shared/watcher-settings.ts';
import { ArpWatcher, type ArpWatcherOptions } from './arp.ts';
import { BruteForceWatcher, type BruteForceOptions } from './brute-force.ts';
import { type Finding, MITM, SCAN } from './finding.ts';
import { FloodWatcher, type FloodOptions } from './flood.ts';
import { PacketView } from './packet-view.ts';
import { PropagationWatcher, type PropagationOptions } from './propagation.ts';
import { RelayWatcher, type RelayOptions } from './relay.ts';
import { ScanWatcher, type ScanOptions } from './scan.ts';

export type { Finding } from './finding.ts';

/**
 * Settings of every watcher (hub options `watchers`, `--watchers FILE` as JSON, or the bundle manifest's
 * `watchers`); `false` turns one off. shared/watcher-settings.ts checks what arrives from outside.
 */
export interface WatcherOptions {
  arp?: ArpWatcherOptions | false;
  scan?: ScanOptions | false;
  propagation?: PropagationOptions | false;
  bruteForce?: BruteForceOptions | false;
  flood?: FloodOptions | false;
  relay?: RelayOptions | false;
}

// The shared schema (what a manifest or --watchers may say) and the watchers' own options must name the same
// settings with the same types: a setting added on one side only fails the typecheck here.
type Same<X, Y> = [X] extends [Y] ? ([Y] extends [X] ? true : false) : false;
type Settings<K extends keyof WatcherSettings> = Required<Exclude<WatcherSettings[K], false | undefined>>;
const SAME_SETTINGS: [
  Same<Settings<'arp'>, Required<ArpWatcherOptions>>, Same<Settings<'scan'>, Required<ScanOptions>>,
  Same<Settings<'propagation'>, Required<PropagationOptions>>, Same<Settings<'bruteForce'>, Required<BruteForceOptions>>,
  Same<Settings<'flood'>, Required<FloodOptions>>, Same<Settings<'relay'>, Required<RelayOptions>>,
] = [true, true, true, true, true, true];
void SAME_SETTINGS;

/** The bundle's watcher settings, checked (a bundle naming a setting this hub does not know is refused). */
export function bundleWatcherSettings(m: Pick<BundleManifest, 'watchers'>): WatcherSettings | undefined {
  return m.watchers === undefined ? undefined : parseWatcherSettings(m.watchers, 'bundle manifest "watchers"', 'BAD_BUNDLE');
}

/** What a hub runs with: the bundle's settings, with the hub's own (`--watchers`) on top, setting by setting. */
export function hubWatcherOptions(m: Pick<BundleManifest, 'watchers'>, own: WatcherOptions | undefined): WatcherOptions | undefined {
  return mergeWatcherSettings(bundleWatcherSettings(m), own as WatcherSettings | undefined) as WatcherOptions | undefined;
}

/** The ARP watcher's evidence as a finding: sweeps are scans, everything else is spoofing. */
export function arpFinding(e: Evidence, tUs: number): Finding {
  return { class: e.kind === 'arp-sweep' ? SCAN : MITM, host: e.ip, role: e.kind === 'arp-sweep' ? 'source' : 'victim', evidence: e, tUs };
}

export class Watchers {
  // Replaced only by configure(), between batches.
  arp: ArpWatcher | undefined;
  scan: ScanWatcher | undefined;
  propagation: PropagationWatcher | undefined;
  bruteForce: BruteForceWatcher | undefined;
  flood: FloodWatcher | undefined;
  relay: RelayWatcher | undefined;
  /** Each watcher's settings as last applied (JSON), so configure() rebuilds only the ones that changed. */
  private applied: Partial<Record<keyof WatcherOptions, string>> = {};
  private readonly view = new PacketView();
  private readonly out: Finding[] = [];
  packets = 0;
  flows = 0;
  /** Capture time of the latest packet (µs). */
  lastUs = 0;

  constructor(o: WatcherOptions = {}) {
    this.configure(o);
  }

  /**
   * Applies new settings (a downlinked bundle's): a watcher whose settings changed is built anew and starts
   * learning from nothing; the others keep their state (the ARP watcher its bindings, the scan watcher its
   * counts), so a bundle update does not blind the hub to an attack already under way.
   */
  configure(o: WatcherOptions = {}): void {
    const changed = (k: keyof WatcherOptions): boolean => {
      const json = JSON.stringify(o[k] ?? null);
      if (this.applied[k] === json) return false;
      this.applied[k] = json;
      return true;
    };
    if (changed('arp')) this.arp = o.arp === false ? undefined : new ArpWatcher(o.arp);
    if (changed('scan')) this.scan = o.scan === false ? undefined : new ScanWatcher(o.scan);
    if (changed('propagation')) this.propagation = o.propagation === false ? undefined : new PropagationWatcher(o.propagation);
    if (changed('bruteForce')) this.bruteForce = o.bruteForce === false ? undefined : new BruteForceWatcher(o.bruteForce);
    if (changed('flood')) this.flood = o.flood === false ? undefined : new FloodWatcher(o.flood);
    if (changed('relay')) this.relay = o.relay === false ? undefined : new RelayWatcher(o.relay);
    if (this.flood && this.arp) {
      const arp = this.arp;
      this.flood.owner = (ip) => arp.macOf(ip);
    }
  }

  /** Findings of one packet batch; the returned array is reused by the next call. */
  push(b: PacketBatch): Finding[] {
    const out = this.out;
    out.length = 0;
    this.packets += b.count;
    if (b.count > 0) this.lastUs = b.timestampsUs[b.count - 1];
    if (this.arp) {
      const ev = this.arp.push(b);
      for (const e of ev) out.push(arpFinding(e, b.timestampsUs[b.count - 1]));
    }
    const v = this.view;
    const { scan, propagation, flood, relay } = this;
    for (let i = 0; i < b.count; i++) {
      if (!v.read(b, i)) continue;
      scan?.packet(v, out);
      propagation?.packet(v, out);
      flood?.packet(v, out);
      relay?.packet(v, out);
    }
    return out;
  }

  /** Findings from one finished flow (brute force); the returned array is reused by the next call. */
  flow(f: FlowRecord): Finding[] {
    const out = this.out;
    out.length = 0;
    this.flows++;
    this.bruteForce?.flow(f, out);
    return out;
  }

  stats() {
    return {
      packets: this.packets,
      flows: this.flows,
      arp: this.arp?.stats(),
      scan: this.scan?.stats(),
      propagation: this.propagation?.stats(),
      bruteForce: this.bruteForce?.stats(),
      flood: this.flood?.stats(),
      relay: this.relay?.stats(),
    };
  }

  /** The highest value each rule's measure reached: run over benign traffic, the worst case the defaults must clear. */
  peaks() {
    return {
      arp: this.arp?.peak, scan: this.scan?.peak, propagation: this.propagation?.peak, bruteForce: this.bruteForce && { minute: this.bruteForce.peak, burst: this.bruteForce.peakBurst },
      flood: this.flood?.peak, relay: this.relay?.peak,
    };
  }
}
