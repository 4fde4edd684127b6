/**
 * The host side of the wasm scaler (asm/assembly/scale.ts): raw f64 rows go into wasm memory, the Float32 model
 * input comes out, with no per-row JS objects. The module is the bundle's preprocess.wasm (shared with the flow
 * meter), so its exports are prefixed `sc_`.
 */
import type { ScalerSpec } from '../shared/scaler.ts';
import { validateScalerSpec } from '../shared/scaler.ts';
import { IdsError } from '../shared/errors.ts';

interface ScaleExports {
  memory: WebAssembly.Memory;
  sc_init(features: number, nInputs: number): void;
  sc_transformsPtr(): number;
  sc_minPtr(): number;
  sc_maxPtr(): number;
  sc_colMapPtr(): number;
  sc_reserve(rows: number): number;
  sc_inputPtr(): number;
  sc_outputPtr(): number;
  sc_scale(rows: number): void;
  // Version 2 (lookup tables); only needed when a feature uses one.
  sc_lookupReserve(entries: number): void;
  sc_lookupOffPtr(): number;
  sc_lookupLenPtr(): number;
  sc_lookupFallbackPtr(): number;
  sc_lookupKeysPtr(): number;
  sc_lookupValuesPtr(): number;
}

const REQUIRED = ['sc_init', 'sc_transformsPtr', 'sc_minPtr', 'sc_maxPtr', 'sc_colMapPtr', 'sc_reserve',
  'sc_inputPtr', 'sc_outputPtr', 'sc_scale'] as const;
const REQUIRED_LOOKUP = ['sc_lookupReserve', 'sc_lookupOffPtr', 'sc_lookupLenPtr', 'sc_lookupFallbackPtr',
  'sc_lookupKeysPtr', 'sc_lookupValuesPtr'] as const;
const TRANSFORM_CODES = { none: 0, log1p: 1, lookup: 2 } as const;

/**
 * Instantiates a wasm module, answering every import it declares: `env.abort` throws with the AS message
 * location, anything else is a no-op (the flow meter's optional hooks; the scaler imports nothing else).
 */
export async function instantiatePreprocess(bytes: Uint8Array): Promise<WebAssembly.Instance> {
  let mod: WebAssembly.Module;
  try {
    mod = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
  } catch (e) {
    throw new IdsError('BAD_BUNDLE', `preprocess.wasm does not compile: ${(e as Error).message}`, { cause: e });
  }
  const imports: Record<string, Record<string, WebAssembly.ImportValue>> = {};
  for (const imp of WebAssembly.Module.imports(mod)) {
    if (imp.kind !== 'function') continue;
    imports[imp.module] ??= {};
    imports[imp.module][imp.name] =
      imp.module === 'env' && imp.name === 'abort'
        ? (_msg: number, _file: number, line: number, col: number) => {
            throw new IdsError('BAD_MODEL', `preprocess.wasm aborted at line ${line}:${col}`);
          }
        : imp.module === 'env' && imp.name === 'seed'
          ? () => 0x9e3779b9 // AS' Math.random seed; the scaler never draws random numbers
          : () => 0;
  }
  return WebAssembly.instantiate(mod, imports);
}

/** Scales raw rows through wasm. Not re-entrant: one batch at a time (the classifier owns one). */
export class WasmScaler {
  readonly features: number;
  readonly inputs: number;
  private readonly ex: ScaleExports;
  private buf: ArrayBuffer | undefined;
  private cap = 0;
  private inView = new Float64Array(0);
  private outView = new Float32Array(0);

  /**
   * @param columnMap model feature j ← raw input column columnMap[j] (length = spec.features.length)
   * @param nInputs raw columns per input row
   */
  constructor(instance: WebAssembly.Instance, spec: ScalerSpec, columnMap: ArrayLike<number>, nInputs: number) {
    const ex = instance.exports as unknown as ScaleExports;
    const has = (k: string) => typeof (ex as unknown as Record<string, unknown>)[k] === 'function';
    for (const k of REQUIRED) {
      if (!has(k)) throw new IdsError('BAD_BUNDLE', `preprocess.wasm lacks the export ${k} (built without asm/assembly/scale.ts?)`);
    }
    validateScalerSpec(spec);
    const usesLookup = spec.transforms.includes('lookup');
    for (const k of usesLookup ? REQUIRED_LOOKUP : []) {
      if (!has(k)) throw new IdsError('BAD_BUNDLE', `the scaler uses lookup tables but preprocess.wasm lacks ${k} (built before scaler version 2)`);
    }
    const f = spec.features.length;
    if (columnMap.length !== f) throw new IdsError('BAD_OPTION', `column map has ${columnMap.length} entries, want ${f}`);
    for (let j = 0; j < f; j++) {
      const c = columnMap[j];
      if (!Number.isInteger(c) || c < 0 || c >= nInputs) {
        throw new IdsError('BAD_OPTION', `column map entry ${j} (${spec.features[j]}) = ${c} is outside 0..${nInputs - 1}`);
      }
    }
    this.ex = ex;
    this.features = f;
    this.inputs = nInputs;
    ex.sc_init(f, nInputs);
    if (usesLookup) {
      const entries = spec.lookups!.reduce((n, t) => n + (t ? t.keys.length : 0), 0);
      // Reserve first: it may grow memory, which detaches every view taken before it.
      ex.sc_lookupReserve(entries);
      const m = ex.memory.buffer;
      const off = new Int32Array(m, ex.sc_lookupOffPtr(), f);
      const len = new Int32Array(m, ex.sc_lookupLenPtr(), f);
      const fallback = new Float64Array(m, ex.sc_lookupFallbackPtr(), f);
      const keys = new Float64Array(m, ex.sc_lookupKeysPtr(), Math.max(1, entries));
      const values = new Float64Array(m, ex.sc_lookupValuesPtr(), keys.length);
      let at = 0;
      spec.lookups!.forEach((t, j) => {
        off[j] = at;
        len[j] = t ? t.keys.length : 0;
        fallback[j] = t ? t.fallback : 0;
        if (!t) return;
        keys.set(t.keys, at);
        values.set(t.values, at);
        at += t.keys.length;
      });
    }
    const mem = ex.memory.buffer;
    const tr = new Int32Array(mem, ex.sc_transformsPtr(), f);
    const lo = new Float64Array(mem, ex.sc_minPtr(), f);
    const hi = new Float64Array(mem, ex.sc_maxPtr(), f);
    const cm = new Int32Array(mem, ex.sc_colMapPtr(), f);
    for (let j = 0; j < f; j++) {
      tr[j] = TRANSFORM_CODES[spec.transforms[j]];
      lo[j] = spec.min[j];
      hi[j] = spec.max[j];
      cm[j] = columnMap[j];
    }
    this.reserve(256);
  }

  /** Makes room for `rows` rows; the views returned by input()/output() change after this. */
  reserve(rows: number): void {
    if (rows > this.cap) this.cap = this.ex.sc_reserve(rows);
    this.refresh();
  }

  private refresh(): void {
    const mem = this.ex.memory.buffer;
    if (mem === this.buf && this.inView.length === this.cap * this.inputs) return;
    this.buf = mem;
    this.inView = new Float64Array(mem, this.ex.sc_inputPtr(), this.cap * this.inputs);
    this.outView = new Float32Array(mem, this.ex.sc_outputPtr(), this.cap * this.features);
  }

  get capacity(): number {
    return this.cap;
  }

  /** The raw input block [capacity × inputs]; write row i at i × inputs. Valid until reserve() or a memory grow. */
  input(): Float64Array {
    this.refresh();
    return this.inView;
  }

  /** Scales the first `rows` rows; returns a view of the output [rows × features] (copy it before the next call). */
  scale(rows: number): Float32Array {
    if (rows > this.cap) throw new IdsError('BAD_OPTION', `scale(${rows}) exceeds the reserved ${this.cap} rows`);
    this.ex.sc_scale(rows);
    this.refresh();
    return this.outView.subarray(0, rows * this.features);
  }
}
