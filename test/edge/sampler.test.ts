import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_SAMPLE_BUDGET, NormalSampler, loadSalt, type SampleInput, type SamplerOptions } from '../../edge/sampler.ts';
import { FeatureTap } from '../../edge/feature-tap.ts';
import { decodeSample } from '../../shared/payloads.ts';
import { decodeFeatures, encodeFeatures } from '../../shared/feature-vector.ts';
import { isIdsError } from '../../shared/errors.ts';
import type { Batch } from '../../edge/batcher.ts';

const TOPIC = 'ids/v1/site1/hubA/sample';
const opts = (over: Partial<SamplerOptions> = {}): SamplerOptions => ({ every: 100, hub: 'hubA', site: 'site1', topic: TOPIC, ...over });
const input = (i: number, width = 57): SampleInput => ({
  model: '2026-12-04.1-d1841e85',
  confidence: 0.9987,
  flow: { src: `192.168.1.${i % 250}`, dst: '52.1.2.3', sport: 40000 + (i % 20000), dport: 443, proto: 6 },
  features: encodeFeatures(Float32Array.from({ length: width }, (_, j) => i * 1.37 + j * 1000.123)),
});

test('pick(): about one Normal verdict in N, at random gaps (not every Nth)', () => {
  for (const n of [1, 10, 100, 1000]) {
    const s = new NormalSampler(opts({ every: n }));
    const flows = 200_000;
    let picked = 0;
    const gaps = new Set<number>();
    let last = 0;
    for (let i = 1; i <= flows; i++) {
      if (!s.pick()) continue;
      picked++;
      gaps.add(i - last);
      last = i;
    }
    const p = 1 / n;
    const mean = flows * p;
    const sd = Math.sqrt(flows * p * (1 - p));
    // 5 standard deviations: a wrong rate fails, chance alone fails about once in 3.5 million runs.
    assert.ok(Math.abs(picked - mean) <= Math.max(5 * sd, 0.5), `N=${n}: ${picked} picked of ${flows}, want ${mean} ± ${5 * sd}`);
    if (n === 1) assert.equal(picked, flows);
    // Not a fixed stride: many different gaps (a geometric distribution's spread).
    else assert.ok(gaps.size > Math.min(50, picked / 4), `N=${n}: only ${gaps.size} distinct gaps`);
    console.log(`sample-normal ${n}: ${picked} of ${flows} flows picked (expected ${mean.toFixed(0)} ± ${(5 * sd).toFixed(0)}), ${gaps.size} distinct gaps`);
  }
});

test('the byte budget: over ten simulated minutes of a flood no 60-second span carries more than the budget', () => {
  let now = 0;
  const budget = DEFAULT_SAMPLE_BUDGET;
  const s = new NormalSampler(opts({ every: 1, budgetBytesPerMin: budget, now: () => now }));
  const sent: { t: number; bytes: number }[] = [];
  // 500 Normal flows per second, every one picked: ~20x what the budget allows.
  const inputs = Array.from({ length: 64 }, (_, i) => input(i));
  for (let i = 0; i < 600 * 500; i++) {
    now = i * 2;
    const before = s.bytes;
    const p = s.admit(true) ? s.take(inputs[i % 64]) : undefined;
    if (p) sent.push({ t: now, bytes: s.bytes - before });
  }
  let worst = 0;
  let lo = 0;
  let sum = 0;
  for (let hi = 0; hi < sent.length; hi++) {
    sum += sent[hi].bytes;
    while (sent[hi].t - sent[lo].t >= 60_000) sum -= sent[lo++].bytes;
    worst = Math.max(worst, sum);
  }
  const perMin = s.bytes / 10;
  console.log(`budget ${budget} B/min: ${s.samples} samples sent, ${s.dropped} dropped; worst 60 s span ${worst} B, mean ${perMin.toFixed(0)} B/min`);
  assert.ok(worst <= budget, `${worst} bytes in one minute > ${budget}`);
  assert.ok(perMin > 0.8 * budget, `the budget is used (${perMin.toFixed(0)} B/min)`);
  assert.equal(s.samples + s.dropped, 600 * 500);
  // Cost counts the topic and the MQTT header besides the payload.
  const one = new NormalSampler(opts({ every: 1 })).take(input(1))!;
  assert.ok(one.length + TOPIC.length + 5 <= 4096);
});

test('offline: a sample is dropped and counted, never built or queued', () => {
  const s = new NormalSampler(opts());
  assert.equal(s.admit(false), false);
  assert.equal(s.admit(false), false);
  assert.equal(s.dropped, 2);
  // A payload the schema refuses (NaN confidence) is counted, not thrown into the hub's batch loop.
  assert.equal(s.take({ ...input(1), confidence: NaN }), undefined);
  assert.equal(s.dropped, 3);
  assert.equal(s.samples, 0);
  assert.equal(s.bytes, 0);
});

test('privacy: hash hides the address (stable for one salt, different for another), drop omits flow, keep keeps it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'iot-ids-salt-'));
  try {
    const a1 = loadSalt(join(dir), () => undefined);
    const a2 = loadSalt(join(dir), () => undefined); // the same hub after a restart
    assert.ok(a1.persistent);
    assert.ok(a1.salt.equals(a2.salt));
    assert.match(readFileSync(join(dir, 'sample-salt'), 'utf8'), /^[0-9a-f]{64}\n$/);
    const other = mkdtempSync(join(dir, 'other-'));
    const b = loadSalt(other, () => undefined);
    const h1 = new NormalSampler(opts({ every: 1, salt: a1.salt }));
    const h2 = new NormalSampler(opts({ every: 1, salt: a2.salt }));
    const hb = new NormalSampler(opts({ every: 1, salt: b.salt }));
    const d = decodeSample(h1.take(input(7))!);
    assert.ok(d.ok, d.ok ? '' : d.error);
    assert.match(d.value.flow!.src, /^h:[0-9a-f]{16}$/);
    assert.match(d.value.flow!.dst, /^h:[0-9a-f]{16}$/);
    assert.equal(d.value.flow!.dport, 443);
    assert.ok(!JSON.stringify(d.value).includes('192.168.1.7'));
    assert.equal(h1.hash('192.168.1.7'), h2.hash('192.168.1.7'));
    assert.notEqual(h1.hash('192.168.1.7'), hb.hash('192.168.1.7'));
    assert.notEqual(h1.hash('192.168.1.7'), h1.hash('192.168.1.8'));
    const dropped = decodeSample(new NormalSampler(opts({ every: 1, privacy: 'drop' })).take(input(7))!);
    assert.ok(dropped.ok && dropped.value.flow === undefined);
    const kept = decodeSample(new NormalSampler(opts({ every: 1, privacy: 'keep' })).take(input(7))!);
    assert.ok(kept.ok && kept.value.flow!.src === '192.168.1.7');
    // A damaged salt file is replaced (and said so), not used.
    writeFileSync(join(other, 'sample-salt'), 'garbage');
    const logged: string[] = [];
    const c = loadSalt(other, (l) => logged.push(l));
    assert.ok(!c.salt.equals(b.salt));
    assert.match(logged[0], /not 64 hex digits/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('options are checked: N ≥ 1, budget ≥ 8192, privacy one of hash, drop, keep', () => {
  assert.throws(() => new NormalSampler(opts({ every: 0 })), (e) => isIdsError(e, 'BAD_OPTION'));
  assert.throws(() => new NormalSampler(opts({ every: 1.5 })), (e) => isIdsError(e, 'BAD_OPTION'));
  assert.throws(() => new NormalSampler(opts({ budgetBytesPerMin: 1000 })), (e) => isIdsError(e, 'BAD_OPTION') && /8192/.test(e.message));
  assert.throws(() => new NormalSampler(opts({ privacy: 'plain' as never })), (e) => isIdsError(e, 'BAD_OPTION'));
});

test('FeatureTap: picks the model features out of a raw row in manifest order; writes exactly what encodeFeatures writes', () => {
  const inputs = 10;
  const raw = Float64Array.from({ length: 3 * inputs }, (_, k) => k * 1.1 + 0.123456789);
  const columns = Int32Array.from([9, 0, 4, 4, 7]);
  const b = { raw, inputs, columns } as unknown as Batch;
  const tap = new FeatureTap();
  const v = tap.gather(b, 2)!;
  const want = Array.from(columns, (c) => Math.fround(raw[2 * inputs + c]));
  assert.deepEqual(Array.from(v), want);
  const b64 = tap.encodeLast();
  assert.equal(b64, encodeFeatures(Array.from(columns, (c) => raw[2 * inputs + c])));
  assert.deepEqual(Array.from(decodeFeatures(b64)), want);
  assert.equal(tap.encode(Float32Array.from(want)), b64);
  assert.equal(tap.gather({ raw, inputs, columns: undefined } as unknown as Batch, 0), undefined);
});
