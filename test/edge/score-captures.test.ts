import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatRun, scoreAll } from '../../edge/score-captures.ts';
import { PROJECT_ROOT, sharedData } from '../helpers/shared-data.ts';

const BUNDLE = join(PROJECT_ROOT, 'models', 'iot-ids-lab-v1');
const KEY = readFileSync(join(PROJECT_ROOT, 'models', 'dev-key', 'public.pem'), 'utf8');

test('score-captures runs real captures through the hub path without a broker and scores them', { timeout: 300_000 }, async (t) => {
  const root = sharedData(t, 'pcaps');
  if (!root) return;
  const all = JSON.parse(readFileSync(join(root, 'expected.json'), 'utf8')).attack;
  const pick = ['pcaphunt_hs-arpScan.pcap', 'slips_icmp-sweep.pcap', 'slips_ssh-bruteforce.pcap'];
  const dir = mkdtempSync(join(tmpdir(), 'score-'));
  try {
    const expect = join(dir, 'expected.json');
    writeFileSync(expect, JSON.stringify({ attack: Object.fromEntries(pick.map((n) => [n, all[n]])) }));
    mkdirSync(join(dir, 'benign'));
    symlinkSync(join(root, 'benign', 'tcpreplay-mixed.pcap'), join(dir, 'benign', 'tcpreplay-mixed.pcap'));
    // A live-lab recording: the ICMP sweep with a truth.json whose start is the capture's first packet.
    mkdirSync(join(dir, 'lab', 'sweep'), { recursive: true });
    symlinkSync(join(root, 'attack', 'slips_icmp-sweep.pcap'), join(dir, 'lab', 'sweep', 'capture.pcap'));
    const pcap = readFileSync(join(root, 'attack', 'slips_icmp-sweep.pcap'));
    const startUs = pcap.readUInt32LE(24) * 1e6 + pcap.readUInt32LE(28);
    writeFileSync(join(dir, 'lab', 'sweep', 'truth.json'), JSON.stringify({ cat: 'Scan', startUs, attacker: '192.168.1.109' }));

    const split = join(dir, 'split.json');
    writeFileSync(split, JSON.stringify({ devices: [{ id: 'benign/tcpreplay-mixed', side: 'train', files: ['tcpreplay-mixed.pcap'] }] }));
    const run = await scoreAll({
      bundleDir: BUNDLE, publicKeyPem: KEY, expect, attackDir: join(root, 'attack'), benign: join(dir, 'benign'), lab: join(dir, 'lab'), split,
    });
    for (const line of formatRun(run).split('\n')) t.diagnostic(line);
    const by = Object.fromEntries(run.attack.map((s) => [s.capture, s]));
    // No IP flows: caught by the ARP watcher's sweep rule alone.
    assert.equal(by['pcaphunt_hs-arpScan.pcap'].attackFlows, 0);
    assert.ok(by['pcaphunt_hs-arpScan.pcap'].caught && by['pcaphunt_hs-arpScan.pcap'].findingKinds['arp-sweep'] === 1);
    // The brute force's sessions are Normal to the model: the watcher's upgrade carries them.
    const bf = by['slips_ssh-bruteforce.pcap'];
    assert.equal(bf.attackFlows, 68);
    assert.ok(bf.rightByRule >= 0.9 * 68 && bf.caught, JSON.stringify(bf));
    assert.equal(run.totals.attackCaught, 3);
    assert.equal(run.benign.length, 1);
    assert.equal(run.benign[0].findings, 0);
    assert.deepEqual(run.sides?.map((x) => [x.side, x.devices, x.captures, x.flows]), [['train', 1, 1, run.benign[0].flows]]);
    assert.match(formatRun(run), /\| train \| 1 \| 1 \|/);
    assert.equal(run.lab.length, 1);
    assert.ok(run.lab[0].caught && run.lab[0].timeToDetectS! < 10, JSON.stringify(run.lab[0]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a bad expected.json or a missing capture is a clear error', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'score-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const expect = join(dir, 'expected.json');
  writeFileSync(expect, '{"attack": {"nope.pcap": {"families": ["Scan"], "attackFlows": "all"}}}');
  await assert.rejects(scoreAll({ bundleDir: BUNDLE, publicKeyPem: KEY, expect }), /nope\.pcap .*not found/);
  writeFileSync(expect, 'not json');
  await assert.rejects(scoreAll({ bundleDir: BUNDLE, publicKeyPem: KEY, expect }), /expected\.json/);
});
