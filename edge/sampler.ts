/**
 * Normal samples (hub --sample-normal N): about one Normal verdict in N leaves the hub with its raw features on
 * `{prefix}/{site}/{hub}/sample` (QoS 0), so the fleet's own normal traffic can be trained on (#15).
 *
 * - Random, not every Nth: the gap to the next sample is drawn from the geometric distribution of a 1-in-N coin
 *   with crypto randomness. A device that knew the hub sent every 100th Normal flow could make sure its own
 *   flows are never among them (or always are, to steer the training data); a random pick gives it no handle.
 *   One draw per sample, not per flow: the hot path only counts down.
 * - Within a byte budget: a token bucket holding `capacity` bytes, refilled at (budget − capacity) per minute, so
 *   no 60-second span carries more than `budget` bytes whatever the traffic does. A sample's cost is its payload,
 *   its topic and 5 bytes of MQTT header (a QoS 0 PUBLISH). Past the budget samples are dropped and counted.
 * - Best effort: never queued. A sample made while the broker is away is dropped and counted; alerts keep the
 *   offline queue to themselves.
 * - Privacy of the flow's addresses: `hash` (default) writes `h:` + the first 16 hex digits of HMAC-SHA256 under a
 *   secret salt kept in the hub's state folder (`sample-salt`): stable across this hub's restarts, so one device's
 *   samples still group, but not linkable across hubs and not reversible by trying all 2^32 addresses without the
 *   salt; `drop` leaves `flow` out; `keep` sends them as they are.
 */
import { createHmac, randomBytes, randomFillSync } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IdsError } from '../shared/errors.ts';
import { encodeSample, type FlowKey } from '../shared/payloads.ts';

export type SamplePrivacy = 'hash' | 'drop' | 'keep';
export const SAMPLE_PRIVACY: readonly SamplePrivacy[] = ['hash', 'drop', 'keep'];
export const DEFAULT_SAMPLE_BUDGET = 65_536;
/** Smallest budget: twice the bucket that holds one sample of the widest vector (512 features ≈ 3.1 kB). */
export const MIN_SAMPLE_BUDGET = 8192;
/** Bytes that may go at once: an eighth of the budget, but at least one widest sample (and at most half). */
const bucketFor = (budget: number): number => Math.floor(Math.min(budget / 2, Math.max(budget / 8, 4096)));
/** MQTT fixed header (1), remaining length (≤ 2 for a sample) and the topic's length field (2). */
const MQTT_OVERHEAD = 5;
const SALT_FILE = 'sample-salt';

export interface SamplerOptions {
  /** About one Normal verdict in this many is sampled (≥ 1). */
  every: number;
  /** Bytes per minute (payload + topic + MQTT header). Default DEFAULT_SAMPLE_BUDGET. */
  budgetBytesPerMin?: number;
  privacy?: SamplePrivacy;
  /** Key for `hash`; loadSalt() gives a hub's. */
  salt?: Buffer;
  hub: string;
  site: string;
  /** The sample topic (its length counts against the budget). */
  topic: string;
  /** ms clock of the bucket (tests drive it). Default performance.now. */
  now?: () => number;
  /** Random 32-bit words (tests). Default crypto. */
  random?: () => number;
}

/** What the hub hands over for one sampled flow; `features` is the encoded raw vector. */
export interface SampleInput {
  model: string;
  confidence: number;
  flow: FlowKey;
  features: string;
}

/** Crypto random 32-bit words, drawn 256 at a time. */
function cryptoWords(): () => number {
  const pool = new Uint32Array(256);
  let at = pool.length;
  return () => {
    if (at === pool.length) {
      randomFillSync(pool);
      at = 0;
    }
    return pool[at++];
  };
}

/**
 * The hub's salt for hashed addresses: `STATE/sample-salt` (32 random bytes, hex), made on first use. Without a
 * state folder the salt lives as long as the process (`persistent: false`).
 */
export function loadSalt(stateDir: string | undefined, log: (l: string) => void): { salt: Buffer; persistent: boolean } {
  if (!stateDir) return { salt: randomBytes(32), persistent: false };
  const file = join(stateDir, SALT_FILE);
  if (existsSync(file)) {
    const text = readFileSync(file, 'utf8').trim();
    if (/^[0-9a-f]{64}$/.test(text)) return { salt: Buffer.from(text, 'hex'), persistent: true };
    log(`${file} is not 64 hex digits: a new salt is made (hashed addresses in samples change from here on)`);
  }
  const salt = randomBytes(32);
  try {
    writeFileSync(file, salt.toString('hex') + '\n', { mode: 0o600 });
  } catch (e) {
    throw new IdsError('BAD_OPTION', `cannot write the sample salt ${file}: ${(e as Error).message}`);
  }
  return { salt, persistent: true };
}

export class NormalSampler {
  /** Samples published. */
  samples = 0;
  /** Samples made but not sent: over the budget, or the broker away. */
  dropped = 0;
  /** Bytes charged to the budget so far (the samples handed to the client). */
  bytes = 0;
  readonly every: number;
  readonly budget: number;
  readonly capacity: number;
  readonly privacy: SamplePrivacy;
  private readonly refillPerMs: number;
  private tokens: number;
  private last: number;
  private countdown: number;
  /** Cost of the last sample built: the next one is about as large. */
  private lastCost = 0;
  private readonly lnMiss: number;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly salt: Buffer;
  private readonly overhead: number;

  constructor(private readonly o: SamplerOptions) {
    if (!(Number.isInteger(o.every) && o.every >= 1)) throw new IdsError('BAD_OPTION', `--sample-normal ${o.every} must be an integer ≥ 1`);
    const budget = o.budgetBytesPerMin ?? DEFAULT_SAMPLE_BUDGET;
    if (!(Number.isFinite(budget) && budget >= MIN_SAMPLE_BUDGET)) {
      throw new IdsError('BAD_OPTION', `--sample-budget ${budget} must be ≥ ${MIN_SAMPLE_BUDGET} bytes per minute`);
    }
    const privacy = o.privacy ?? 'hash';
    if (!SAMPLE_PRIVACY.includes(privacy)) throw new IdsError('BAD_OPTION', `--sample-privacy must be ${SAMPLE_PRIVACY.join(', ')}, got "${privacy}"`);
    this.every = o.every;
    this.budget = budget;
    this.privacy = privacy;
    // Part of the budget may go at once (after a quiet spell); the rest is paced over the minute.
    this.capacity = bucketFor(budget);
    this.refillPerMs = (budget - this.capacity) / 60_000;
    this.now = o.now ?? (() => performance.now());
    this.random = o.random ?? cryptoWords();
    this.salt = o.salt ?? randomBytes(32);
    this.tokens = this.capacity;
    this.last = this.now();
    this.lnMiss = Math.log1p(-1 / o.every);
    this.overhead = Buffer.byteLength(o.topic) + MQTT_OVERHEAD;
    this.countdown = this.gap();
  }

  /** Flows until the next sample: geometric with p = 1/N, so each Normal flow is sampled with probability 1/N. */
  private gap(): number {
    if (this.every === 1) return 1;
    const u = (this.random() + 1) / 4294967296; // (0, 1]
    return Math.max(1, Math.ceil(Math.log(u) / this.lnMiss));
  }

  /** Called for each Normal verdict: true when this one is sampled. */
  pick(): boolean {
    if (--this.countdown > 0) return false;
    this.countdown = this.gap();
    return true;
  }

  /**
   * Whether a picked flow may become a sample: false (and counted as dropped) when the broker is away (samples
   * are never queued) or the budget has no room for a sample as large as the last one. Asked before anything is
   * built, so a flood over the budget costs a comparison per pick.
   */
  admit(connected: boolean): boolean {
    if (connected && this.refill() >= this.lastCost) return true;
    this.dropped++;
    return false;
  }

  /**
   * The payload of one sampled flow, charged to the budget; undefined (counted) if it is larger than the room
   * left, or if the schema refuses it (a model that output NaN): a sample never stops the hub.
   */
  take(s: SampleInput): string | undefined {
    let payload: string;
    try {
      payload = this.encode(s);
    } catch {
      this.dropped++;
      return undefined;
    }
    const cost = Buffer.byteLength(payload) + this.overhead;
    this.lastCost = cost;
    if (this.refill() < cost) {
      this.dropped++;
      return undefined;
    }
    this.tokens -= cost;
    this.samples++;
    this.bytes += cost;
    return payload;
  }

  private encode(s: SampleInput): string {
    return encodeSample({
      v: 1,
      hub: this.o.hub,
      site: this.o.site,
      id: this.randomId(),
      ts: Date.now(),
      model: s.model,
      class: 'Normal',
      confidence: s.confidence,
      ...(this.privacy === 'drop' ? {} : { flow: this.privacy === 'keep' ? s.flow : this.hashed(s.flow) }),
      features: s.features,
    });
  }

  /** A sample take() passed that the client then could not send: counted as dropped (its bytes stay charged). */
  unsent(): void {
    this.samples--;
    this.dropped++;
  }

  /** Tops the bucket up for the time since the last call; returns the bytes it holds. */
  private refill(): number {
    const t = this.now();
    this.tokens = Math.min(this.capacity, this.tokens + (t - this.last) * this.refillPerMs);
    this.last = t;
    return this.tokens;
  }

  private randomId(): string {
    return this.random().toString(16).padStart(8, '0') + this.random().toString(16).padStart(8, '0');
  }

  /** `h:` + 16 hex of HMAC-SHA256(salt, address); an empty address stays empty. */
  hash(addr: string): string {
    return addr === '' ? '' : 'h:' + createHmac('sha256', this.salt).update(addr).digest('hex').slice(0, 16);
  }

  private hashed(f: FlowKey): FlowKey {
    return { src: this.hash(f.src), dst: this.hash(f.dst), sport: f.sport, dport: f.dport, proto: f.proto };
  }
}
