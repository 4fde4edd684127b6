/**
 * What a device-split corpus keeps out of training: the validation and test devices' captures, metered as a hub
 * meters them (original addresses and timing, one fresh meter per capture) into `benign-validation.csv` and
 * `benign-test.csv` (labelled Normal), the list of test captures (`benign-test.txt`, absolute paths) and a folder
 * of links to them (`benign-test/<source>/<device>/...`) so a capture scorer can be pointed at exactly the devices no
 * training run saw, and `split.json`, the manifest of which device went where.
 */
import { closeSync, mkdirSync, openSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { FlowMeter, type MeterMode } from '../asm/flowmeter-host.ts';
import { formatFlowCsvRow, LABELED_FLOW_CSV_HEADER } from '../asm/flow-csv.ts';
import { readCapture } from '../capture/reader.ts';
import { filesOf, type DeviceSplit, type SplitSide } from './benign-split.ts';

const NORMAL = { label: 'Normal', cat: 'Normal', subCat: 'Normal' };

export interface HeldOutReport {
  side: SplitSide;
  devices: number;
  captures: number;
  flows: number;
}

/** Meters every capture of `files` (relative to `benignDir`) into one labelled CSV; returns the flow count. */
async function meterToCsv(benignDir: string, files: string[], csvPath: string, mode: MeterMode | undefined): Promise<number> {
  const fd = openSync(csvPath, 'w');
  let flows = 0;
  try {
    writeSync(fd, LABELED_FLOW_CSV_HEADER + '\n');
    for (const f of files) {
      const meter = await FlowMeter.create({ mode });
      const lines: string[] = [];
      for await (const b of readCapture(join(benignDir, f))) for (const r of meter.push(b)) lines.push(formatFlowCsvRow(r, NORMAL));
      for (const r of meter.flush()) lines.push(formatFlowCsvRow(r, NORMAL));
      if (lines.length) writeSync(fd, lines.join('\n') + '\n');
      flows += lines.length;
    }
  } finally {
    closeSync(fd);
  }
  return flows;
}

/** Links `out/benign-test/<rel>` → the capture, so a folder-walking scorer sees only the test devices. */
function linkTestCaptures(benignDir: string, files: string[], out: string): void {
  const root = join(out, 'benign-test');
  rmSync(root, { recursive: true, force: true });
  for (const f of files) {
    const link = join(root, f);
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(relative(dirname(link), join(benignDir, f)), link);
  }
}

/** Writes split.json, the held-out CSVs, benign-test.txt and benign-test/; returns per-side counts. */
export async function writeHeldOut(split: DeviceSplit, benignDir: string, out: string, mode: MeterMode | undefined, trainFlows: number): Promise<HeldOutReport[]> {
  const reports: HeldOutReport[] = [];
  for (const side of ['validation', 'test'] as const) {
    const files = filesOf(split, side);
    const flows = await meterToCsv(benignDir, files, join(out, `benign-${side}.csv`), mode);
    reports.push({ side, devices: split.devices.filter((d) => d.side === side).length, captures: files.length, flows });
  }
  const testFiles = filesOf(split, 'test');
  writeFileSync(join(out, 'benign-test.txt'), testFiles.map((f) => join(benignDir, f)).join('\n') + '\n');
  linkTestCaptures(benignDir, testFiles, out);
  const train = filesOf(split, 'train');
  reports.unshift({ side: 'train', devices: split.devices.filter((d) => d.side === 'train').length, captures: train.length, flows: trainFlows });
  writeFileSync(join(out, 'split.json'), JSON.stringify({
    about: 'Real benign captures split by device (lab/benign-split.ts): train devices are replayed into flows.csv; validation and test devices never are. benign-validation.csv / benign-test.csv hold their flows as a hub meters them; benign-test/ links the test captures.',
    seed: split.seed,
    shares: split.shares,
    sides: reports,
    devices: split.devices.map((d) => ({ id: d.id, source: d.source, side: d.side, files: d.files })),
  }, null, 2) + '\n');
  return reports;
}
