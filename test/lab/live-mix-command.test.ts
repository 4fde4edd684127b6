/** `lab live --mix` (lab/live/mix.ts): a recording folder becomes DIR/corpus.csv, and the mix is never read back as a scenario. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mixRecordings, MIX_DIR } from '../../lab/live/mix.ts';
import { LABELED_FLOW_CSV_HEADER } from '../../asm/flow-csv.ts';
import { sharedData, SHARED_DATA } from '../helpers/shared-data.ts';

const row = (tag: string, cat: string) => [tag, ...new Array(82).fill('0'), 'Anomaly', cat, cat].join(',');

test('mixRecordings: recorded scenarios and synthetic flows in DIR/corpus.csv, held-out side in DIR/corpus/, rerun-safe', { timeout: 300_000 }, async (t) => {
  if (!sharedData(t, 'pcaps', 'benign')) return; // the Normal class is made from the real benign captures
  const dir = mkdtempSync(join(tmpdir(), 'live-mixcmd-'));
  try {
    for (const [name, cat] of [['nmap-a', 'Scan'], ['nmap-b', 'Scan'], ['nmap-c', 'Scan'], ['hping-a', 'DoS']] as const) {
      mkdirSync(join(dir, name));
      writeFileSync(join(dir, name, 'flows.csv'), [LABELED_FLOW_CSV_HEADER, ...Array.from({ length: 20 }, (_, i) => row(`${name}#${i}`, cat))].join('\n') + '\n');
    }
    const first = await mixRecordings({ dir, dataDir: SHARED_DATA, flows: 200 });
    const corpus = readFileSync(join(dir, 'corpus.csv'), 'utf8').trim().split('\n');
    assert.equal(corpus[0], LABELED_FLOW_CSV_HEADER);
    const recorded = corpus.filter((l) => /^(nmap|hping)-[abc]#/.test(l));
    const trained = (first.live ?? []).filter((s) => s.side === 'train');
    assert.ok(trained.length >= 2, 'most scenarios train');
    assert.equal(recorded.length, trained.reduce((a, s) => a + s.used, 0), 'every trained scenario row is in corpus.csv');
    assert.ok(corpus.length - 1 > recorded.length, 'synthetic lab flows are mixed in too');
    assert.ok(existsSync(join(dir, MIX_DIR, 'live-test.csv')), 'the held-out scenarios stay beside it');
    const again = await mixRecordings({ dir, dataDir: SHARED_DATA, flows: 200 });
    assert.deepEqual((again.live ?? []).map((s) => s.scenario).sort(), ['hping-a', 'nmap-a', 'nmap-b', 'nmap-c'], 'DIR/corpus is not a scenario');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
