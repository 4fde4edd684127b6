/**
 * The real benign captures split **by device** between training, validation and test, so that a model's test
 * holds devices it never saw: flows of one device are so alike that a random row split puts its twins on both
 * sides and measures memory, not generalisation. A device is a folder of captures of one thing (an IoT Sentinel
 * device, an IoTEnsemble device, a lifecycle-camera device; `xiaodu_plug` and `xiaodu_plug_lifecycle` are the
 * same plug) or a single capture (each nDPI protocol capture, a top-level file). Each source (the first folder
 * level) is split on its own, so every side gets cameras, plugs and gateways from several collections.
 */
import { relative, sep } from 'node:path';
import { IdsError } from '../shared/errors.ts';
import { Rng } from '../shared/random.ts';
import { listCaptures } from './background.ts';

export type SplitSide = 'train' | 'validation' | 'test';

export interface BenignDevice {
  /** `source/device`, e.g. `iot-sentinel/EdimaxCam2`, `ndpi/mqtt`. */
  id: string;
  source: string;
  /** Capture paths relative to the benign folder, with `/` separators. */
  files: string[];
}

export interface DeviceSplitOptions {
  seed: number;
  /** Share of each source's devices held out for test (never trained on). */
  test: number;
  /** Share held out for validation (threshold calibration; never trained on). */
  validation: number;
}

export interface DeviceSplit {
  seed: number;
  shares: { test: number; validation: number };
  devices: (BenignDevice & { side: SplitSide })[];
}

/** Stems that name a phase of a device's life, not another device. */
const PHASE_SUFFIX = /_lifecycle$/;

function deviceOf(rel: string): { id: string; source: string } {
  const parts = rel.split('/');
  if (parts.length === 1) return { id: `benign/${parts[0].replace(/\.pcap(ng)?$/, '')}`, source: 'benign' };
  const source = parts[0];
  if (parts.length === 2) return { id: `${source}/${parts[1].replace(/\.pcap(ng)?$/, '')}`, source };
  return { id: `${source}/${parts[1].replace(PHASE_SUFFIX, '')}`, source };
}

/** The benign captures under `dir` grouped into devices (sorted by id, files sorted). */
export function listDevices(dir: string): BenignDevice[] {
  const byId = new Map<string, BenignDevice>();
  for (const path of listCaptures(dir)) {
    const rel = relative(dir, path).split(sep).join('/');
    const { id, source } = deviceOf(rel);
    let d = byId.get(id);
    if (!d) byId.set(id, (d = { id, source, files: [] }));
    d.files.push(rel);
  }
  const devices = [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
  for (const d of devices) d.files.sort();
  return devices;
}

function checkShare(name: string, v: number): void {
  if (!(v >= 0 && v < 1)) throw new IdsError('BAD_OPTION', `--${name} ${v}: expected a share in [0, 1)`);
}

/**
 * Assigns every device to one side, per source: a seeded shuffle, then round(n·test) devices to test and
 * round(n·validation) to validation, always leaving one for training (a source of one device trains).
 */
export function splitDevices(devices: readonly BenignDevice[], opts: DeviceSplitOptions): DeviceSplit {
  checkShare('test-devices', opts.test);
  checkShare('val-devices', opts.validation);
  if (opts.test + opts.validation >= 1) throw new IdsError('BAD_OPTION', `--test-devices ${opts.test} + --val-devices ${opts.validation}: must leave devices to train on`);
  const rng = new Rng((opts.seed ^ 0x5eed_d1ce) >>> 0);
  const out: DeviceSplit['devices'] = [];
  const sources = [...new Set(devices.map((d) => d.source))].sort();
  for (const source of sources) {
    const group = rng.shuffle(devices.filter((d) => d.source === source));
    const n = group.length;
    const nTest = Math.min(Math.round(n * opts.test), n - 1);
    const nVal = Math.min(Math.round(n * opts.validation), n - 1 - nTest);
    group.forEach((d, i) => out.push({ ...d, side: i < nTest ? 'test' : i < nTest + nVal ? 'validation' : 'train' }));
  }
  out.sort((a, b) => (a.id < b.id ? -1 : 1));
  return { seed: opts.seed, shares: { test: opts.test, validation: opts.validation }, devices: out };
}

/** Capture paths (relative to the benign folder) of one side. */
export function filesOf(split: DeviceSplit, side: SplitSide): string[] {
  return split.devices.filter((d) => d.side === side).flatMap((d) => d.files);
}
