/**
 * `lab live --mix`: one training corpus from a recording folder, the synthetic lab and the real benign captures
 * (lab/corpus.ts with its device split and live mixing), written as DIR/corpus.csv. The held-out sides a fair
 * evaluation needs (benign test devices, live test scenarios, split.json) stay beside it in DIR/corpus/.
 */
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runLab, type LabReport } from '../corpus.ts';

/** The folder under a recording that holds the mix; never read back as a scenario. */
export const MIX_DIR = 'corpus';

export interface MixOptions {
  /** The recording folder (DIR/<scenario>/flows.csv). */
  dir: string;
  dataDir: string;
  seed?: number;
  /** Synthetic flows beside the recordings (default 30,000, the shipped model's corpus size). */
  flows?: number;
  log?: (line: string) => void;
}

export async function mixRecordings(o: MixOptions): Promise<LabReport> {
  const out = join(o.dir, MIX_DIR);
  const report = await runLab({
    seed: o.seed ?? 1,
    flows: o.flows ?? 30_000,
    out,
    mode: 'corrected',
    dataDir: o.dataDir,
    // The shipped model's corpus recipe (models/*/REPRODUCE.md): benign devices split 0.3 test / 0.15 validation,
    // twice the Normal share, and no relayed real captures as MITM (they taught the model that any unseen device is MITM).
    deviceSplit: { test: 0.3, validation: 0.15 },
    shares: { normal: 4 },
    replayShares: { 'mitm-arp-spoofing': 0 },
    live: { dir: o.dir, test: 0.3, maxPerScenario: 1500, skip: [MIX_DIR] },
    log: o.log,
  });
  writeFileSync(join(out, 'report.json'), JSON.stringify({ ...report, seconds: undefined }, null, 2) + '\n');
  copyFileSync(join(out, 'flows.csv'), join(o.dir, 'corpus.csv'));
  return report;
}
