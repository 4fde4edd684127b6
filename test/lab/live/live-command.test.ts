import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../helpers/shared-data.ts';

const CLI = join(PROJECT_ROOT, 'bin', 'iot-ids.mjs');
const live = (args: string[]) => spawnSync(process.execPath, [CLI, 'lab', 'live', ...args], { cwd: PROJECT_ROOT, encoding: 'utf8' });

test('`lab live --list` names every scenario with its labels', () => {
  const r = live(['--list']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^nmap-os\s+Scan\s+Scan Port OS\s+nmap OS detection/m);
  assert.match(r.stdout, /^arpspoof-gateway\s+MITM ARP Spoofing/m);
});

test('`lab live` without --out, or with an unknown scenario, exits 2 naming the problem', () => {
  const a = live(['--scenarios', 'nmap-os']);
  assert.equal(a.status, 2);
  assert.match(a.stderr, /--out DIR is required/);
  const b = live(['--scenarios', 'nmap-everything', '--out', join(tmpdir(), 'never-written')]);
  assert.equal(b.status, 2);
  assert.match(b.stderr, /BAD_SCENARIO: --scenarios nmap-everything: unknown nmap-everything/);
});

test('without CAP_NET_ADMIN the live lab says so and exits 3', (t) => {
  if (!existsSync('/usr/sbin/capsh') || process.getuid?.() !== 0) return t.skip('needs root and capsh to drop CAP_NET_ADMIN');
  const out = mkdtempSync(join(tmpdir(), 'live-nocap-'));
  try {
    const r = spawnSync('/usr/sbin/capsh', ['--drop=cap_net_admin,cap_sys_admin', '--', '-c', `"${process.execPath}" "${CLI}" lab live --scenarios nmap-os --out "${out}"`], { cwd: PROJECT_ROOT, encoding: 'utf8' });
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stderr, /NO_NETNS: the live lab needs network namespaces \(root or CAP_NET_ADMIN/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
