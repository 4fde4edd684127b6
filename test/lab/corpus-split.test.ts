import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runLab } from '../../lab/corpus.ts';
import { listDevices, splitDevices, filesOf, type BenignDevice } from '../../lab/benign-split.ts';
import { listCaptures } from '../../lab/background.ts';
import { readCaptureBuffer } from '../../capture/reader.ts';
import { DEFAULT_WASM_PATH } from '../../asm/flowmeter-host.ts';
import { isIdsError } from '../../shared/errors.ts';
import { ATTACKER } from '../../lab/network.ts';
import { sharedData } from '../helpers/shared-data.ts';

const fake: BenignDevice[] = [
  ...['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'].map((d) => ({ id: `cams/${d}`, source: 'cams', files: [`cams/${d}/1.pcap`, `cams/${d}/2.pcap`] })),
  ...['p', 'q', 'r'].map((d) => ({ id: `ndpi/${d}`, source: 'ndpi', files: [`ndpi/${d}.pcap`] })),
  { id: 'benign/mixed', source: 'benign', files: ['mixed.pcap'] },
];

test('splitDevices: every device on exactly one side, per source shares, one device always trains, same seed same split', () => {
  const s = splitDevices(fake, { seed: 3, test: 0.3, validation: 0.2 });
  assert.equal(s.devices.length, fake.length);
  assert.equal(new Set(s.devices.map((d) => d.id)).size, fake.length);
  const side = (src: string, k: string) => s.devices.filter((d) => d.source === src && d.side === k).length;
  assert.deepEqual([side('cams', 'test'), side('cams', 'validation'), side('cams', 'train')], [3, 2, 5]);
  assert.deepEqual([side('ndpi', 'test'), side('ndpi', 'validation'), side('ndpi', 'train')], [1, 1, 1]);
  assert.equal(side('benign', 'train'), 1, 'a source of one device trains');
  const files = { train: filesOf(s, 'train'), validation: filesOf(s, 'validation'), test: filesOf(s, 'test') };
  const all = [...files.train, ...files.validation, ...files.test];
  assert.equal(new Set(all).size, all.length, 'no capture on two sides');
  assert.equal(all.length, fake.flatMap((d) => d.files).length);
  assert.deepEqual(splitDevices(fake, { seed: 3, test: 0.3, validation: 0.2 }), s);
  const other = splitDevices(fake, { seed: 4, test: 0.3, validation: 0.2 });
  assert.notDeepEqual(other.devices.map((d) => d.side), s.devices.map((d) => d.side), 'another seed, another split');
  for (const bad of [{ test: 1, validation: 0 }, { test: 0.6, validation: 0.5 }, { test: -0.1, validation: 0 }]) {
    assert.throws(() => splitDevices(fake, { seed: 1, ...bad }), (e) => isIdsError(e) && e.code === 'BAD_OPTION');
  }
});

test('listDevices: a folder of captures is one device, a lifecycle folder joins its device, a single capture is one', (t) => {
  const dir = sharedData(t, 'pcaps', 'benign');
  if (!dir) return;
  const devices = listDevices(dir);
  const ids = devices.map((d) => d.id);
  assert.equal(devices.flatMap((d) => d.files).length, listCaptures(dir).length, 'every capture in one device');
  assert.ok(ids.includes('iot-sentinel/EdimaxCam2'));
  assert.ok(ids.includes('lifecycle-camera/xiaodu_plug') && !ids.includes('lifecycle-camera/xiaodu_plug_lifecycle'));
  assert.ok(devices.find((d) => d.id === 'lifecycle-camera/xiaodu_plug')!.files.some((f) => f.includes('xiaodu_plug_lifecycle/')));
  assert.ok(ids.includes('ndpi/mqtt') && ids.includes('benign/tcpreplay-mixed'));
});

/** MACs of the IoT Sentinel devices (each folder names its device's MAC). */
function sentinelMacs(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const root = join(dir, 'iot-sentinel');
  for (const d of readdirSync(root)) {
    const f = join(root, d, '_iotdevice-mac.txt');
    if (existsSync(f)) out.set(`iot-sentinel/${d}`, readFileSync(f, 'utf8').trim().toLowerCase());
  }
  return out;
}

/** Every Ethernet source and destination MAC in a capture file. */
function macsIn(path: string): Set<string> {
  const seen = new Set<string>();
  const hex = (b: Uint8Array, o: number) => Array.from(b.subarray(o, o + 6), (x) => x.toString(16).padStart(2, '0')).join(':');
  for (const batch of readCaptureBuffer(readFileSync(path))) {
    for (let i = 0; i < batch.count; i++) {
      const o = batch.offsets[i];
      seen.add(hex(batch.data, o));
      seen.add(hex(batch.data, o + 6));
    }
  }
  return seen;
}

test('a device-split corpus: held-out devices never reach the replayed pcaps; the manifest, lists and links agree', async (t) => {
  const data = sharedData(t, 'pcaps', 'benign');
  if (!data) return;
  if (!existsSync(DEFAULT_WASM_PATH)) return t.skip(`flow meter wasm missing at ${DEFAULT_WASM_PATH}: run npm run build:asm`);
  const dataDir = join(data, '..', '..');
  const out = mkdtempSync(join(tmpdir(), 'lab-split-'));
  try {
    const r = await runLab({ seed: 5, flows: 3000, out, dataDir, scenarios: ['normal', 'mitm-arp-spoofing'], real: false, deviceSplit: { test: 0.3, validation: 0.15 } });
    const manifest = JSON.parse(readFileSync(join(out, 'split.json'), 'utf8')) as { devices: { id: string; side: string; files: string[] }[] };
    const sideOf = new Map(manifest.devices.map((d) => [d.id, d.side]));
    assert.equal(sideOf.size, manifest.devices.length, 'each device listed once');
    const files = manifest.devices.flatMap((d) => d.files);
    assert.equal(new Set(files).size, files.length, 'no capture under two devices');
    assert.deepEqual(r.heldOut?.map((h) => h.side), ['train', 'validation', 'test']);
    assert.ok(r.heldOut!.every((h) => h.devices > 0 && h.flows > 0), JSON.stringify(r.heldOut));

    // The scorer's view: benign-test.txt and benign-test/ hold exactly the test devices' captures.
    const testFiles = manifest.devices.filter((d) => d.side === 'test').flatMap((d) => d.files).sort();
    const listed = readFileSync(join(out, 'benign-test.txt'), 'utf8').trim().split('\n');
    assert.deepEqual(listed.map((p) => realpathSync(p)).sort(), testFiles.map((f) => realpathSync(join(data, f))).sort());
    const linked = listCaptures(join(out, 'benign-test')).map((p) => realpathSync(p)).sort();
    assert.deepEqual(linked, listed.map((p) => realpathSync(p)).sort());
    const csvRows = readFileSync(join(out, 'benign-test.csv'), 'utf8').trim().split('\n').length - 1;
    assert.equal(csvRows, r.heldOut!.find((h) => h.side === 'test')!.flows);

    // On the wire: no held-out IoT Sentinel device's MAC is in a replayed pcap; some train device's is.
    const replayed = new Set<string>();
    for (const f of readdirSync(join(out, 'pcaps')).filter((f) => f.endsWith('-replay.pcap'))) for (const m of macsIn(join(out, 'pcaps', f))) replayed.add(m);
    let trainSeen = 0;
    for (const [id, mac] of sentinelMacs(data)) {
      const side = sideOf.get(id);
      if (side === 'train') trainSeen += replayed.has(mac) ? 1 : 0;
      else assert.ok(!replayed.has(mac), `${id} (${side}) MAC ${mac} replayed into the training corpus`);
    }
    assert.ok(trainSeen > 0, 'the check can fail: train devices do appear on the wire');

    // Every IP frame of the MITM pcaps crossed the attacker (lab/relay.ts): a flow the relay never touched would
    // be ordinary traffic under the MITM label.
    const attacker = Array.from(ATTACKER.mac, (x) => x.toString(16).padStart(2, '0')).join(':');
    for (const f of ['mitm-arp-spoofing.pcap', 'mitm-arp-spoofing-replay.pcap']) {
      let ip = 0;
      for (const batch of readCaptureBuffer(readFileSync(join(out, 'pcaps', f)))) {
        for (let i = 0; i < batch.count; i++) {
          const o = batch.offsets[i];
          const d = batch.data;
          if (!((d[o + 12] === 0x08 && d[o + 13] === 0) || (d[o + 12] === 0x86 && d[o + 13] === 0xdd))) continue;
          ip++;
          const macs = [0, 6].map((k) => Array.from(d.subarray(o + k, o + k + 6), (x) => x.toString(16).padStart(2, '0')).join(':'));
          assert.ok(macs.includes(attacker), `${f}: IP frame ${macs.join(' -> ')} not relayed`);
        }
      }
      assert.ok(ip > 0, `${f}: relayed frames`);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
