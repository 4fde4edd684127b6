/**
 * The hub's raw row layout: every column a model may use (MODEL_CANDIDATE_COLUMNS: the 76 statistical features,
 * ports and protocol), whatever the input. Inputs fill rows in this layout; the wasm scaler picks each model
 * feature out of it through a column map, so a new bundle with other features needs no change to the inputs.
 */
import { MODEL_CANDIDATE_COLUMNS, STAT_FEATURES, type Column } from '../shared/features.ts';
import { IdsError } from '../shared/errors.ts';

export const RAW_COLUMNS: readonly Column[] = MODEL_CANDIDATE_COLUMNS;

const INDEX: ReadonlyMap<string, number> = new Map(RAW_COLUMNS.map((c, i) => [c, i]));

export const rawIndex = (c: string): number | undefined => INDEX.get(c);

/** Model feature j ← raw column map[j]; names the first feature the raw layout lacks. */
export function columnMapFor(features: readonly string[]): Int32Array {
  const map = new Int32Array(features.length);
  features.forEach((f, j) => {
    const k = INDEX.get(f);
    if (k === undefined) {
      throw new IdsError('BAD_BUNDLE', `model feature "${f}" (#${j}) is not a flow column the hub can supply`);
    }
    map[j] = k;
  });
  return map;
}

/** Raw index of each STAT_FEATURES entry (where a FlowRecord's features go), plus the port/protocol slots. */
export const STAT_TO_RAW: Int32Array = Int32Array.from(STAT_FEATURES, (c) => INDEX.get(c)!);
export const RAW_SRC_PORT = INDEX.get('Src_Port')!;
export const RAW_DST_PORT = INDEX.get('Dst_Port')!;
export const RAW_PROTOCOL = INDEX.get('Protocol')!;
