/**
 * Held-out benign flows (a device-split corpus's benign-validation.csv) scaled as the model's inputs: every row
 * counts, whatever its label column says, and the columns are matched to the scaler by name (the file keeps all of
 * them; the model may read a pruned subset).
 */
import type { PortPolicy } from '../../shared/features.ts';
import type { ScalerSpec } from '../../shared/scaler.ts';
import { IdsError } from '../../shared/errors.ts';
import { loadDataset } from './dataset.ts';
import { applyScaler } from './scaler-fit.ts';

export async function loadBenignRows(files: string[], features: readonly string[], scaler: ScalerSpec, ports: PortPolicy | undefined): Promise<{ X: Float32Array; rows: number }> {
  const ds = await loadDataset({ files, labelColumn: 'Cat', ports, keepConstant: true });
  if (ds.rows === 0) throw new IdsError('EMPTY_INPUT', `--benign-val ${files.join(', ')}: no usable rows`);
  if (scaler.features.join() !== features.join()) throw new IdsError('BAD_OPTION', 'benign rows: the scaler and the model disagree on the features');
  return { X: applyScaler(scaler, ds, Uint32Array.from({ length: ds.rows }, (_, i) => i)), rows: ds.rows };
}
