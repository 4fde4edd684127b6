/**
 * Turns one received MQTT message into a typed record or a reason to drop it. Never throws: everything here
 * comes from the network. The topic names the hub and the channel; the payload must agree with it, so a hub
 * allowed (by the broker's ACL) to write only its own subtree cannot speak for another hub by lying in the JSON.
 */
import { parseHubTopic, DEFAULT_PREFIX } from '../shared/topics.ts';
import { decodeAlert, decodeSample, decodeStats, decodeStatus, MAX_PAYLOAD_BYTES } from '../shared/payloads.ts';
import type { Alert, Stats, Status } from '../shared/payloads.ts';
import { decodeFeatures } from '../shared/feature-vector.ts';
import type { AlertRow, HubUpdate } from './store/store.ts';
import type { ModelRow, SampleRow } from './store/fleet-data.ts';

export const INVALID_REASONS = ['bad-topic', 'too-large', 'not-json', 'bad-version', 'schema', 'topic-mismatch'] as const;
export type InvalidReason = (typeof INVALID_REASONS)[number];

export type Classified =
  | { kind: 'alert'; alert: Alert; row: AlertRow; hub: HubUpdate; featuresRefused?: string }
  | { kind: 'stats'; stats: Stats; hub: HubUpdate }
  | { kind: 'status'; status: Status; hub: HubUpdate; model?: ModelRow }
  | { kind: 'sample'; sample: SampleRow; hub: HubUpdate }
  | { kind: 'invalid'; reason: InvalidReason; detail: string };

const mismatch = (topic: { site: string; hub: string }, p: { site: string; hub: string }): Classified | undefined =>
  topic.site === p.site && topic.hub === p.hub
    ? undefined
    : { kind: 'invalid', reason: 'topic-mismatch', detail: `payload names ${p.site}/${p.hub}` };

/**
 * Why a feature vector cannot be stored, or undefined. The schema already checked base64 and whole float32 values;
 * this decodes it (bounded by MAX_FEATURES) so that what is stored is known to decode, and refuses an empty one.
 * Whether its length fits the model is checked by the export, which knows the model's feature order (the status
 * announcing it may arrive after the first alerts).
 */
function featuresProblem(b64: string): string | undefined {
  try {
    return decodeFeatures(b64).length === 0 ? 'features: empty vector' : undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

export function classify(topic: string, payload: Uint8Array, now: number, prefix = DEFAULT_PREFIX): Classified {
  const t = parseHubTopic(topic, prefix);
  if (!t || t.channel === 'bundle') return { kind: 'invalid', reason: 'bad-topic', detail: 'not a hub alert/stats/status/sample topic' };
  if (payload.byteLength > MAX_PAYLOAD_BYTES) {
    return { kind: 'invalid', reason: 'too-large', detail: `${payload.byteLength} bytes > ${MAX_PAYLOAD_BYTES}` };
  }
  // One UTF-8 decode without a copy (decode* would copy a Buffer before decoding it); the byte limit was checked above.
  const text = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8');
  if (t.channel === 'alert') {
    const d = decodeAlert(text);
    if (!d.ok) return { kind: 'invalid', reason: d.failure, detail: d.error };
    const a = d.value;
    const bad = mismatch(t, a);
    if (bad) return bad;
    const row: AlertRow = {
      site: a.site, hub: a.hub, seq: a.seq, ts: a.ts, class: a.class, confidence: a.confidence, count: a.count,
      source: a.source, model: a.model, src: a.flow.src, dst: a.flow.dst, sport: a.flow.sport, dport: a.flow.dport,
      proto: a.flow.proto, evidence: a.evidence ? JSON.stringify(a.evidence) : null, receivedAt: now,
    };
    // An alert is never lost for its attachment: bad features are left out (and counted by the ingest).
    const featuresRefused = a.features === undefined ? undefined : featuresProblem(a.features);
    if (a.features !== undefined && !featuresRefused) row.features = a.features;
    return { kind: 'alert', alert: a, row, hub: { site: a.site, hub: a.hub, seenAt: now }, ...(featuresRefused ? { featuresRefused } : {}) };
  }
  if (t.channel === 'sample') return classifySample(t, text, now);
  if (t.channel === 'stats') {
    const d = decodeStats(text);
    if (!d.ok) return { kind: 'invalid', reason: d.failure, detail: d.error };
    const bad = mismatch(t, d.value);
    if (bad) return bad;
    const s = d.value;
    return { kind: 'stats', stats: s, hub: { site: s.site, hub: s.hub, seenAt: now, stats: JSON.stringify(s), statsAt: now } };
  }
  const d = decodeStatus(text);
  if (!d.ok) return { kind: 'invalid', reason: d.failure, detail: d.error };
  const bad = mismatch(t, d.value);
  if (bad) return bad;
  const s = d.value;
  // The feature order of the running bundle names the values of its alerts' and samples' vectors.
  const model: ModelRow | undefined = s.bundle !== undefined && s.features?.length
    ? { version: s.bundle, release: s.release ?? null, features: JSON.stringify(s.features), firstSeen: now }
    : undefined;
  return { kind: 'status', status: s, hub: { site: s.site, hub: s.hub, seenAt: now, state: s.state, bundle: s.bundle }, ...(model ? { model } : {}) };
}

function classifySample(t: { site: string; hub: string }, text: string, now: number): Classified {
  const d = decodeSample(text);
  if (!d.ok) return { kind: 'invalid', reason: d.failure, detail: d.error };
  const bad = mismatch(t, d.value);
  if (bad) return bad;
  const s = d.value;
  const problem = featuresProblem(s.features);
  if (problem) return { kind: 'invalid', reason: 'schema', detail: problem };
  const f = s.flow;
  const sample: SampleRow = {
    site: s.site, hub: s.hub, id: s.id, ts: s.ts, model: s.model, class: s.class, confidence: s.confidence,
    src: f?.src ?? null, dst: f?.dst ?? null, sport: f?.sport ?? null, dport: f?.dport ?? null, proto: f?.proto ?? null,
    features: s.features, receivedAt: now,
  };
  return { kind: 'sample', sample, hub: { site: s.site, hub: s.hub, seenAt: now } };
}
