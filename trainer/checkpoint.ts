/**
 * Training checkpoints: everything needed to continue a run exactly where it stopped (model weights, Adam state,
 * schedule and early-stopping state, position inside the epoch). Batch order and dropout masks are derived from
 * (seed, epoch, batch), so no RNG state needs saving. checkpoint.json is written last (via rename): a crash
 * mid-save leaves the previous checkpoint readable.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdir, readFile, writeFile, rename, access } from 'node:fs/promises';
import { join } from 'node:path';
import { IdsError } from '../shared/errors.ts';
import type { AdamState } from './backend/adam.ts';
import { saveModel } from './model/model-io.ts';

export interface LoopState {
  /** 0-based epoch to run (or continue) next. */
  epoch: number;
  /** Next batch within that epoch (0 when the epoch has not started). */
  batch: number;
  /** Running sums of the epoch in progress. */
  partial: { lossSum: number; correct: number; seen: number; seconds: number };
  history: unknown[];
  bestEpoch: number;
  bestScore: number | null;
  badEpochs: number;
  plateauBest: number | null;
  plateauBad: number;
  lrScale: number;
  stoppedEarly: boolean;
  finished: boolean;
}

export interface CheckpointMeta {
  version: 1;
  seed: number;
  batchSize: number;
  rows: number;
  features: number;
  classes: number;
  savedAt: string;
  adamT: number;
  weightSizes: number[];
  hasBest: boolean;
  /** A weight average (train-loop emaDecay) is saved in ema.bin; absent in older checkpoints. */
  hasEma?: boolean;
  state: LoopState;
}

const CHECKPOINT_JSON = 'checkpoint.json';

function packArrays(arrs: readonly Float32Array[]): Uint8Array {
  const total = arrs.reduce((n, a) => n + a.length, 0);
  const out = new Float32Array(total);
  let at = 0;
  for (const a of arrs) {
    out.set(a, at);
    at += a.length;
  }
  return new Uint8Array(out.buffer);
}

function unpackArrays(buf: Buffer, sizes: readonly number[], file: string): Float32Array[] {
  const need = sizes.reduce((n, s) => n + s, 0) * 4;
  if (buf.byteLength !== need) throw new IdsError('BAD_MODEL', `${file}: ${buf.byteLength} bytes, expected ${need}`);
  const all = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  const out: Float32Array[] = [];
  let at = 0;
  for (const s of sizes) {
    out.push(all.slice(at, at + s));
    at += s;
  }
  return out;
}

export async function writeCheckpoint(
  dir: string,
  model: tf.LayersModel,
  meta: Omit<CheckpointMeta, 'savedAt' | 'version' | 'adamT' | 'weightSizes' | 'hasBest' | 'hasEma'>,
  adam: AdamState,
  best: Float32Array[] | null,
  ema: Float32Array[] | null = null,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  await saveModel(model, join(dir, 'model'));
  await writeFile(join(dir, 'optimizer.bin.tmp'), packArrays([...adam.m, ...adam.v]));
  await rename(join(dir, 'optimizer.bin.tmp'), join(dir, 'optimizer.bin'));
  if (best) {
    await writeFile(join(dir, 'best.bin.tmp'), packArrays(best));
    await rename(join(dir, 'best.bin.tmp'), join(dir, 'best.bin'));
  }
  if (ema) {
    await writeFile(join(dir, 'ema.bin.tmp'), packArrays(ema));
    await rename(join(dir, 'ema.bin.tmp'), join(dir, 'ema.bin'));
  }
  const full: CheckpointMeta = {
    version: 1,
    ...meta,
    savedAt: new Date().toISOString(),
    adamT: adam.t,
    weightSizes: adam.m.map((a) => a.length),
    hasBest: best !== null,
    hasEma: ema !== null,
  };
  await writeFile(join(dir, `${CHECKPOINT_JSON}.tmp`), JSON.stringify(full, null, 1));
  await rename(join(dir, `${CHECKPOINT_JSON}.tmp`), join(dir, CHECKPOINT_JSON));
}

export async function hasCheckpoint(dir: string): Promise<boolean> {
  try {
    await access(join(dir, CHECKPOINT_JSON));
    return true;
  } catch {
    return false;
  }
}

export interface LoadedCheckpoint {
  meta: CheckpointMeta;
  adam: AdamState;
  best: Float32Array[] | null;
  ema: Float32Array[] | null;
  modelDir: string;
}

export async function readCheckpoint(dir: string): Promise<LoadedCheckpoint> {
  const file = join(dir, CHECKPOINT_JSON);
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(await readFile(file, 'utf8')) as CheckpointMeta;
  } catch (e) {
    throw new IdsError('BAD_MODEL', `cannot read checkpoint ${file}: ${(e as Error).message}`, { cause: e });
  }
  if (meta.version !== 1 || !meta.state) throw new IdsError('BAD_MODEL', `${file}: unknown checkpoint format`);
  const read = async (name: string) => {
    try {
      return await readFile(join(dir, name));
    } catch (e) {
      throw new IdsError('BAD_MODEL', `checkpoint ${join(dir, name)}: ${(e as Error).message}`, { cause: e });
    }
  };
  const mv = unpackArrays(await read('optimizer.bin'), [...meta.weightSizes, ...meta.weightSizes], join(dir, 'optimizer.bin'));
  const k = meta.weightSizes.length;
  const best = meta.hasBest ? unpackArrays(await read('best.bin'), meta.weightSizes, join(dir, 'best.bin')) : null;
  const ema = meta.hasEma ? unpackArrays(await read('ema.bin'), meta.weightSizes, join(dir, 'ema.bin')) : null;
  return { meta, adam: { t: meta.adamT, m: mv.slice(0, k), v: mv.slice(k) }, best, ema, modelDir: join(dir, 'model') };
}
