import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadScenarios, pickScenarios } from '../../../lab/live/scenario.ts';
import { expand, missingTools } from '../../../lab/live/runner.ts';
import { isIdsError } from '../../../shared/errors.ts';

const all = loadScenarios();

test('the scenario files cover the four families the corpus needs, with distinct real tools', () => {
  assert.ok(all.length >= 12, `${all.length} scenarios`);
  const by = (cat: string) => all.filter((s) => s.cat === cat);
  const nmapFlags = by('Scan').map((s) => s.command.join(' '));
  for (const flag of ['-O', '-sV', '-sU', '-sn']) assert.ok(nmapFlags.some((c) => c.split(' ').includes(flag)), `a scan with ${flag}`);
  assert.ok(by('Scan').length >= 5);
  const dos = by('DoS').map((s) => s.subCat);
  for (const sub of ['DoS-Synflooding', 'DoS-UDP Flooding', 'DoS-ICMP Flooding', 'DoS-Reflection Flooding']) assert.ok(dos.includes(sub), sub);
  const mirai = by('Mirai').map((s) => s.command.slice(0, 2).join(' '));
  for (const m of ['mirai-bot bruteforce', 'mirai-raw scan']) assert.ok(mirai.includes(m), m);
  assert.ok(by('Mirai').filter((s) => / Flooding|flooding/.test(s.subCat)).length >= 2);
  assert.ok(by('MITM ARP Spoofing').some((s) => s.tool === 'arpspoof' && s.during.length > 0));
  for (const s of all) assert.ok(s.seconds <= 45, `${s.name} is bounded to ${s.seconds} s`);
});

test('every scenario command expands to lab addresses only', () => {
  for (const s of all) {
    const files = Object.fromEntries(Object.keys(s.files).map((k) => [k, `/tmp/${k}`]));
    const argv = expand(s.command, files);
    for (const a of argv) {
      assert.ok(!a.includes('{'), `${s.name}: unexpanded ${a}`);
      for (const addr of a.match(/\b\d+\.\d+\.\d+\.\d+\b/g) ?? []) assert.match(addr, /^198\.1[89]\./, `${s.name}: ${addr}`);
    }
  }
  assert.deepEqual(expand(['{cam}', '{mac:gw}', '{attacker}'], {}), ['198.18.0.10', '02:18:00:00:00:01', '198.18.0.66']);
  assert.throws(() => expand(['{toaster}'], {}), (e) => isIdsError(e, 'BAD_SCENARIO'));
});

test('pickScenarios takes all or named ones and names the unknown', () => {
  assert.equal(pickScenarios(all, 'all').length, all.length);
  assert.deepEqual(pickScenarios(all, 'nmap-os,mirai-scan').map((s) => s.name).sort(), ['mirai-scan', 'nmap-os']);
  assert.throws(() => pickScenarios(all, 'nmap-os,nmap-everything'), /unknown nmap-everything/);
});

test('a bad scenario file is refused with its name and field', () => {
  const dir = mkdtempSync(join(tmpdir(), 'live-scn-'));
  try {
    writeFileSync(join(dir, 'x.json'), JSON.stringify({ name: 'x', description: '', cat: 'Scan', subCat: 'S', tool: 'nmap', command: ['nmap'], seconds: 600, victims: ['cam'] }));
    assert.throws(() => loadScenarios(dir), (e) => isIdsError(e, 'BAD_SCENARIO') && /x\.json: seconds/.test(e.message));
    writeFileSync(join(dir, 'x.json'), JSON.stringify({ name: 'y', description: '', cat: 'Scan', subCat: 'S', tool: 'nmap', command: ['nmap'], seconds: 5, victims: ['cam'] }));
    assert.throws(() => loadScenarios(dir), /must match the file name/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('missingTools names an absent tool with its package and finds the installed ones', () => {
  const fake = { ...all[0], command: ['no-such-scanner-here', '-x'] };
  assert.deepEqual(missingTools([fake]).filter((m) => m.startsWith('no-such')), ['no-such-scanner-here (Debian package no-such-scanner-here)']);
  assert.ok(!missingTools([{ ...all[0], command: ['sh'] }]).some((m) => m.startsWith('sh ')));
});
