/**
 * The single-file hub: scripts/build-hub.mjs output + a bundle, copied into a temp folder with no node_modules
 * anywhere above it, run by plain node against an embedded aedes broker; a subscriber receives the alerts.
 * Also the CLI contract: --exit-at-end exits 0 after every alert is acknowledged; bad options exit non-zero.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { decodeAlert } from '../../shared/payloads.ts';
import { PROJECT_ROOT, sharedData } from '../helpers/shared-data.ts';
import { buildFixtureBundle, devKeyPair, fixtureCsvRow, FIXTURE_CSV_HEADER, type KeyPair } from './fixtures/bundle.ts';
import { startAedes, subscriber, until, type Broker } from './fixtures/brokers.ts';

let root: string;
let keys: KeyPair;
let broker: Broker;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'iot-ids-hubbuild-'));
  keys = devKeyPair();
  broker = await startAedes();
});
after(async () => {
  await broker?.stop();
  rmSync(root, { recursive: true, force: true });
});

function run(cmd: string, args: string[], cwd: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NODE_PATH: '' } });
    let stderr = '';
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

test('single-file hub runs from a folder with no node_modules and delivers alerts', async () => {
  const dist = join(root, 'dist');
  const b = spawnSync(process.execPath, ['scripts/build-hub.mjs', dist], { cwd: PROJECT_ROOT, encoding: 'utf8' });
  assert.equal(b.status, 0, b.stderr);
  // The device folder: hub file + ort wasm + bundle + key + input. Nothing else.
  const device = join(root, 'device');
  cpSync(dist, device, { recursive: true });
  await buildFixtureBundle(join(device, 'bundle'), keys, 'single-file-1');
  writeFileSync(join(device, 'pub.pem'), keys.publicKeyPem);
  const rows = [FIXTURE_CSV_HEADER];
  for (let i = 0; i < 40; i++) rows.push(fixtureCsvRow(i, i % 2 === 0 ? 0 : 2));
  rows.push('garbage,row');
  writeFileSync(join(device, 'flows.csv'), rows.join('\n') + '\n');
  for (let d = device; d !== dirname(d); d = dirname(d)) assert.ok(!existsSync(join(d, 'node_modules')), `node_modules at ${d}`);

  const sub = await subscriber(broker.url, 'ids/v1/dev/hub9/alert');
  try {
    const r = await run(process.execPath, ['iot-ids-hub.mjs', '--bundle', 'bundle', '--flows', 'flows.csv',
      '--broker', broker.url, '--site', 'dev', '--hub', 'hub9', '--key', 'pub.pem', '--queue-dir', 'state', '--exit-at-end'], device);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /1 malformed/);
    await until(() => sub.messages.length >= 20, 5000, '20 alerts');
    const a = decodeAlert(JSON.stringify(sub.messages[0].json));
    assert.ok(a.ok);
    assert.equal(a.value.class, 'Mirai');
    assert.equal(a.value.model, 'single-file-1');
    assert.equal(sub.messages.length, 20);
  } finally {
    sub.client.end(true);
  }

  // A tampered bundle: refused with a clear message and a non-zero exit.
  writeFileSync(join(device, 'bundle', 'preprocess.wasm'), 'not the signed wasm');
  const bad = await run(process.execPath, ['iot-ids-hub.mjs', '--bundle', 'bundle', '--flows', 'flows.csv',
    '--broker', broker.url, '--site', 'dev', '--hub', 'hub9', '--key', 'pub.pem', '--queue-dir', 'state', '--exit-at-end'], device);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /preprocess\.wasm/);
});

test('iot-ids hub CLI: --exit-at-end exits 0 after publishing; a missing input option exits 2', async () => {
  const dir = join(root, 'cli');
  const bundle = await buildFixtureBundle(join(dir, 'bundle'), keys, 'cli-1');
  writeFileSync(join(dir, 'pub.pem'), keys.publicKeyPem);
  writeFileSync(join(dir, 'flows.csv'), [FIXTURE_CSV_HEADER, fixtureCsvRow(1, 1), fixtureCsvRow(2, 0)].join('\n') + '\n');
  const sub = await subscriber(broker.url, 'ids/v1/cli/h/alert');
  try {
    const bin = join(PROJECT_ROOT, 'bin', 'iot-ids.mjs');
    const r = await run(process.execPath, [bin, 'hub', '--bundle', bundle, '--flows', 'flows.csv', '--broker', broker.url,
      '--site', 'cli', '--hub', 'h', '--key', 'pub.pem', '--queue-dir', 'state', '--exit-at-end'], dir);
    assert.equal(r.code, 0, r.stderr);
    await until(() => sub.messages.length >= 1, 3000, 'alert');
    assert.equal(sub.messages[0].json.class, 'DoS');
    const e = await run(process.execPath, [bin, 'hub', '--bundle', bundle, '--broker', broker.url, '--site', 'cli',
      '--hub', 'h', '--key', 'pub.pem'], dir);
    assert.equal(e.code, 2);
    assert.match(e.stderr, /--pcap or --flows/);
  } finally {
    sub.client.end(true);
  }
});

test('iot-ids hub --pcap - reads a capture from stdin (as from tcpdump -w -)', async (t) => {
  const pcap = sharedData(t, 'pcaps', 'attack', 'pcaphunt_na-arpSpoofing.pcap');
  if (!pcap) return;
  const dir = join(root, 'stdin');
  const bundle = await buildFixtureBundle(join(dir, 'bundle'), keys, 'stdin-1');
  writeFileSync(join(dir, 'pub.pem'), keys.publicKeyPem);
  const sub = await subscriber(broker.url, 'ids/v1/cap/h/alert');
  try {
    const bin = join(PROJECT_ROOT, 'bin', 'iot-ids.mjs');
    const p = spawn(process.execPath, [bin, 'hub', '--bundle', bundle, '--pcap', '-', '--broker', broker.url, '--site', 'cap',
      '--hub', 'h', '--key', 'pub.pem', '--queue-dir', 'state', '--exit-at-end'], { cwd: dir, stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d) => (stderr += d));
    p.stdin.end(readFileSync(pcap));
    const code = await new Promise((r) => p.on('exit', r));
    assert.equal(code, 0, stderr);
    assert.match(stderr, /36 packets/);
    await until(() => sub.messages.length >= 1, 3000, 'rule alert');
    assert.equal(sub.messages[0].json.source, 'rule');
  } finally {
    sub.client.end(true);
  }
});
