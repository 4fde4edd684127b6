/**
 * MQTT payload codecs: the JSON every hub publishes and the aggregator consumes, as zod schemas with their
 * TypeScript types. `decode*` never throws on bad input from the network: it returns an error string instead.
 */
import { z } from 'zod';

export const PAYLOAD_VERSION = 1;
/** Payloads past this size are refused before parsing: nothing a hub sends legitimately comes near it. */
export const MAX_PAYLOAD_BYTES = 64 * 1024;

const id = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/);
const shortText = z.string().max(256);
const prob = z.number().min(0).max(1);

export const FlowKeySchema = z.object({
  src: z.string().max(64),
  dst: z.string().max(64),
  sport: z.number().int().min(0).max(65535),
  dport: z.number().int().min(0).max(65535),
  proto: z.number().int().min(0).max(255),
});
export type FlowKey = z.infer<typeof FlowKeySchema>;

/** Rule-based evidence raised beside the model (the ARP watcher, below the IP layer where flows are blind). */
export const EvidenceSchema = z.object({
  kind: z.enum(['arp-ip-conflict', 'arp-unsolicited-reply', 'arp-gateway-claim']),
  ip: z.string().max(64),
  macs: z.array(z.string().max(32)).max(16),
  detail: shortText,
});
export type Evidence = z.infer<typeof EvidenceSchema>;

export const AlertSchema = z.object({
  v: z.literal(PAYLOAD_VERSION),
  hub: id,
  site: id,
  /** Per-hub, strictly increasing, survives restarts: consumers remove QoS 1 duplicates by (hub, seq). */
  seq: z.number().int().min(0),
  /** Milliseconds since the epoch, when the verdict was made. */
  ts: z.number().int().min(0),
  class: shortText,
  confidence: prob,
  probabilities: z.record(shortText, prob).optional(),
  flow: FlowKeySchema,
  model: shortText,
  /** How many verdicts of this class and flow key this message stands for (bursts are summarised). */
  count: z.number().int().min(1).default(1),
  source: z.enum(['model', 'rule']).default('model'),
  evidence: EvidenceSchema.optional(),
});
export type Alert = z.infer<typeof AlertSchema>;
export type AlertInput = z.input<typeof AlertSchema>;

export const StatsSchema = z.object({
  v: z.literal(PAYLOAD_VERSION),
  hub: id,
  site: id,
  ts: z.number().int().min(0),
  intervalMs: z.number().int().min(0),
  flowsPerSec: z.number().min(0),
  flows: z.number().int().min(0),
  classCounts: z.record(shortText, z.number().int().min(0)),
  latencyMs: z.object({ p50: z.number().min(0), p95: z.number().min(0), p99: z.number().min(0) }),
  queueDepth: z.number().int().min(0),
  dropped: z.number().int().min(0),
  malformed: z.number().int().min(0),
  offlineQueued: z.number().int().min(0).default(0),
  /** Inputs that failed (a corrupt capture, an unreadable file): counted, the hub keeps running. */
  inputErrors: z.number().int().min(0).default(0),
  /** Downlinked bundles refused (bad signature, hash or model); the running bundle stayed. */
  bundlesRejected: z.number().int().min(0).default(0),
  /**
   * Model verdicts of MITM ARP spoofing withheld because the hub's ARP watcher saw no spoofing within the
   * corroboration window (hub option --mitm-needs-arp): counted in classCounts, not alerted.
   */
  unconfirmed: z.number().int().min(0).default(0),
  /** The most recent such error, for operators. */
  lastError: shortText.optional(),
});
export type Stats = z.infer<typeof StatsSchema>;

export const StatusSchema = z.object({
  v: z.literal(PAYLOAD_VERSION),
  hub: id,
  site: id,
  ts: z.number().int().min(0),
  state: z.enum(['online', 'offline']),
  bundle: shortText.optional(),
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
  alerts: z.number().int().min(0),
  openedAt: z.number().int().min(0),
  updatedAt: z.number().int().min(0),
  closedAt: z.number().int().min(0).optional(),
  summary: shortText,
});
export type Incident = z.infer<typeof IncidentSchema>;

export type Decoded<T> = { ok: true; value: T } | { ok: false; error: string };

function decodeWith<T>(schema: z.ZodType<T>, payload: Uint8Array | string): Decoded<T> {
  const size = typeof payload === 'string' ? payload.length : payload.byteLength;
  if (size > MAX_PAYLOAD_BYTES) return { ok: false, error: `payload of ${size} bytes exceeds ${MAX_PAYLOAD_BYTES}` };
  let json: unknown;
  try {
    json = JSON.parse(typeof payload === 'string' ? payload : Buffer.from(payload).toString('utf8'));
  } catch (e) {
    return { ok: false, error: `not JSON: ${(e as Error).message}` };
  }
  const r = schema.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0];
    return { ok: false, error: `${i.path.join('.') || '(root)'}: ${i.message}` };
  }
  return { ok: true, value: r.data };
}

export const decodeAlert = (p: Uint8Array | string): Decoded<Alert> => decodeWith(AlertSchema, p);
export const decodeStats = (p: Uint8Array | string): Decoded<Stats> => decodeWith(StatsSchema, p);
export const decodeStatus = (p: Uint8Array | string): Decoded<Status> => decodeWith(StatusSchema, p);
export const decodeIncident = (p: Uint8Array | string): Decoded<Incident> => decodeWith(IncidentSchema, p);

/** Encoders validate too, so a hub cannot publish what the aggregator would refuse. */
export const encodeAlert = (a: AlertInput): string => JSON.stringify(AlertSchema.parse(a));
export const encodeStats = (s: z.input<typeof StatsSchema>): string => JSON.stringify(StatsSchema.parse(s));
export const encodeStatus = (s: z.input<typeof StatusSchema>): string => JSON.stringify(StatusSchema.parse(s));
export const encodeIncident = (i: z.input<typeof IncidentSchema>): string => JSON.stringify(IncidentSchema.parse(i));
