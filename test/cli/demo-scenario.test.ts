/**
 * The demo's traffic without a model: the fleet plan (who is attacked), the lab-clock source (time order across
 * chunks, every kill-chain step within a cycle, benign-only hubs never attacked) and the paced pcap bytes (they
 * read back as the same frames and times).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { CYCLE_S, KILL_CHAIN, TrafficSource, fleetPlan, ATTACKS } from '../../cli/demo/scenario.ts';
import { pcapHeader, pcapRecords } from '../../cli/demo/pcap-stream.ts';
import { Replayer } from '../../cli/demo/replay.ts';
import { readCaptureBuffer } from '../../capture/reader.ts';
import { formatSummary } from '../../cli/demo/summary.ts';

const T0 = Date.UTC(2026, 0, 5, 8) * 1000;

test('fleet plan: first hub of each site attacked, phases differ, the rest benign-only', () => {
  const plans = fleetPlan(3, 2, 1);
  assert.equal(plans.length, 6);
  assert.deepEqual(plans.map((p) => `${p.site}/${p.hub}`), ['site-1/hub-1', 'site-1/hub-2', 'site-2/hub-1', 'site-2/hub-2', 'site-3/hub-1', 'site-3/hub-2']);
  assert.deepEqual(plans.map((p) => p.episodes.length > 0), [true, false, true, false, true, false]);
  const phases = new Set(plans.filter((p) => p.episodes.length).map((p) => p.phaseS));
  assert.equal(phases.size, 3);
  assert.equal(new Set(plans.map((p) => p.seed)).size, 6);
  for (const ep of KILL_CHAIN) assert.ok(ATTACKS[ep.attack], ep.attack);
});

test('traffic source: frames in time order across chunks; every chain step starts within one cycle; benign hub never attacked', () => {
  const [attacked, benign] = fleetPlan(1, 2, 7);
  const src = new TrafficSource(attacked, T0);
  let last = -Infinity;
  let n = 0;
  for (let s = 1; s <= CYCLE_S + 5; s += 3) {
    const { frames, times } = src.take(T0 + s * 1e6);
    assert.equal(frames.length, times.length);
    for (const t of times) {
      assert.ok(t >= last, `time went back: ${t} after ${last}`);
      assert.ok(t < T0 + s * 1e6);
      last = t;
    }
    n += times.length;
  }
  assert.ok(n > 1000, `only ${n} frames in a cycle`);
  for (const ep of KILL_CHAIN) assert.ok((src.started[ep.attack] ?? 0) >= 1, `${ep.attack} never started: ${JSON.stringify(src.started)}`);
  const quiet = new TrafficSource(benign, T0);
  assert.ok(quiet.take(T0 + 60e6).frames.length > 100);
  assert.deepEqual(quiet.started, {});
});

test('pcap stream: header and records read back as the same frames and times', () => {
  const frames = [Uint8Array.from({ length: 60 }, (_, i) => i), Uint8Array.from({ length: 1514 }, (_, i) => i & 255)];
  const times = [1_700_000_000_123_456, 1_700_000_001_000_001];
  const buf = Buffer.concat([pcapHeader(), pcapRecords(frames, times, 0, 2)]);
  const batches = [...readCaptureBuffer(buf)];
  const got: { ts: number; len: number }[] = [];
  for (const b of batches) for (let i = 0; i < b.count; i++) got.push({ ts: b.timestampsUs[i], len: b.lengths[i] });
  assert.deepEqual(got, [{ ts: times[0], len: 60 }, { ts: times[1], len: 1514 }]);
});

test('replayer: paced output parses as pcap; stop() ends the stream', async () => {
  const [plan] = fleetPlan(1, 1, 3);
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise<void>((r) => out.once('end', () => r()));
  const r = new Replayer(new TrafficSource(plan, T0), out, 20, 20);
  r.start();
  await new Promise((res) => setTimeout(res, 600));
  r.stop();
  await ended;
  const buf = Buffer.concat(chunks);
  let packets = 0;
  for (const b of readCaptureBuffer(buf)) packets += b.count;
  assert.ok(r.stats.packets > 50, `only ${r.stats.packets} packets in ~12 lab seconds`);
  assert.equal(packets, r.stats.packets);
});

test('fleet line names classes, hubs and incidents', () => {
  const line = formatSummary({ alerts: 12, classes: { Scan: 2, 'MITM ARP Spoofing': 10 }, hubs: { total: 6, online: 5, offline: 1, unknown: 0 }, incidents: { open: 1 } });
  assert.equal(line, 'alerts 12 (MITM 10 · Scan 2) | hubs 5/6 online | incidents 1 open');
});

test('real background: none without the data folder; added frames merge in time order', async () => {
  const { realBackground } = await import('../../cli/demo/real-background.ts');
  const { FrameList } = await import('../../lab/wire.ts');
  const [plan] = fleetPlan(1, 1, 5);
  assert.equal(await realBackground('/nonexistent-iot-ids-data', plan, T0), null);
  const src = new TrafficSource(plan, T0);
  const extra = new FrameList();
  for (let k = 0; k < 50; k++) extra.push(T0 + k * 200_000 + 1, new Uint8Array(60).fill(k));
  src.addFrames(extra);
  const { frames, times } = src.take(T0 + 11e6);
  for (let i = 1; i < times.length; i++) assert.ok(times[i] >= times[i - 1]);
  const mine = frames.filter((f) => f.length === 60 && f[0] === f[59] && f.every((b) => b === f[0]));
  assert.equal(mine.length, 50);
});
