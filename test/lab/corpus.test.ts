import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { runLab } from '../../lab/corpus.ts';
import { readCaptureBuffer } from '../../capture/reader.ts';
import { verifyChecksums } from '../../capture/decode.ts';
import { ArpWatcher } from '../../edge/arp-watcher.ts';
import { DEFAULT_WASM_PATH } from '../../asm/flowmeter-host.ts';
import { IOTID20_CATEGORIES, IOTID20_SUBCATEGORIES } from '../../shared/labels.ts';
import { isIdsError } from '../../shared/errors.ts';
import { sharedData } from '../helpers/shared-data.ts';

function needWasm(t: { skip: (m: string) => void }): boolean {
  if (existsSync(DEFAULT_WASM_PATH)) return true;
  t.skip(`flow meter wasm missing at ${DEFAULT_WASM_PATH}: run npm run build:asm`);
  return false;
}

function digest(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const files = ['flows.csv', ...readdirSync(join(dir, 'pcaps')).sort().map((f) => join('pcaps', f))];
  for (const f of files) out[f] = createHash('sha256').update(readFileSync(join(dir, f))).digest('hex');
  return out;
}

test('a small corpus: every sub-category, IoTID20 header and labels, valid checksums, byte-identical for a seed', async (t) => {
  const data = sharedData(t, 'pcaps');
  if (!data || !needWasm(t)) return;
  const dataDir = join(data, '..');
  const a = mkdtempSync(join(tmpdir(), 'lab-a-'));
  const b = mkdtempSync(join(tmpdir(), 'lab-b-'));
  try {
    const ra = await runLab({ seed: 11, flows: 1200, out: a, dataDir });
    const rb = await runLab({ seed: 11, flows: 1200, out: b, dataDir });
    assert.deepEqual(digest(a), digest(b), 'same seed, same bytes');
    assert.deepEqual({ ...ra, seconds: 0 }, { ...rb, seconds: 0 });
    t.diagnostic(`${ra.flows} flows in ${ra.seconds.toFixed(1)} s: ${JSON.stringify(ra.bySubCat)}`);

    // Header: the 86 IoTID20 columns exactly as header.csv spells them.
    const csv = readFileSync(join(a, 'flows.csv'), 'utf8').trimEnd().split('\n');
    const header = readFileSync(join(dataDir, 'iotid20', 'header.csv'), 'utf8').trim().split('\n')[0];
    assert.equal(csv[0], header.replace(/\r$/, ''));
    assert.equal(csv.length - 1, ra.flows);
    assert.ok(ra.flows >= 1200 * 0.9, `${ra.flows} flows`);
    const seen = new Set<string>();
    for (const line of csv.slice(1)) {
      const cells = line.split(',');
      assert.equal(cells.length, 86, line.slice(0, 80));
      const [label, cat, sub] = cells.slice(83);
      assert.ok((IOTID20_CATEGORIES as readonly string[]).includes(cat), cat);
      assert.ok((IOTID20_SUBCATEGORIES as readonly string[]).includes(sub), sub);
      assert.equal(label, cat === 'Normal' ? 'Normal' : 'Anomaly');
      seen.add(sub);
    }
    assert.deepEqual([...seen].sort(), [...IOTID20_SUBCATEGORIES].sort(), 'every sub-category present');

    // Generated pcaps: every IPv4/IPv6 checksum verifies (the background's were recomputed where whole).
    for (const f of readdirSync(join(a, 'pcaps'))) {
      let bad = 0;
      let n = 0;
      for (const batch of readCaptureBuffer(readFileSync(join(a, 'pcaps', f)))) {
        for (let i = 0; i < batch.count; i++, n++) {
          const frame = batch.data.subarray(batch.offsets[i], batch.offsets[i] + batch.lengths[i]);
          if (batch.lengths[i] !== batch.wireLengths[i]) continue;
          const c = verifyChecksums(frame);
          if (!c.ip || c.l4 === false) bad++;
        }
      }
      // Replayed captures keep snap-length-cut packets as they were; everything generated must verify.
      if (f.endsWith('-replay.pcap')) assert.ok(bad <= n * 0.01, `${f}: ${bad} of ${n} packets with bad checksums`);
      else assert.equal(bad, 0, `${f}: ${bad} of ${n} packets with bad checksums`);
    }

    // The ARP watcher sees the MITM scenario and stays quiet on the background.
    const watch = (f: string) => {
      const w = new ArpWatcher({ gatewayIps: ['192.168.50.1'] });
      return [...readCaptureBuffer(readFileSync(join(a, 'pcaps', f)))].flatMap((x) => w.push(x));
    };
    assert.ok(watch('mitm-arp-spoofing.pcap').some((e) => e.kind === 'arp-gateway-claim'));
    assert.ok(watch('mitm-arp-spoofing-replay.pcap').some((e) => e.kind === 'arp-unsolicited-reply'));
    assert.deepEqual(watch('normal.pcap'), []);
    assert.deepEqual(watch('normal-replay.pcap'), []);

    // Another seed gives other bytes.
    const c = mkdtempSync(join(tmpdir(), 'lab-c-'));
    try {
      await runLab({ seed: 12, flows: 300, out: c, dataDir, scenarios: ['mirai-ack-flooding'], real: false });
      await runLab({ seed: 11, flows: 300, out: b, dataDir, scenarios: ['mirai-ack-flooding'], real: false });
      assert.notEqual(digest(c)['flows.csv'], digest(b)['flows.csv']);
    } finally {
      rmSync(c, { recursive: true, force: true });
    }
  } finally {
    rmSync(a, { recursive: true, force: true });
    rmSync(b, { recursive: true, force: true });
  }
});

test('bad options are BAD_OPTION; a missing benign folder is EMPTY_INPUT', async (t) => {
  if (!needWasm(t)) return;
  const out = mkdtempSync(join(tmpdir(), 'lab-bad-'));
  try {
    await assert.rejects(runLab({ seed: 1, flows: 0, out, dataDir: out }), (e) => isIdsError(e, 'BAD_OPTION'));
    await assert.rejects(runLab({ seed: 1, flows: 10, out, dataDir: out, scenarios: ['mirai-nope'] }), (e) => isIdsError(e, 'BAD_OPTION') && /mirai-nope/.test(e.message));
    await assert.rejects(runLab({ seed: 1, flows: 10, out, dataDir: join(out, 'nowhere'), scenarios: ['normal'] }), (e) => isIdsError(e, 'EMPTY_INPUT'));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
