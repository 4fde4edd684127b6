import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { DEFAULT_WASM_PATH } from '../../asm/flowmeter-host.ts';
import { PROJECT_ROOT } from '../helpers/shared-data.ts';

const cli = (args: string[]) =>
  spawnSync(process.execPath, [join(PROJECT_ROOT, 'bin', 'iot-ids.mjs'), 'lab', ...args], { cwd: PROJECT_ROOT, encoding: 'utf8' });

test('`iot-ids lab` writes flows.csv, pcaps and report.json and prints the counts', (t) => {
  if (!existsSync(DEFAULT_WASM_PATH)) return t.skip('flow meter wasm missing: run npm run build:asm');
  const out = mkdtempSync(join(tmpdir(), 'lab-cli-'));
  try {
    const r = cli(['--seed', '3', '--flows', '200', '--out', out, '--scenario', 'mirai-ack-flooding,dos-synflooding', '--no-real']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /per class:\n\s+DoS\s+\d+\n\s+Mirai\s+\d+/);
    assert.match(r.stdout, /Mirai-Ackflooding\s+\d+/);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    const rows = readFileSync(join(out, 'flows.csv'), 'utf8').trimEnd().split('\n').length - 1;
    assert.equal(report.flows, rows);
    assert.ok(existsSync(join(out, 'pcaps', 'mirai-ack-flooding.pcap')));
    assert.ok(existsSync(join(out, 'pcaps', 'dos-synflooding.pcap')));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('`iot-ids lab` with a bad option exits 2 naming it', () => {
  const r = cli(['--flows', 'many', '--out', join(tmpdir(), 'never-written')]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /BAD_OPTION: --flows/);
  const s = cli(['--out', join(tmpdir(), 'never-written'), '--mode', 'fast']);
  assert.equal(s.status, 2);
  assert.match(s.stderr, /--mode fast/);
});
