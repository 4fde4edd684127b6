/**
 * End-to-end acknowledgements. MQTT's PUBACK only says the next hop has a message: a broker that loses its state
 * (mosquitto `persistence false`, or killed before its autosave) loses what it held while every hub believes it
 * delivered. So after each committed batch the aggregator publishes, per hub that had alerts in it, the hub's
 * delivery watermark on `{prefix}/{site}/{hub}/ack` (retained, QoS 1, `{"v":1,"site","hub","seq"}`): every alert
 * of that hub with seq ≤ `seq` is in the database. The hub keeps alerts in its offline queue until the watermark
 * passes them and sends them again when it stalls (edge/publisher.ts).
 *
 * The watermark is computed by the store from the rows themselves (Store.advanceAckMark), never from what this
 * process saw, so several instances in one shared-subscription group publish the same truth. Hubs number alerts
 * without gaps, and each alert carries `floor` (the oldest seq its hub still holds), which lets the watermark pass
 * numbers a hub skipped or gave up. Duplicates count too: a hub resending already stored alerts is answered.
 *
 * One round runs at a time, its hubs one after another (one database connection: the batch writes and the API
 * keep the rest of the pool); hubs touched meanwhile are coalesced into the next round, so a burst of batches
 * costs one watermark query per hub per round, not per batch.
 */
import { encodeAck, type Alert } from '../shared/payloads.ts';
import { DEFAULT_PREFIX, hubTopic } from '../shared/topics.ts';
import type { Store } from './store/store.ts';

export interface AckPublisherOptions {
  store: Pick<Store, 'advanceAckMark'>;
  /** Publishes retained at QoS 1; false when it could not be sent now (not connected). */
  publish: (topic: string, payload: string) => boolean;
  prefix?: string;
  log?: (line: string) => void;
}

export interface AckCounters {
  /** Watermark queries run. */
  rounds: number;
  published: number;
  errors: number;
}

interface Touched {
  site: string;
  hub: string;
  /** Highest `floor` seen in this round's alerts of the hub. */
  floor: number | undefined;
}

export class AckPublisher {
  readonly counters: AckCounters = { rounds: 0, published: 0, errors: 0 };
  private touched = new Map<string, Touched>();
  private running: Promise<void> | undefined;
  private closed = false;
  private readonly prefix: string;
  private readonly log: (line: string) => void;

  constructor(private readonly opts: AckPublisherOptions) {
    this.prefix = opts.prefix ?? DEFAULT_PREFIX;
    this.log = opts.log ?? ((l) => console.warn(l));
  }

  /** Alerts of a committed batch, duplicates included. */
  onCommitted(alerts: readonly Alert[]): void {
    if (this.closed || alerts.length === 0) return;
    for (const a of alerts) {
      const k = a.site + '/' + a.hub;
      const t = this.touched.get(k);
      if (!t) this.touched.set(k, { site: a.site, hub: a.hub, floor: a.floor });
      else if (a.floor !== undefined && (t.floor === undefined || a.floor > t.floor)) t.floor = a.floor;
    }
    this.running ??= this.run().finally(() => (this.running = undefined));
  }

  private async run(): Promise<void> {
    while (this.touched.size && !this.closed) {
      const round = [...this.touched.values()];
      this.touched = new Map();
      for (const t of round) await this.one(t);
    }
  }

  private async one(t: Touched): Promise<void> {
    try {
      this.counters.rounds++;
      const mark = await this.opts.store.advanceAckMark(t.site, t.hub, t.floor);
      if (mark === undefined || this.closed) return;
      const sent = this.opts.publish(hubTopic(t.site, t.hub, 'ack', this.prefix), encodeAck({ v: 1, site: t.site, hub: t.hub, seq: mark }));
      if (sent) this.counters.published++;
    } catch (e) {
      // The next batch of this hub tries again; the hub resends meanwhile if it waits too long.
      this.counters.errors++;
      this.log(`aggregator: ack watermark of ${t.site}/${t.hub}: ${(e as Error).message}`);
    }
  }

  /** Finishes the round under way (so a graceful stop publishes what it committed), then stops. */
  async close(): Promise<void> {
    await this.running;
    this.closed = true;
  }
}
