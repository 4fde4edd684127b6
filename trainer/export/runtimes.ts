/**
 * Running an ONNX model in batches on onnxruntime-node (the trainer's reference) and onnxruntime-web's wasm
 * backend (what a hub runs), from Node. Used by parity tests, calibration, the int8 comparison and the bench.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { IdsError } from '../../shared/errors.ts';

export type Runtime = 'ort-node' | 'ort-web';

export interface Session {
  runtime: Runtime;
  inputName: string;
  outputNames: string[];
  /** Runs rows [rows × features] (flattened) through the model; returns each requested output, concatenated over batches. */
  run(X: Float32Array, rows: number, outputs?: string[], batch?: number): Promise<Record<string, Float32Array>>;
  release(): Promise<void>;
}

type OrtModule = typeof import('onnxruntime-node');

let webReady: Promise<OrtModule> | undefined;

/** onnxruntime-web in Node: one thread (as on a hub), wasm files from the installed package. */
export function ortWeb(): Promise<OrtModule> {
  webReady ??= (async () => {
    const ort = (await import('onnxruntime-web')) as unknown as OrtModule & { env: any };
    const req = createRequire(import.meta.url);
    const dist = dirname(req.resolve('onnxruntime-web/ort-wasm-simd-threaded.wasm'));
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.wasmPaths = join(dist, '/');
    ort.env.logLevel = 'error';
    return ort;
  })();
  return webReady;
}

export async function ortNode(): Promise<OrtModule> {
  return import('onnxruntime-node');
}

export interface SessionOptions {
  /** Threads for onnxruntime-node's intra-op pool (default 1, to compare like with like). */
  threads?: number;
  /** Write the optimised graph here (onnxruntime-node only), to check which fusions happened. */
  optimizedModelFilePath?: string;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
}

export async function openSession(runtime: Runtime, model: Uint8Array, opts: SessionOptions = {}): Promise<Session> {
  const ort = runtime === 'ort-node' ? await ortNode() : await ortWeb();
  const so: Record<string, unknown> = {
    graphOptimizationLevel: opts.graphOptimizationLevel ?? 'all',
    executionProviders: [runtime === 'ort-node' ? 'cpu' : 'wasm'],
    logSeverityLevel: 3,
  };
  if (runtime === 'ort-node') {
    so.intraOpNumThreads = opts.threads ?? 1;
    so.interOpNumThreads = 1;
    if (opts.optimizedModelFilePath) so.optimizedModelFilePath = opts.optimizedModelFilePath;
  }
  let s: Awaited<ReturnType<OrtModule['InferenceSession']['create']>>;
  try {
    s = await ort.InferenceSession.create(model, so as any);
  } catch (e) {
    throw new IdsError('BAD_MODEL', `${runtime}: cannot load the ONNX model (${(e as Error).message})`, { cause: e });
  }
  const inputName = s.inputNames[0];
  return {
    runtime,
    inputName,
    outputNames: [...s.outputNames],
    async run(X, rows, outputs = [s.outputNames[0]], batch = 1024) {
      const features = X.length / rows;
      if (!Number.isInteger(features)) throw new IdsError('BAD_MODEL', `run: ${X.length} values do not split into ${rows} rows`);
      const parts: Record<string, Float32Array[]> = Object.fromEntries(outputs.map((o) => [o, []]));
      for (let r = 0; r < rows; r += batch) {
        const n = Math.min(batch, rows - r);
        const t = new ort.Tensor('float32', X.subarray(r * features, (r + n) * features), [n, features, 1]);
        const out = await s.run({ [inputName]: t }, outputs);
        for (const o of outputs) parts[o].push((out[o].data as Float32Array).slice());
      }
      return Object.fromEntries(outputs.map((o) => [o, concat(parts[o])]));
    },
    release: () => s.release(),
  };
}

export function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Row-wise argmax of [rows × classes]. */
export function argmaxRows(P: Float32Array, classes: number): Int32Array {
  const rows = P.length / classes;
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (P[r * classes + c] > P[r * classes + best]) best = c;
    out[r] = best;
  }
  return out;
}

export interface Throughput {
  flowsPerSec: number;
  /** Median milliseconds per batch. */
  msPerBatch: number;
  /**
   * Flows per second of this process's CPU time (user + system, all its threads), median per batch. On a shared,
   * overloaded machine wall time includes waiting for a core; CPU time does not, so this is the steadier figure
   * (on an idle machine the two agree for single-threaded runs).
   */
  cpuFlowsPerSec: number;
  runs: number;
  batch: number;
}

/**
 * Inference throughput: `warmup` batches, then `runs` timed batches of `batch` rows; the median batch time
 * gives flows/s (medians, because these machines are shared and noisy).
 */
export async function measureThroughput(
  session: Session,
  X: Float32Array,
  features: number,
  opts: { batch?: number; runs?: number; warmup?: number } = {},
): Promise<Throughput> {
  const batch = opts.batch ?? 256;
  const runs = opts.runs ?? 15;
  const rows = Math.floor(X.length / features);
  if (rows < batch) throw new IdsError('BAD_OPTION', `throughput: need ${batch} rows, got ${rows}`);
  const B = X.subarray(0, batch * features);
  for (let i = 0; i < (opts.warmup ?? 3); i++) await session.run(B, batch, undefined, batch);
  const times: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < runs; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await session.run(B, batch, undefined, batch);
    times.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  const med = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const m = med(times);
  return { flowsPerSec: (batch * 1000) / m, msPerBatch: m, cpuFlowsPerSec: (batch * 1000) / Math.max(med(cpu), 1e-3), runs, batch };
}
