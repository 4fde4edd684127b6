import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mixLive } from '../../lab/live-mix.ts';
import { LABELED_FLOW_CSV_HEADER } from '../../asm/flow-csv.ts';
import { isIdsError } from '../../shared/errors.ts';

/** A row of 83 flow cells (the first names the scenario and row) and the three labels. */
const row = (tag: string, cat: string) => [tag, ...new Array(82).fill('0'), cat === 'Normal' ? 'Normal' : 'Anomaly', cat, cat].join(',');

function recording(dir: string, scenarios: Record<string, { cat: string; n: number; normal?: number }>): void {
  for (const [name, s] of Object.entries(scenarios)) {
    mkdirSync(join(dir, name), { recursive: true });
    const rows = [...Array.from({ length: s.n }, (_, i) => row(`${name}#${i}`, s.cat)), ...Array.from({ length: s.normal ?? 0 }, (_, i) => row(`${name}#n${i}`, 'Normal'))];
    writeFileSync(join(dir, name, 'flows.csv'), [LABELED_FLOW_CSV_HEADER, ...rows].join('\n') + '\n');
  }
}

test('mixLive: whole scenarios on one side, split per family, capped train rows, test rows whole', () => {
  const dir = mkdtempSync(join(tmpdir(), 'live-mix-'));
  try {
    recording(dir, {
      'nmap-ss': { cat: 'Scan', n: 50, normal: 5 }, 'nmap-su': { cat: 'Scan', n: 40 }, 'nmap-o': { cat: 'Scan', n: 30 }, 'masscan': { cat: 'Scan', n: 3000 },
      'hping-syn': { cat: 'DoS', n: 20 }, 'hping-udp': { cat: 'DoS', n: 20 },
      'arpspoof': { cat: 'MITM ARP Spoofing', n: 10, normal: 30 },
    });
    const trained: string[] = [];
    const testCsv = join(dir, 'live-test.csv');
    const r = mixLive(dir, { seed: 2, test: 0.3, maxPerScenario: 100 }, (l) => trained.push(l), testCsv);
    const side = Object.fromEntries(r.map((x) => [x.scenario, x.side]));
    assert.equal(r.filter((x) => x.family === 'Scan' && x.side === 'test').length, 1, 'round(4 × 0.3) Scan scenarios held out');
    assert.equal(r.filter((x) => x.family === 'DoS' && x.side === 'test').length, 1);
    assert.equal(side.arpspoof, 'train', 'a family of one scenario trains');
    assert.equal(r.find((x) => x.scenario === 'arpspoof')!.family, 'MITM ARP Spoofing', 'the family is the main attack Cat, not Normal');
    const tested = readFileSync(testCsv, 'utf8').trim().split('\n').slice(1);
    const scen = (l: string) => l.split(',')[0].split('#')[0];
    for (const l of trained) assert.equal(side[scen(l)], 'train', l.slice(0, 20));
    for (const l of tested) assert.equal(side[scen(l)], 'test', l.slice(0, 20));
    assert.equal(tested.length, r.filter((x) => x.side === 'test').reduce((a, x) => a + x.flows, 0), 'test scenarios whole');
    const masscan = r.find((x) => x.scenario === 'masscan')!;
    if (masscan.side === 'train') assert.ok(masscan.used > 50 && masscan.used < 150, `capped sample: ${masscan.used}`);
    assert.deepEqual(mixLive(dir, { seed: 2, test: 0.3, maxPerScenario: 100 }, () => {}, testCsv), r, 'same seed, same split');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('mixLive: a recording without flows, or with another header, is a clear error', () => {
  const dir = mkdtempSync(join(tmpdir(), 'live-mix-'));
  try {
    assert.throws(() => mixLive(dir, { seed: 1, test: 0.3, maxPerScenario: 10 }, () => {}, join(dir, 't.csv')), (e) => isIdsError(e) && e.code === 'EMPTY_INPUT');
    mkdirSync(join(dir, 'x'));
    writeFileSync(join(dir, 'x', 'flows.csv'), 'a,b,c\n1,2,3\n');
    assert.throws(() => mixLive(dir, { seed: 1, test: 0.3, maxPerScenario: 10 }, () => {}, join(dir, 't.csv')), (e) => isIdsError(e) && e.code === 'BAD_HEADER');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
