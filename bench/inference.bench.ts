/**
 * Model inference throughput (flows/s) of the shipped CNN-LSTM shape (the shipped bundle's features, 5 IoTID20
 * classes), batch 256, one thread:
 *   - onnxruntime-web int8 (what a hub runs; target ≥ 12,000 flows/s),
 *   - onnxruntime-web fp32,
 *   - onnxruntime-node fp32 (reference, measured in the same run, interleaved round by round),
 *   - onnxruntime-node int8.
 * Random weights (speed does not depend on them); int8 calibrated on random [0,1] rows like the exporter does.
 * Each figure is the median over ROUNDS rounds of the median batch time of RUNS batches.
 * cpuFlowsPerSec divides by this process's CPU time instead of wall time: on a shared, overloaded machine it
 * leaves out the time spent waiting for a core. projectedIdle scales ort-web int8's CPU-time rate by the host
 * probe's (host-probe.ts: a fixed 78-feature workload, interleaved too) idle / measured rate.
 */
import { emit, median } from './report.ts';
import { IDLE_PROBE_EXTERNAL, IDLE_PROBE_FLOWS_PER_SEC, openHostProbe, PROBE_FEATURES } from './host-probe.ts';
import { BENCH_FEATURES } from './hub-fixtures.ts';
import { Rng } from '../shared/random.ts';
import { buildCnnLstm } from '../trainer/model/cnn-lstm.ts';
import { exportOnnx } from '../trainer/export/onnx-export.ts';
import { encodeModel } from '../trainer/export/onnx-model.ts';
import { calibrate } from '../trainer/export/calibrate.ts';
import { DEFAULT_LSTM_MODE, quantizeQdq, quantizableTensors } from '../trainer/export/quantize.ts';
import { measureThroughput, openSession, type Session } from '../trainer/export/runtimes.ts';

/** The model's input width: the shipped bundle's unless INFER_BENCH_FEATURES says otherwise. */
const FEATURES = Number(process.env.INFER_BENCH_FEATURES ?? BENCH_FEATURES.length);
const CLASSES = 5;
const BATCH = Number(process.env.INFER_BENCH_BATCH ?? 256);
const ROUNDS = Number(process.env.INFER_BENCH_ROUNDS ?? 5);
const RUNS = Number(process.env.INFER_BENCH_RUNS ?? 15);
const TARGET = 12_000;

export async function run(): Promise<void> {
  const tf = await import('@tensorflow/tfjs');
  await tf.setBackend('cpu');
  const model = buildCnnLstm({ features: FEATURES, classes: CLASSES, seed: 1 });
  const ex = exportOnnx(model);
  const rng = new Rng(7);
  const X = Float32Array.from({ length: 1024 * FEATURES }, () => rng.next());
  const cal = await calibrate(ex.model, quantizableTensors(ex.model), X, 1024);
  const first = ex.model.graph!.node!.find((n) => n.opType === 'Conv')!.name!;
  // The form the export ships: first conv fp32, LSTM as DEFAULT_LSTM_MODE, ReLUs on bytes.
  const int8 = encodeModel(quantizeQdq(ex.model, { ranges: cal.ranges.minmax, lstm: DEFAULT_LSTM_MODE, keepFp32: [first] }));

  const sessions: [string, Session][] = [
    ['ort-web int8', await openSession('ort-web', int8)],
    ['ort-node fp32', await openSession('ort-node', ex.bytes, { threads: 1 })],
    ['ort-web fp32', await openSession('ort-web', ex.bytes)],
    ['ort-node int8', await openSession('ort-node', int8, { threads: 1 })],
  ];
  const probe = await openHostProbe();
  const results: Record<string, number[]> = {};
  const cpuResults: Record<string, number[]> = {};
  const probeCpu: number[] = [];
  try {
    for (let r = 0; r < ROUNDS; r++) {
      for (const [name, s] of sessions) {
        const t = await measureThroughput(s, X, FEATURES, { batch: BATCH, runs: RUNS, warmup: r === 0 ? 5 : 2 });
        (results[name] ??= []).push(t.flowsPerSec);
        (cpuResults[name] ??= []).push(t.cpuFlowsPerSec);
      }
      probeCpu.push((await probe.measure(RUNS)).cpuFlowsPerSec);
    }
  } finally {
    for (const [, s] of sessions) await s.release();
    await probe.release();
  }
  const ref = median(results['ort-node fp32']);
  const cpuRef = median(cpuResults['ort-node fp32']);
  const common = { batch: BATCH, threads: 1, features: FEATURES, classes: CLASSES, rounds: ROUNDS, runsPerRound: RUNS };
  const reference = {
    'ort-node fp32 flows/s': Math.round(ref),
    'ort-node fp32 flows per CPU-second': Math.round(cpuRef),
    note: 'same model, same run, interleaved',
    [`host probe (${PROBE_FEATURES} features) flows per CPU-second`]: Math.round(median(probeCpu)),
  };
  const web8 = median(results['ort-web int8']);
  emit({
    bench: 'inference', metric: 'ort-web int8 flows/s', value: Math.round(web8), unit: 'flows/s', reference,
    target: TARGET, meetsTarget: web8 >= TARGET, ratioToReference: +(web8 / ref).toFixed(3),
    cpuFlowsPerSec: Math.round(median(cpuResults['ort-web int8'])),
    projectedIdle: Math.round((median(cpuResults['ort-web int8']) / median(probeCpu)) * IDLE_PROBE_FLOWS_PER_SEC),
    external: { hostProbeIdle: IDLE_PROBE_EXTERNAL },
    modelBytes: int8.length, perRound: results['ort-web int8'].map(Math.round), ...common,
  });
  for (const name of ['ort-web fp32', 'ort-node int8', 'ort-node fp32']) {
    const v = median(results[name]);
    emit({
      bench: 'inference', metric: `${name} flows/s`, value: Math.round(v), unit: 'flows/s', reference,
      ratioToReference: +(v / ref).toFixed(3), cpuFlowsPerSec: Math.round(median(cpuResults[name])), modelBytes: name.endsWith('int8') ? int8.length : ex.bytes.length,
      perRound: results[name].map(Math.round), ...common,
    });
  }
}
