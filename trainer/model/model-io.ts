/**
 * Save and load a tfjs LayersModel as the standard TF.js layers format (model.json + weights.bin) on disk,
 * without @tensorflow/tfjs-node (not installable here): the artifacts pass through tf.io save/load handlers.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdir, readFile, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { IdsError } from '../../shared/errors.ts';

export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';

/** The model.json layout tf.loadLayersModel reads (one weight group in one file). */
interface ModelJson {
  format: 'layers-model';
  generatedBy: string;
  convertedBy: null;
  modelTopology: unknown;
  trainingConfig?: unknown;
  weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
  userDefinedMetadata?: Record<string, unknown>;
}

function concatWeightData(data: ArrayBuffer | ArrayBuffer[] | undefined): Uint8Array {
  if (data === undefined) return new Uint8Array(0);
  if (!Array.isArray(data)) return new Uint8Array(data);
  const total = data.reduce((n, b) => n + b.byteLength, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const b of data) {
    out.set(new Uint8Array(b), at);
    at += b.byteLength;
  }
  return out;
}

/** Write `dir/model.json` and `dir/weights.bin` (files are written beside and renamed, so a crash leaves the old pair). */
export async function saveModel(model: tf.LayersModel, dir: string, metadata?: Record<string, unknown>): Promise<void> {
  await mkdir(dir, { recursive: true });
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weights = concatWeightData(artifacts.weightData as ArrayBuffer | ArrayBuffer[] | undefined);
      const json: ModelJson = {
        format: 'layers-model',
        generatedBy: `TensorFlow.js tfjs-layers v${tf.version_layers}`,
        convertedBy: null,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: [`./${WEIGHTS_BIN}`], weights: artifacts.weightSpecs ?? [] }],
      };
      if (artifacts.trainingConfig) json.trainingConfig = artifacts.trainingConfig;
      if (metadata) json.userDefinedMetadata = metadata;
      const tmpBin = join(dir, `${WEIGHTS_BIN}.tmp`);
      const tmpJson = join(dir, `${MODEL_JSON}.tmp`);
      await writeFile(tmpBin, weights);
      await writeFile(tmpJson, JSON.stringify(json));
      await rename(tmpBin, join(dir, WEIGHTS_BIN));
      await rename(tmpJson, join(dir, MODEL_JSON));
      return {
        modelArtifactsInfo: {
          dateSaved: new Date(),
          modelTopologyType: 'JSON',
          weightDataBytes: weights.byteLength,
        },
      };
    }),
  );
}

/** Read the pair written by saveModel (or by any tfjs layers-model export with a single weights file). */
export async function loadModel(dir: string): Promise<tf.LayersModel> {
  const jsonPath = join(dir, MODEL_JSON);
  let json: ModelJson;
  try {
    json = JSON.parse(await readFile(jsonPath, 'utf8')) as ModelJson;
  } catch (e) {
    throw new IdsError('BAD_MODEL', `cannot read model description ${jsonPath}: ${(e as Error).message}`, { cause: e });
  }
  if (!json.modelTopology || !Array.isArray(json.weightsManifest)) {
    throw new IdsError('BAD_MODEL', `${jsonPath} is not a TF.js layers model (no modelTopology/weightsManifest)`);
  }
  const specs: tf.io.WeightsManifestEntry[] = [];
  const chunks: Uint8Array[] = [];
  for (const group of json.weightsManifest) {
    specs.push(...group.weights);
    for (const p of group.paths) {
      const binPath = join(dir, p);
      try {
        chunks.push(await readFile(binPath));
      } catch (e) {
        throw new IdsError('BAD_MODEL', `cannot read weights ${binPath}: ${(e as Error).message}`, { cause: e });
      }
    }
  }
  const bytes = concatWeightData(chunks.map((c) => c.buffer.slice(c.byteOffset, c.byteOffset + c.byteLength) as ArrayBuffer));
  const allF32 = specs.every((s) => s.dtype === 'float32' && !s.quantization);
  const expected = specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1) * 4, 0);
  if (allF32 && bytes.byteLength !== expected) {
    throw new IdsError('BAD_MODEL', `${join(dir, WEIGHTS_BIN)}: ${bytes.byteLength} bytes, the manifest needs ${expected}`);
  }
  try {
    return await tf.loadLayersModel(
      tf.io.fromMemory({
        modelTopology: json.modelTopology as tf.io.ModelArtifacts['modelTopology'],
        weightSpecs: specs,
        weightData: bytes.buffer as ArrayBuffer,
        trainingConfig: json.trainingConfig as tf.io.ModelArtifacts['trainingConfig'],
      }),
    );
  } catch (e) {
    throw new IdsError('BAD_MODEL', `cannot build the model in ${jsonPath}: ${(e as Error).message}`, { cause: e });
  }
}
