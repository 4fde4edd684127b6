import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT, sharedData } from '../helpers/shared-data.ts';
import { FLOW_CSV_HEADER, LABELED_FLOW_CSV_HEADER } from '../../asm/flow-csv.ts';

const cli = (args: string[], input?: Buffer) =>
  spawnSync(process.execPath, [join(PROJECT_ROOT, 'bin', 'iot-ids.mjs'), 'flows', ...args], {
    cwd: PROJECT_ROOT,
    input,
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    timeout: 60_000,
  });

test('flows CAPTURE --out FILE writes the reference flows as IoTID20 CSV and exits 0', (t) => {
  const pcap = sharedData(t, 'cicflowmeter-reference', 'test.pcap');
  if (!pcap) return;
  const dir = mkdtempSync(join(tmpdir(), 'iot-ids-flows-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'flows.csv');
  const r = cli([pcap, '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  const lines = readFileSync(out, 'utf8').trimEnd().split('\n');
  assert.equal(lines[0], FLOW_CSV_HEADER);
  assert.equal(lines.length, 1 + 96);
  for (const l of lines.slice(1)) assert.equal(l.split(',').length, 83);
  assert.match(r.stderr, /3292 packets.*96 flows/);
});

test("flows - reads stdin; labels add Label,Cat,Sub_Cat; corrected mode is selectable", (t) => {
  const pcap = sharedData(t, 'cicflowmeter-reference', 'test.pcap');
  if (!pcap) return;
  const r = cli(['-', '--mode', 'corrected', '--label', 'Normal', '--cat', 'Normal', '--subcat', 'Normal'], readFileSync(pcap));
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines[0], LABELED_FLOW_CSV_HEADER);
  assert.ok(lines.length > 1);
  for (const l of lines.slice(1)) assert.ok(l.endsWith(',Normal,Normal,Normal'));
  assert.match(r.stderr, /mode corrected/);
});

test('a capture cut mid-packet: good flows written, error printed with the offset, non-zero exit', (t) => {
  const pcap = sharedData(t, 'cicflowmeter-reference', 'test.pcap');
  if (!pcap) return;
  const cut = readFileSync(pcap).subarray(0, 1_000_000);
  const r = cli(['-', '--mode', 'corrected'], cut);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /truncated at byte offset \d+/);
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines[0], FLOW_CSV_HEADER);
  assert.ok(lines.length > 5, `only ${lines.length - 1} flows from the good part`);
});

test('flows CAPTURE --out F on a capture truncated mid-record: the flows of every packet read are in F, exit 1', (t) => {
  const pcap = sharedData(t, 'pcaps', 'attack', 'pcaphunt_ps-tcp_syn.pcap');
  if (!pcap) return;
  const dir = mkdtempSync(join(tmpdir(), 'iot-ids-flows-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const cut = join(dir, 'cut.pcap');
  writeFileSync(cut, readFileSync(pcap).subarray(0, 184_751)); // 2,496 whole packets, then 23 bytes of the next
  const out = join(dir, 'flows.csv');
  // A SYN scan is one-packet flows: compat mode (CICFlowMeter) writes none of them even from the whole capture,
  // so the corrected mode is what shows whether the flows before the cut are kept.
  const r = cli([cut, '--out', out, '--mode', 'corrected']);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /2496 packets .* 2496 flows written/);
  assert.match(r.stderr, /truncated at byte offset 184728/);
  assert.equal(readFileSync(out, 'utf8').trimEnd().split('\n').length, 1 + 2496);
});

test('bad options and a missing file fail with a message', () => {
  const bad = cli(['x.pcap', '--mode', 'fast']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--mode "fast"/);
  const half = cli(['x.pcap', '--label', 'Normal']);
  assert.equal(half.status, 2);
  assert.match(half.stderr, /give all three/);
  const missing = cli([join(tmpdir(), 'no-such-capture.pcap')]);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /cannot read capture/);
});
