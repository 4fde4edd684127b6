/**
 * Payload bounds: whatever the schema accepts, both stores can hold (INTEGER count, BIGINT seq, TEXT without NUL,
 * a timestamp the dashboard can print), and version errors are told apart from other schema errors.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeAlert, decodeStats, decodeStatus, MAX_INT32, MAX_TS } from '../../shared/payloads.ts';

const alert = (over: Record<string, unknown> = {}) => ({
  v: 1, site: 's1', hub: 'h1', seq: 1, ts: 1_700_000_000_000, class: 'Mirai', confidence: 0.9, model: 'm-1',
  flow: { src: '10.0.0.2', dst: '10.0.0.9', sport: 1, dport: 23, proto: 6 }, ...over,
});
const stats = (over: Record<string, unknown> = {}) => ({
  v: 1, site: 's1', hub: 'h1', ts: 1, intervalMs: 1000, flowsPerSec: 0, flows: 0, classCounts: {},
  latencyMs: { p50: 0, p95: 0, p99: 0 }, queueDepth: 0, dropped: 0, malformed: 0, ...over,
});
const refused = (d: { ok: boolean }) => assert.equal(d.ok, false, JSON.stringify(d));
const NUL = 'a\u0000b';

describe('payload bounds', () => {
  it('count fits a PostgreSQL INTEGER, seq a JavaScript exact integer', () => {
    assert.ok(decodeAlert(JSON.stringify(alert({ count: MAX_INT32 }))).ok);
    refused(decodeAlert(JSON.stringify(alert({ count: 2 ** 31 }))));
    assert.ok(decodeAlert(JSON.stringify(alert({ seq: Number.MAX_SAFE_INTEGER }))).ok);
    refused(decodeAlert(JSON.stringify(alert({ seq: 2 ** 53 }))));
    refused(decodeAlert(JSON.stringify(alert({ seq: 1e300 }))));
  });

  it('ts lies between the epoch and 2200 (2^53 - 1 is refused: no date can show it)', () => {
    assert.ok(decodeAlert(JSON.stringify(alert({ ts: 0 }))).ok);
    assert.ok(decodeAlert(JSON.stringify(alert({ ts: MAX_TS }))).ok);
    refused(decodeAlert(JSON.stringify(alert({ ts: 2 ** 53 - 1 }))));
    refused(decodeAlert(JSON.stringify(alert({ ts: MAX_TS + 1 }))));
    refused(decodeStats(JSON.stringify(stats({ ts: 2 ** 53 - 1 }))));
    refused(decodeStatus(JSON.stringify({ v: 1, site: 's1', hub: 'h1', ts: 2 ** 53 - 1, state: 'online' })));
  });

  it('refuses NUL in every text field', () => {
    const flow = alert().flow;
    const cases: Record<string, unknown>[] = [
      { class: NUL }, { model: NUL }, { flow: { ...flow, src: NUL } }, { flow: { ...flow, dst: NUL } },
      { probabilities: { [NUL]: 0.5 } },
      { evidence: { kind: 'arp-ip-conflict', ip: NUL, macs: [], detail: 'x' } },
      { evidence: { kind: 'arp-ip-conflict', ip: '10.0.0.1', macs: [NUL], detail: 'x' } },
      { evidence: { kind: 'arp-ip-conflict', ip: '10.0.0.1', macs: [], detail: NUL } },
    ];
    for (const c of cases) refused(decodeAlert(JSON.stringify(alert(c))));
    refused(decodeStats(JSON.stringify(stats({ lastError: NUL }))));
    refused(decodeStats(JSON.stringify(stats({ classCounts: { [NUL]: 1 } }))));
    refused(decodeStatus(JSON.stringify({ v: 1, site: 's1', hub: 'h1', ts: 1, state: 'online', bundle: NUL })));
    // Other control characters are harmless to both stores and stay allowed.
    assert.ok(decodeAlert(JSON.stringify(alert({ class: 'a\u0001\tb' }))).ok);
  });

  it('a foreign version is bad-version; a payload without v, or with an object in it, is a schema error', () => {
    const failure = (p: unknown) => {
      const d = decodeAlert(JSON.stringify(p));
      return d.ok ? 'ok' : d.failure;
    };
    assert.equal(failure(alert({ v: 2 })), 'bad-version');
    assert.equal(failure(alert({ v: '1' })), 'bad-version');
    assert.equal(failure(alert({ v: null })), 'bad-version');
    assert.equal(failure({ a: { b: { c: {} } } }), 'schema');
    assert.equal(failure({ alert: alert() }), 'schema');
    assert.equal(failure(alert({ v: { n: 1 } })), 'schema');
    assert.equal(failure([alert()]), 'schema');
    assert.equal(failure(alert()), 'ok');
  });
});
