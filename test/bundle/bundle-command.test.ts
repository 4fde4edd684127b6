import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MODEL_FILE } from '../../shared/manifest.ts';
import { PROJECT_ROOT } from '../helpers/shared-data.ts';
import { keyPair, sampleBundle } from './fixture.ts';

const cli = (...args: string[]) =>
  spawnSync(process.execPath, [join(PROJECT_ROOT, 'bin', 'iot-ids.mjs'), 'bundle', ...args], { encoding: 'utf8', cwd: PROJECT_ROOT });

test('bundle verify: exit 0 for an intact bundle, 1 with the reason for a tampered file or a wrong key', async () => {
  const b = await sampleBundle();
  const pub = join(b.dir, '..', 'pub.pem');
  writeFileSync(pub, b.publicKeyPem);
  const ok = cli('verify', b.dir, '--key', pub);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /^ok: .*cnn-lstm 2026-11-30\.1-test \(int8\), release \d+, 3 files verified, key [0-9a-f]{16}/);

  const wrong = join(b.dir, '..', 'other.pem');
  writeFileSync(wrong, keyPair().publicKeyPem);
  const bad = cli('verify', b.dir, '--key', wrong);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /BAD_BUNDLE.*signature check failed/);

  const p = join(b.dir, MODEL_FILE);
  const orig = readFileSync(p);
  const t = Buffer.from(orig);
  t[0] ^= 4;
  writeFileSync(p, t);
  const tampered = cli('verify', b.dir, '--key', pub);
  assert.equal(tampered.status, 1);
  assert.match(tampered.stderr, /model\.int8\.onnx sha256 .*tampered/);

  // Without --key nothing is trusted by default: the command names both ways to give a key.
  writeFileSync(p, orig);
  const none = cli('verify', b.dir);
  assert.equal(none.status, 1);
  assert.match(none.stderr, /BAD_OPTION.*--key.*--insecure-demo-key/);
  // The demo key only by name, and said so: this bundle was not signed with it.
  const dev = cli('verify', b.dir, '--insecure-demo-key');
  assert.equal(dev.status, 1);
  assert.match(dev.stderr, /DEMO development key/);
  assert.match(dev.stderr, /signature check failed/);
});

test('bundle inspect prints the summary; bundle build re-signs a bundle with the demo key', async () => {
  const b = await sampleBundle();
  const ins = cli('inspect', b.dir);
  assert.equal(ins.status, 0, ins.stderr);
  assert.match(ins.stdout, /model +cnn-lstm 2026-11-30\.1-test · int8 · opset 17/);
  assert.match(ins.stdout, /labels +Normal \(≥ 0\.5\), Anomaly \(≥ 0\.5\)/);
  assert.match(ins.stdout, /signature not checked/);

  const src = join(b.dir, '..', 'run');
  cpSync(b.dir, join(src, 'bundle'), { recursive: true });
  const out = join(b.dir, '..', 'resigned');
  const built = cli('build', '--from', src, '--out', out);
  assert.equal(built.status, 0, built.stderr);
  assert.match(built.stdout, /ok: built and verified/);
  const v = cli('verify', out, '--insecure-demo-key');
  assert.equal(v.status, 0, v.stderr);
  // The signed manifest carries a release number: createdAt in seconds by default, or --release.
  assert.match(v.stdout, new RegExp(`release ${Math.floor(Date.parse('2026-11-30T08:00:00.000Z') / 1000)},`));
  const rel = cli('build', '--from', src, '--out', join(b.dir, '..', 'release-7'), '--release', '7');
  assert.equal(rel.status, 0, rel.stderr);
  assert.equal(JSON.parse(readFileSync(join(b.dir, '..', 'release-7', 'manifest.json'), 'utf8')).model.release, 7);
  const missing = cli('inspect', join(b.dir, 'nope'));
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /BAD_BUNDLE.*cannot read manifest\.json/);
});
