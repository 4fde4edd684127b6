/**
 * MQTT payload codecs: the JSON every hub publishes and the aggregator consumes, as zod schemas with their
 * TypeScript types. `decode*` never throws on bad input from the network: it returns an error string instead.
 */
import { z } from 'zod';
import { MAX_FEATURES_B64 } from './feature-vector.ts';

export const PAYLOAD_VERSION = 1;
/** Payloads past this size are refused before parsing: nothing a hub sends legitimately comes near it. */
export const MAX_PAYLOAD_BYTES = 64 * 1024;

/**
 * Bounds that the stores can hold, so that a payload the schema accepts can always be stored (a value the
 * database refuses would otherwise stall ingestion): PostgreSQL INTEGER columns end at 2^31 - 1, BIGINT and
 * JavaScript's exact integers at 2^53 - 1, and PostgreSQL TEXT cannot hold U+0000.
 */
export const MAX_INT32 = 2 ** 31 - 1;
/** Timestamps: from the epoch (a hub without a real-time clock starts there) to 2200-01-01, ms. */
export const MAX_TS = Date.UTC(2200, 0, 1);

/** Text without NUL (PostgreSQL TEXT refuses it, and no field has a use for it). */
const text = (max: number) => z.string().max(max).regex(/^[^\u0000]*$/, 'must not contain NUL (U+0000)');
const id = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/);
const shortText = text(256);
const prob = z.number().min(0).max(1);
const timestamp = z.number().int().min(0).max(MAX_TS);
/** A non-negative counter (stats and incidents; stored as JSON or BIGINT). */
const counter = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
/** A raw feature vector: float32 little-endian, base64 (shared/feature-vector.ts); whole values only. */
const featureVector = z.string().max(MAX_FEATURES_B64).regex(/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/, 'must be base64')
  .refine((b) => (Math.floor(b.length / 4) * 3 - (b.endsWith('==') ? 2 : b.endsWith('=') ? 1 : 0)) % 4 === 0, 'must hold whole float32 values');

export const FlowKeySchema = z.object({
  src: text(64),
  dst: text(64),
  sport: z.number().int().min(0).max(65535),
  dport: z.number().int().min(0).max(65535),
  proto: z.number().int().min(0).max(255),
});
export type FlowKey = z.infer<typeof FlowKeySchema>;

/**
 * Rule-based evidence raised beside the model by the hub's watchers (edge/watchers/): ARP below the IP layer, and
 * host behaviour that no single flow shows (sweeps, brute force, floods, reflection). `ip` is the host the finding
 * is about (the scanner, the victim, the claimed address). The counting fields are optional so that evidence from
 * hubs that predate them still validates.
 */
export const EVIDENCE_KINDS = [
  'arp-ip-conflict', 'arp-unsolicited-reply', 'arp-gateway-claim',
  'arp-mac-multi-ip', 'arp-binding-flip', 'arp-gratuitous-storm', 'arp-relay', 'arp-sweep',
  'scan-sweep', 'scan-echo-sweep', 'scan-odd-flags', 'scan-service-probe', 'propagation', 'brute-force',
  'syn-flood', 'synack-reflection', 'udp-amplification', 'udp-flood', 'icmp-flood', 'ack-flood',
] as const;

export const EvidenceSchema = z.object({
  kind: z.enum(EVIDENCE_KINDS),
  ip: text(64),
  macs: z.array(text(32)).max(16),
  detail: shortText,
  /** Events behind the finding (probes, sessions, packets) within the window. */
  count: counter.optional(),
  /** The window the count was taken over (ms). */
  windowMs: counter.optional(),
  /** Distinct hosts and ports involved (estimates for large numbers). */
  hosts: counter.optional(),
  ports: counter.optional(),
  /** A few of the targets (or sources), "ip" or "ip:port". */
  targets: z.array(text(64)).max(16).optional(),
});
export type Evidence = z.infer<typeof EvidenceSchema>;

export const AlertSchema = z.object({
  v: z.literal(PAYLOAD_VERSION),
  hub: id,
  site: id,
  /** Per-hub, strictly increasing, survives restarts: consumers remove QoS 1 duplicates by (hub, seq). */
  seq: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  /** Milliseconds since the epoch, when the verdict was made. */
  ts: timestamp,
  class: shortText,
  confidence: prob,
  probabilities: z.record(shortText, prob).optional(),
  flow: FlowKeySchema,
  model: shortText,
  /** How many verdicts of this class and flow key this message stands for (bursts are summarised). */
  count: z.number().int().min(1).max(MAX_INT32).default(1),
  source: z.enum(['model', 'rule']).default('model'),
  evidence: EvidenceSchema.optional(),
  /**
   * Added by the hub's publisher when it sends: the seq of the oldest alert it still holds unconfirmed. Every
   * alert of this hub with a lower seq is committed or given up, so the ack watermark may pass numbers never used.
   */
  floor: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  /**
   * The flow's raw features in the order of the running bundle's `preprocessing.features` (hub option
   * --attach-features): what an operator's mark turns into a training row. Absent on rule alerts about a host.
   */
  features: featureVector.optional(),
});
export type Alert = z.infer<typeof AlertSchema>;
export type AlertInput = z.input<typeof AlertSchema>;

export const StatsSchema = z.object({
  v: z.literal(PAYLOAD_VERSION),
  hub: id,
  site: id,
  ts: timestamp,
  intervalMs: counter,
  flowsPerSec: z.number().min(0),
  flows: counter,
  classCounts: z.record(shortText, counter),
  latencyMs: z.object({ p50: z.number().min(0), p95: z.number().min(0), p99: z.number().min(0) }),
  queueDepth: counter,
  dropped: counter,
  malformed: counter,
  offlineQueued: counter.default(0),
  /** Inputs that failed (a corrupt capture, an unreadable file): counted, the hub keeps running. */
  inputErrors: counter.default(0),
  /** Downlinked bundles refused (bad signature, hash or model); the running bundle stayed. */
  bundlesRejected: counter.default(0),
  /**
   * Model verdicts of MITM ARP spoofing withheld because the hub's ARP watcher saw no spoofing within the
   * corroboration window (hub option --mitm-needs-arp): counted in classCounts, not alerted.
   */
  unconfirmed: counter.default(0),
  /** The most recent such error, for operators. */
  lastError: shortText.optional(),
  /** The hub's health as in its status (absent from hubs that predate it): degraded while a part cannot work. */
  state: z.enum(['online', 'degraded']).optional(),
  /** Why the hub is degraded. */
  reason: shortText.optional(),
  /** Normal flows published on the sample channel since start (hub option --sample-normal). */
  samples: counter.optional(),
  /** Samples picked but not sent: over the byte budget, or the broker away (samples are never queued). */
  samplesDropped: counter.optional(),
});
export type Stats = z.infer<typeof StatsSchema>;

export const StatusSchema = z.object({
  v: z.literal(PAYLOAD_VERSION),
  hub: id,
  site: id,
  ts: timestamp,
  /** degraded: connected, but an input, the offline queue or the state folder cannot do its job (see reason). */
  state: z.enum(['online', 'degraded', 'offline']),
  /** Why the hub is degraded. */
  reason: shortText.optional(),
  bundle: shortText.optional(),
  /** sha256 (hex) of the raw Ed25519 public key the hub verifies bundles with. */
  keyFingerprint: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  /** True when that key is the committed demo key (whose private half is public): not for real use. */
  demoKey: z.boolean().optional(),
  /** Signed release number of the running bundle (manifest model.release). */
  release: counter.optional(),
  /** The running bundle's feature order (preprocessing.features): names the values of `features` in alerts and samples. */
  features: z.array(text(64)).max(512).optional(),
});
export type Status = z.infer<typeof StatusSchema>;

export const IncidentSchema = z.object({
  v: z.literal(PAYLOAD_VERSION),
  id: shortText,
  kind: z.enum(['outbreak', 'burst', 'hub-offline', 'hub-silent']),
  state: z.enum(['open', 'updated', 'closed']),
  class: shortText.optional(),
  sites: z.array(id).max(4096),
  hubs: z.array(shortText).max(4096),
  alerts: counter,
  openedAt: timestamp,
  updatedAt: timestamp,
  closedAt: timestamp.optional(),
  summary: shortText,
});
export type Incident = z.infer<typeof IncidentSchema>;

/**
 * End-to-end delivery watermark, published retained at QoS 1 by the aggregator on `{prefix}/{site}/{hub}/ack`:
 * every alert of that hub with seq ≤ `seq` is committed to the database (or was given up by the hub, see
 * Alert.floor). The hub drops alerts from its offline queue only once this passes them.
 */
export const AckSchema = z.object({
  v: z.literal(PAYLOAD_VERSION),
  site: id,
  hub: id,
  seq: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
});
export type Ack = z.infer<typeof AckSchema>;

/**
 * A Normal verdict sampled at random (hub option --sample-normal N: about one flow in N, within a byte budget),
 * published at QoS 0 on `{prefix}/{site}/{hub}/sample`: the fleet's own normal traffic as training data. `id` is
 * random per sample (duplicates are removed by (site, hub, id)). With the hub's privacy setting the flow's
 * addresses are hashed (`h:` + 16 hex) or left out.
 */
export const SampleSchema = z.object({
  v: z.literal(PAYLOAD_VERSION),
  hub: id,
  site: id,
  id: z.string().regex(/^[0-9a-f]{16}$/),
  ts: timestamp,
  model: shortText,
  class: shortText,
  confidence: prob,
  flow: FlowKeySchema.optional(),
  features: featureVector,
});
export type Sample = z.infer<typeof SampleSchema>;

/** Why a payload was refused: too large, not JSON, a version other than ours, or any other schema violation. */
export type DecodeFailure = 'too-large' | 'not-json' | 'bad-version' | 'schema';
export type Decoded<T> = { ok: true; value: T } | { ok: false; error: string; failure: DecodeFailure };

/**
 * A version mismatch is a `v` that is present, not ours, and a plain value (a number, string, boolean or null):
 * a payload without `v`, or with an object in it, is simply not one of ours and counts as a schema violation.
 */
function foreignVersion(json: unknown): boolean {
  if (typeof json !== 'object' || json === null || Array.isArray(json) || !Object.hasOwn(json, 'v')) return false;
  const v = (json as { v: unknown }).v;
  return v !== PAYLOAD_VERSION && (v === null || typeof v !== 'object');
}

function decodeWith<T>(schema: z.ZodType<T>, payload: Uint8Array | string): Decoded<T> {
  const size = typeof payload === 'string' ? payload.length : payload.byteLength;
  if (size > MAX_PAYLOAD_BYTES) return { ok: false, error: `payload of ${size} bytes exceeds ${MAX_PAYLOAD_BYTES}`, failure: 'too-large' };
  let json: unknown;
  try {
    json = JSON.parse(typeof payload === 'string' ? payload : Buffer.from(payload).toString('utf8'));
  } catch (e) {
    return { ok: false, error: `not JSON: ${(e as Error).message}`, failure: 'not-json' };
  }
  if (foreignVersion(json)) {
    return { ok: false, error: `v: version ${JSON.stringify((json as { v: unknown }).v)?.slice(0, 40)} is not ${PAYLOAD_VERSION}`, failure: 'bad-version' };
  }
  const r = schema.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0];
    return { ok: false, error: `${i.path.join('.') || '(root)'}: ${i.message}`, failure: 'schema' };
  }
  return { ok: true, value: r.data };
}

export const decodeAlert = (p: Uint8Array | string): Decoded<Alert> => decodeWith(AlertSchema, p);
export const decodeStats = (p: Uint8Array | string): Decoded<Stats> => decodeWith(StatsSchema, p);
export const decodeStatus = (p: Uint8Array | string): Decoded<Status> => decodeWith(StatusSchema, p);
export const decodeIncident = (p: Uint8Array | string): Decoded<Incident> => decodeWith(IncidentSchema, p);
export const decodeSample = (p: Uint8Array | string): Decoded<Sample> => decodeWith(SampleSchema, p);
export const decodeAck = (p: Uint8Array | string): Decoded<Ack> => decodeWith(AckSchema, p);

/** Encoders validate too, so a hub cannot publish what the aggregator would refuse. */
export const encodeAlert = (a: AlertInput): string => JSON.stringify(AlertSchema.parse(a));
export const encodeStats = (s: z.input<typeof StatsSchema>): string => JSON.stringify(StatsSchema.parse(s));
export const encodeStatus = (s: z.input<typeof StatusSchema>): string => JSON.stringify(StatusSchema.parse(s));
export const encodeIncident = (i: z.input<typeof IncidentSchema>): string => JSON.stringify(IncidentSchema.parse(i));
export const encodeSample = (s: z.input<typeof SampleSchema>): string => JSON.stringify(SampleSchema.parse(s));
export const encodeAck = (a: z.input<typeof AckSchema>): string => JSON.stringify(AckSchema.parse(a));
