/**
 * The hot-path alert encoder. shared/payloads.ts encodeAlert validates every alert with zod (~4x the cost of
 * the JSON itself). Model alerts are built by the hub from values that are valid by construction (ports from
 * Uint16Array, clamped probabilities, addresses cut to 64 characters), so the parts that come from outside —
 * hub, site, labels, model version — are checked once per bundle by `checkAlertStatics` with the real schema,
 * and each alert is serialised directly, in the schema's key order: the output is byte-identical to
 * encodeAlert's (a test holds it to that).
 */
import { IdsError } from '../shared/errors.ts';
import { encodeAlert, type AlertInput } from '../shared/payloads.ts';

/** Validates, with the real schema, everything an alert takes from the bundle and the options. */
export function checkAlertStatics(hub: string, site: string, labels: readonly string[], model: string): void {
  for (const label of labels) {
    try {
      encodeAlert({
        v: 1, hub, site, seq: 0, ts: 0, class: label, confidence: 1,
        probabilities: Object.fromEntries(labels.map((l) => [l, 0])),
        flow: { src: '', dst: '', sport: 0, dport: 0, proto: 0 }, model, count: 1, source: 'model',
      });
    } catch (e) {
      throw new IdsError('BAD_BUNDLE', `alerts for class "${label}" of model ${model} would not be valid: ${(e as Error).message}`);
    }
  }
}

/** JSON of a model alert, exactly as encodeAlert would write it (fields in schema order). */
export function encodeModelAlert(a: AlertInput): string {
  return JSON.stringify({
    v: a.v,
    hub: a.hub,
    site: a.site,
    seq: a.seq,
    ts: a.ts,
    class: a.class,
    confidence: a.confidence,
    probabilities: a.probabilities,
    flow: { src: a.flow.src, dst: a.flow.dst, sport: a.flow.sport, dport: a.flow.dport, proto: a.flow.proto },
    model: a.model,
    count: a.count ?? 1,
    source: a.source ?? 'model',
    // Omitted by JSON.stringify when undefined, as encodeAlert omits it.
    features: a.features,
  });
}
