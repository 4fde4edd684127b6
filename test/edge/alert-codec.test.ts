import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkAlertStatics, encodeModelAlert } from '../../edge/alert-codec.ts';
import { encodeAlert, type AlertInput } from '../../shared/payloads.ts';
import { isIdsError } from '../../shared/errors.ts';
import { Rng } from '../../shared/random.ts';
import { encodeFeatures } from '../../shared/feature-vector.ts';

test('encodeModelAlert writes exactly what encodeAlert writes, on random alerts', () => {
  const rng = new Rng(9);
  const labels = ['Normal', 'DoS', 'Mirai', 'Scan', 'MITM ARP Spoofing'];
  for (let i = 0; i < 2000; i++) {
    const probs = labels.map(() => Math.round(rng.next() * 1e4) / 1e4);
    const a: AlertInput = {
      v: 1,
      hub: 'hub-' + rng.int(0, 99),
      site: 'site.' + rng.int(0, 9),
      seq: rng.int(0, 1e9),
      ts: Date.now() + rng.int(0, 1e6),
      class: rng.pick(labels),
      confidence: probs[1],
      probabilities: rng.next() < 0.8 ? Object.fromEntries(labels.map((l, k) => [l, probs[k]])) : undefined,
      flow: {
        src: rng.next() < 0.5 ? `10.0.${rng.int(0, 255)}.${rng.int(0, 255)}` : `fe80::${rng.int(0, 65535).toString(16)}`,
        dst: rng.next() < 0.1 ? '' : '192.168.1.1',
        sport: rng.int(0, 65536),
        dport: rng.int(0, 65536),
        proto: rng.pick([0, 6, 17]),
      },
      model: '2026-11-30.1-a1b2c3d4',
      count: rng.int(1, 5),
      source: 'model',
      // --attach-features: the raw vector, when on.
      features: rng.next() < 0.5 ? encodeFeatures(Array.from({ length: rng.int(1, 80) }, () => (rng.next() - 0.5) * 1e6)) : undefined,
    };
    assert.equal(encodeModelAlert(a), encodeAlert(a));
  }
});

test('checkAlertStatics refuses what the schema would refuse (bad hub id, overlong label)', () => {
  checkAlertStatics('hub1', 'site1', ['Normal', 'DoS'], 'v1');
  assert.throws(() => checkAlertStatics('hub/1', 'site1', ['Normal'], 'v1'), (e) => isIdsError(e, 'BAD_BUNDLE'));
  assert.throws(() => checkAlertStatics('hub1', 'site1', ['x'.repeat(300)], 'v1'), (e) => isIdsError(e, 'BAD_BUNDLE'));
});
