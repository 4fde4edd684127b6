/** Malformed MQTT messages for the fuzz tests, from a seed: each with the reason the aggregator must give. */
import { Rng } from '../../shared/random.ts';
import { encodeAlert, encodeStats, encodeStatus, MAX_PAYLOAD_BYTES } from '../../shared/payloads.ts';
import type { InvalidReason } from '../../aggregator/validate.ts';
import { alertPayload } from './fixtures.ts';

export interface BadMessage {
  topic: string;
  payload: Buffer;
  /** The reason when it is certain; undefined when several fit (random bytes may happen to be JSON). */
  reason?: InvalidReason;
}

const T = (site: string, hub: string, ch: string) => `ids/v1/${site}/${hub}/${ch}`;

const WRONG_TYPES: [string, unknown][] = [
  ['seq', '12'], ['seq', -1], ['seq', 1.5], ['ts', 'now'], ['ts', -5], ['confidence', 1.5], ['confidence', 'high'],
  ['class', 42], ['class', null], ['flow', null], ['flow', { src: 1 }], ['count', 0], ['source', 'oracle'],
  ['probabilities', { Mirai: 2 }], ['model', ['m']], ['evidence', { kind: 'nope' }], ['hub', 7], ['site', ''],
];

export function badMessages(n: number, seed = 7): BadMessage[] {
  const rng = new Rng(seed);
  const out: BadMessage[] = [];
  const valid = () => alertPayload('s1', 'h1', rng.int(0, 1e9), 'Mirai', 1_700_000_000_000) as Record<string, unknown>;
  const kinds = [
    // Truncated or mangled JSON.
    (): BadMessage => {
      const s = encodeAlert(valid() as never);
      return { topic: T('s1', 'h1', 'alert'), payload: Buffer.from(s.slice(0, rng.int(0, s.length - 1))), reason: 'not-json' };
    },
    (): BadMessage => ({ topic: T('s1', 'h1', 'alert'), payload: Buffer.from(rng.pick(['{', 'null,', "{'a':1}", 'NaN', '[1,]', '{"v":1,}', ''])), reason: 'not-json' }),
    // Wrong types in an otherwise valid alert.
    (): BadMessage => {
      const p = valid();
      const [k, v] = rng.pick(WRONG_TYPES);
      p[k] = v;
      return { topic: T('s1', 'h1', 'alert'), payload: Buffer.from(JSON.stringify(p)), reason: 'schema' };
    },
    // JSON that is not an object.
    (): BadMessage => ({ topic: T('s1', 'h1', rng.pick(['alert', 'stats', 'status'])), payload: Buffer.from(rng.pick(['1', '"x"', 'true', '[]', 'null'])), reason: 'schema' }),
    // Huge strings: a field past its limit, or the whole payload past MAX_PAYLOAD_BYTES.
    (): BadMessage => {
      const p = valid();
      p.class = 'x'.repeat(257 + rng.int(0, 5000));
      return { topic: T('s1', 'h1', 'alert'), payload: Buffer.from(JSON.stringify(p)), reason: 'schema' };
    },
    (): BadMessage => {
      const p = valid();
      p.model = 'y'.repeat(MAX_PAYLOAD_BYTES + rng.int(1, 1000));
      return { topic: T('s1', 'h1', 'alert'), payload: Buffer.from(JSON.stringify(p)), reason: 'too-large' };
    },
    // Unknown versions.
    (): BadMessage => {
      const p = valid();
      p.v = rng.pick([0, 2, 99, '1', null]);
      return { topic: T('s1', 'h1', 'alert'), payload: Buffer.from(JSON.stringify(p)), reason: 'bad-version' };
    },
    (): BadMessage => {
      const s = { v: rng.pick([2, 3]), site: 's1', hub: 'h1', ts: 1, state: 'online' };
      return { topic: T('s1', 'h1', 'status'), payload: Buffer.from(JSON.stringify(s)), reason: 'bad-version' };
    },
    // Topic and payload disagree: a hub speaking for another hub or site.
    (): BadMessage => {
      const p = valid();
      return { topic: T(rng.pick(['s1', 's2']), rng.pick(['h2', 'h3']), 'alert'), payload: Buffer.from(encodeAlert(p as never)), reason: 'topic-mismatch' };
    },
    (): BadMessage => ({
      topic: T('s9', 'h1', 'status'),
      payload: Buffer.from(encodeStatus({ v: 1, site: 's1', hub: 'h1', ts: 1, state: 'offline' })),
      reason: 'topic-mismatch',
    }),
    (): BadMessage => ({
      topic: T('s1', 'h7', 'stats'),
      payload: Buffer.from(encodeStats({ v: 1, site: 's1', hub: 'h1', ts: 1, intervalMs: 1, flowsPerSec: 0, flows: 0, classCounts: {},
        latencyMs: { p50: 0, p95: 0, p99: 0 }, queueDepth: 0, dropped: 0, malformed: 0 })),
      reason: 'topic-mismatch',
    }),
    // A stats or status payload on the alert channel, and the other way round.
    (): BadMessage => ({ topic: T('s1', 'h1', 'alert'), payload: Buffer.from(encodeStatus({ v: 1, site: 's1', hub: 'h1', ts: 1, state: 'online' })), reason: 'schema' }),
    (): BadMessage => ({ topic: T('s1', 'h1', 'status'), payload: Buffer.from(encodeAlert(valid() as never)), reason: 'schema' }),
    // Binary garbage.
    (): BadMessage => {
      const b = Buffer.alloc(rng.int(1, 2048));
      for (let i = 0; i < b.length; i++) b[i] = rng.int(0, 256);
      return { topic: T('s1', 'h1', rng.pick(['alert', 'stats', 'status'])), payload: b };
    },
    // Topics that are not hub topics.
    (): BadMessage => ({
      topic: rng.pick(['ids/v1/s1/h1/bundle', 'ids/v1/fleet/h1/alert', 'ids/v1/s1/alert', 'ids/v2/s1/h1/alert', 'ids/v1/s1/h1/alert/x', 'other']),
      payload: Buffer.from(encodeAlert(valid() as never)),
      reason: 'bad-topic',
    }),
  ];
  for (let i = 0; i < n; i++) out.push(kinds[i % kinds.length]());
  return out;
}
