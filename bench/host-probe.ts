/**
 * The host-speed probe: onnxruntime-node fp32, one thread, batch 256, on a fixed workload — the paper's CNN-LSTM
 * at 78 features (the full IoTID20 width), random weights. The machine probe measured it at ~35,000 flows/s on an
 * idle machine of this kind. A bench measures it in its own run, right beside its figure, and scales the figure by
 * idle / measured to say what it would be at the probe's speed: this shared machine's speed swings ~2× in an hour.
 * The workload is fixed on purpose: the benched model's width follows the shipped bundle, the probe's must not.
 */
import { Rng } from '../shared/random.ts';
import { measureThroughput, openSession, type Session } from '../trainer/export/runtimes.ts';

export const PROBE_FEATURES = 78;
export const IDLE_PROBE_FLOWS_PER_SEC = 35_000;

export interface HostProbe {
  /** Probe flows/s now: wall-clock and per CPU-second of this process. */
  measure(runs?: number): Promise<{ flowsPerSec: number; cpuFlowsPerSec: number }>;
  release(): Promise<void>;
}

export async function openHostProbe(): Promise<HostProbe> {
  const tf = await import('@tensorflow/tfjs');
  if (tf.getBackend() !== 'cpu') await tf.setBackend('cpu');
  const { buildCnnLstm } = await import('../trainer/model/cnn-lstm.ts');
  const { exportOnnx } = await import('../trainer/export/onnx-export.ts');
  const model = buildCnnLstm({ features: PROBE_FEATURES, classes: 5, seed: 1 });
  const bytes = exportOnnx(model).bytes;
  model.dispose();
  const session: Session = await openSession('ort-node', bytes, { threads: 1 });
  const rng = new Rng(11);
  const X = Float32Array.from({ length: 256 * PROBE_FEATURES }, () => rng.next());
  return {
    async measure(runs = 15) {
      const t = await measureThroughput(session, X, PROBE_FEATURES, { batch: 256, runs, warmup: 2 });
      return { flowsPerSec: t.flowsPerSec, cpuFlowsPerSec: t.cpuFlowsPerSec };
    },
    release: () => session.release(),
  };
}
