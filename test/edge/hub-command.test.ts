/**
 * `iot-ids hub` (edge/hub-command.ts) as an operator meets it: no key, no start; the demo key only by name, said
 * in status, downlink off; an input that cannot be read makes `--exit-at-end` exit non-zero, as `iot-ids flows`.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEMO_KEY_FINGERPRINT } from '../../shared/bundle-verify.ts';
import { PROJECT_ROOT } from '../helpers/shared-data.ts';
import { buildFixtureBundle, devKeyPair, fixtureCsvRow, FIXTURE_CSV_HEADER, type KeyPair } from './fixtures/bundle.ts';
import { startAedes, subscriber, until, type Broker } from './fixtures/brokers.ts';

const BIN = join(PROJECT_ROOT, 'bin', 'iot-ids.mjs');
let root: string;
let keys: KeyPair;
let bundle: string;
let broker: Broker;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'iot-ids-hubcmd-'));
  keys = devKeyPair();
  bundle = await buildFixtureBundle(join(root, 'bundle'), keys, 'cmd-1');
  writeFileSync(join(root, 'pub.pem'), keys.publicKeyPem);
  broker = await startAedes();
});
after(async () => {
  await broker?.stop();
  rmSync(root, { recursive: true, force: true });
});

function hub(args: string[], cwd = root): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, 'hub', '--broker', broker.url, '--stats-ms', '0', ...args], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

test('hub without --key refuses to start and names --key and --insecure-demo-key', { timeout: 120_000 }, async () => {
  writeFileSync(join(root, 'one.csv'), [FIXTURE_CSV_HEADER, fixtureCsvRow(1, 1)].join('\n') + '\n');
  const r = await hub(['--bundle', bundle, '--flows', 'one.csv', '--site', 'k', '--hub', 'nokey', '--queue-dir', 'st-nokey', '--exit-at-end']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--key PEM .*required/);
  assert.match(r.stderr, /--insecure-demo-key/);
  const both = await hub(['--bundle', bundle, '--flows', 'one.csv', '--site', 'k', '--hub', 'nokey', '--key', 'pub.pem', '--insecure-demo-key', '--exit-at-end']);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /not both/);
});

test('--insecure-demo-key: the status says so and carries the demo key fingerprint; the downlink stays off', { timeout: 120_000 }, async () => {
  // A bundle signed with the committed demo key, as the demo's.
  const dev = {
    privateKeyPem: readFileSync(join(PROJECT_ROOT, 'models', 'dev-key', 'private.pem'), 'utf8'),
    publicKeyPem: readFileSync(join(PROJECT_ROOT, 'models', 'dev-key', 'public.pem'), 'utf8'),
  };
  const demoBundle = await buildFixtureBundle(join(root, 'demo-bundle'), dev, 'demo-1');
  writeFileSync(join(root, 'demo.csv'), [FIXTURE_CSV_HEADER, fixtureCsvRow(1, 1)].join('\n') + '\n');
  const r = await hub(['--bundle', demoBundle, '--flows', 'demo.csv', '--site', 'k', '--hub', 'demo', '--queue-dir', 'st-demo',
    '--insecure-demo-key', '--exit-at-end']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /DEMO key/);
  assert.match(r.stderr, /downlink is off on the demo key \(--demo-key-downlink/);
  const sub = await subscriber(broker.url, 'ids/v1/k/demo/status');
  try {
    await until(() => sub.messages.length > 0, 3000, 'retained status');
    const s = sub.messages[0].json;
    assert.equal(s.keyFingerprint, DEMO_KEY_FINGERPRINT);
    assert.equal(s.demoKey, true);
    assert.equal(s.state, 'offline');
  } finally {
    sub.client.end(true);
  }
});

test('hub --exit-at-end exits non-zero when its input cannot be read (as iot-ids flows does)', { timeout: 120_000 }, async () => {
  const dir = join(root, 'bad');
  mkdirSync(dir);
  writeFileSync(join(dir, 'empty.csv'), '');
  writeFileSync(join(dir, 'random.csv'), Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 256)));
  writeFileSync(join(dir, 'columns.csv'), 'a,b,c\n1,2,3\n');
  writeFileSync(join(dir, 'semicolons.csv'), [FIXTURE_CSV_HEADER, fixtureCsvRow(1, 1)].join('\n').replaceAll(',', ';') + '\n');
  writeFileSync(join(dir, 'empty.pcap'), '');
  writeFileSync(join(dir, 'random.pcap'), Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 104729 + 7) % 256)));
  const cases: [string, string][] = [
    ['--flows', 'empty.csv'], ['--flows', 'random.csv'], ['--flows', 'columns.csv'], ['--flows', 'semicolons.csv'],
    ['--flows', 'missing.csv'], ['--pcap', 'empty.pcap'], ['--pcap', 'random.pcap'],
  ];
  for (const [kind, file] of cases) {
    const r = await hub(['--bundle', bundle, kind, file, '--site', 'k', '--hub', 'bad', '--key', join(root, 'pub.pem'),
      '--queue-dir', 'state', '--exit-at-end'], dir);
    assert.equal(r.code, 1, `${kind} ${file}: ${r.stderr}`);
    assert.match(r.stderr, /the hub was degraded: input: /, `${kind} ${file}`);
  }
  // A readable input still exits 0.
  writeFileSync(join(dir, 'good.csv'), [FIXTURE_CSV_HEADER, fixtureCsvRow(1, 0)].join('\n') + '\n');
  const ok = await hub(['--bundle', bundle, '--flows', 'good.csv', '--site', 'k', '--hub', 'bad', '--key', join(root, 'pub.pem'),
    '--queue-dir', 'state', '--exit-at-end'], dir);
  assert.equal(ok.code, 0, ok.stderr);
});

test('--attach-features and --sample-normal through the CLI: alerts with features, samples, and bad values refused', { timeout: 120_000 }, async () => {
  const sub = await subscriber(broker.url, 'ids/v1/f/cli/#');
  try {
    const rows = Array.from({ length: 400 }, (_, i) => fixtureCsvRow(i, i % 10 === 0 ? 1 : 0));
    writeFileSync(join(root, 'mixed.csv'), [FIXTURE_CSV_HEADER, ...rows].join('\n') + '\n');
    const r = await hub(['--bundle', bundle, '--flows', 'mixed.csv', '--site', 'f', '--hub', 'cli', '--key', 'pub.pem',
      '--queue-dir', 'st-feat', '--attach-features', '--sample-normal', '2', '--sample-privacy', 'drop', '--sample-budget', '1000000', '--exit-at-end']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /features on alerts, sampling ~1 in 2 Normal flows \(≤ 1000000 B\/min, addresses drop\)/);
    await until(() => sub.messages.filter((m) => m.topic.endsWith('/alert')).length === 40, 5000, '40 alerts');
    for (const m of sub.messages.filter((x) => x.topic.endsWith('/alert'))) assert.match(m.json.features, /^[A-Za-z0-9+/]{43}=$/);
    // A file is read as soon as the hub starts: samples picked before the broker connection is up are dropped
    // (never queued) and counted.
    await until(() => sub.messages.some((m) => m.topic.endsWith('/stats')), 5000, 'final stats');
    const stats = sub.messages.filter((m) => m.topic.endsWith('/stats')).at(-1)!.json;
    const samples = sub.messages.filter((m) => m.topic.endsWith('/sample'));
    assert.equal(samples.length, stats.samples);
    const picked = stats.samples + stats.samplesDropped;
    assert.ok(picked > 100 && picked < 260, `${picked} picked of 360 Normal flows at 1 in 2`);
    assert.ok(samples.every((m) => m.json.flow === undefined));
    const status = sub.messages.filter((m) => m.topic.endsWith('/status')).at(-1)!.json;
    assert.equal(status.features.length, 8);
    assert.equal(typeof status.release, 'number');
  } finally {
    sub.client.end(true);
  }
  for (const [flag, value, pattern] of [['--sample-privacy', 'plain', /hash, drop, keep/], ['--sample-budget', '100', /≥ 8192/],
    ['--sample-normal', '1.5', /sample-normal/]] as const) {
    const bad = await hub(['--bundle', bundle, '--flows', 'mixed.csv', '--site', 'f', '--hub', 'bad', '--key', 'pub.pem',
      '--queue-dir', 'st-bad', flag, value, '--exit-at-end']);
    assert.equal(bad.code, 2, `${flag} ${value}: ${bad.stderr}`);
    assert.match(bad.stderr, pattern);
  }
});
