/**
 * `iot-ids train` (npm run train -- ...): parses options, then hands over to runTraining (train.ts).
 * Ctrl-C once: the current batch finishes, a checkpoint is written and the command exits cleanly
 * (continue with --resume --out DIR); Ctrl-C twice: exit at once.
 */
import { defineCommand } from 'citty';
import { existsSync, readFileSync } from 'node:fs';
import { IdsError, isIdsError } from '../shared/errors.ts';
import { CICIDS2017_GROUPS, BINARY_ANOMALY, type LabelMap } from '../shared/labels.ts';
import type { PortPolicy } from '../shared/features.ts';
import { choiceOption, intOption, listOption, numberOption } from '../shared/options.ts';
import { runTraining, type RunOptions } from './train.ts';
import type { BackendChoice } from './backend/index.ts';
import { CLASS_WEIGHTINGS, type ClassWeighting } from './recipes.ts';
import type { FineTuneOptions } from './warm/fine-tune.ts';

const NAMED_MAPS: Record<string, LabelMap> = { cicids2017: CICIDS2017_GROUPS, binary: BINARY_ANOMALY };

/** --map: a named map (cicids2017, binary), an inline JSON object, or a path to a JSON file. */
export function parseLabelMap(value: string): { map: LabelMap; source: string } {
  if (NAMED_MAPS[value]) return { map: NAMED_MAPS[value], source: value };
  let text = value;
  let source = 'inline';
  if (!value.trim().startsWith('{')) {
    if (!existsSync(value)) {
      throw new IdsError('BAD_OPTION', `--map ${value}: not a named map (${Object.keys(NAMED_MAPS).join(', ')}), not JSON and not a file`);
    }
    text = readFileSync(value, 'utf8');
    source = value;
  }
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    throw new IdsError('BAD_OPTION', `--map ${source}: not valid JSON (${(e as Error).message})`);
  }
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) throw new IdsError('BAD_OPTION', `--map ${source}: expected a JSON object {"raw label": "class"}`);
  for (const [k, v] of Object.entries(obj)) {
    if (typeof v !== 'string' || v.length === 0) throw new IdsError('BAD_OPTION', `--map ${source}: label "${k}" maps to ${JSON.stringify(v)}, expected a class name`);
  }
  if (Object.keys(obj).length === 0) throw new IdsError('BAD_OPTION', `--map ${source}: the map is empty`);
  return { map: obj as LabelMap, source };
}

const num = (name: string, v: unknown, integer = false): number | undefined =>
  integer ? intOption(name, v) : numberOption(name, v);

/** --features: 'all-numeric' or a comma-separated list of column names (repeatable). */
export function featuresOption(v: unknown): readonly string[] | 'all-numeric' | undefined {
  if (v === undefined) return undefined;
  const list = listOption(v).flatMap((d) => d.split(',')).map((d) => d.trim()).filter(Boolean);
  if (list.length === 1 && list[0] === 'all-numeric') return 'all-numeric';
  if (list.length === 0 || list.includes('all-numeric')) throw new IdsError('BAD_OPTION', '--features: all-numeric, or a comma-separated list of column names');
  return list;
}

/** The command-line arguments (as citty parses them) as RunOptions; every bad value is a BAD_OPTION naming the flag. */
export function optionsFromArgs(args: Record<string, unknown>): RunOptions {
  const data = listOption(args.data).flatMap((d) => d.split(',')).filter((d) => d.length > 0);
  if (data.length === 0) throw new IdsError('BAD_OPTION', '--data FILE-or-FOLDER is required (repeat it for several)');
  const map = args.map !== undefined ? parseLabelMap(String(args.map)) : undefined;
  return {
    data,
    label: (args.label ?? args['label-column']) as string | undefined,
    features: featuresOption(args.features),
    hubCheck: args['hub-check'] !== false,
    map: map?.map,
    mapSource: map?.source,
    seed: num('seed', args.seed, true),
    epochs: num('epochs', args.epochs, true),
    batchSize: num('batch', args.batch, true),
    learningRate: num('lr', args.lr),
    valFraction: num('val-fraction', args['val-fraction']),
    patience: num('patience', args.patience, true),
    emaDecay: num('ema', args.ema),
    pruneCorrelated: num('prune-correlated', args['prune-correlated']),
    monitor: choiceOption('monitor', args.monitor, ['valLoss', 'valMacroF1'] as const),
    maxRows: num('max-rows', args['max-rows'], true),
    recipe: choiceOption('recipe', args.recipe, ['paper', 'default'] as const),
    ports: choiceOption<PortPolicy>('ports', args.ports, ['none', 'dst', 'both']),
    backend: choiceOption<BackendChoice>('backend', args.backend, ['auto', 'wasm', 'cpu', 'node']),
    lrSchedule: choiceOption('schedule', args.schedule, ['constant', 'cosine', 'plateau'] as const),
    logScale: choiceOption('log-scale', args['log-scale'], ['none', 'auto'] as const),
    portEncoding: choiceOption('port-encoding', args['port-encoding'], ['value', 'benign-rate'] as const),
    classWeights: choiceOption<ClassWeighting>('class-weights', args['class-weights'], CLASS_WEIGHTINGS),
    drop: listOption(args.drop).flatMap((d) => d.split(',')).filter(Boolean),
    dedupe: !!args.dedupe,
    out: args.out as string | undefined,
    resume: !!args.resume,
    baseline: args.baseline !== false,
    export: !!args.export,
    benignVal: listOption(args['benign-val']).flatMap((d) => d.split(',')).filter(Boolean),
    benignAlertTarget: numberOption('benign-alert-target', args['benign-alert-target'], { min: 0, max: 1 }),
    benignMaxRecallDrop: numberOption('benign-max-recall-drop', args['benign-max-recall-drop'], { min: 0, max: 1 }),
  };
}

/** The options of `train --init-from` (warm/fine-tune.ts); recipe flags that do not apply to a fine-tune are refused. */
export function fineTuneOptionsFromArgs(args: Record<string, unknown>): FineTuneOptions {
  const data = listOption(args.data).flatMap((d) => d.split(',')).filter((d) => d.length > 0);
  if (data.length === 0) throw new IdsError('BAD_OPTION', '--init-from needs --data FLEET.csv (then --data ORIGINAL.csv … to replay)');
  for (const k of ['recipe', 'schedule', 'log-scale', 'port-encoding', 'prune-correlated', 'ports', 'drop', 'features', 'benign-val', 'resume', 'monitor', 'patience', 'ema', 'val-fraction']) {
    if (args[k] !== undefined && args[k] !== false) throw new IdsError('BAD_OPTION', `--${k} does not apply with --init-from (the init model fixes features, scaler and architecture)`);
  }
  const map = args.map !== undefined ? parseLabelMap(String(args.map)) : undefined;
  return {
    initFrom: String(args['init-from']),
    fleet: data.slice(0, 1),
    replay: data.slice(1),
    label: (args.label ?? args['label-column']) as string | undefined,
    map: map?.map,
    mapSource: map?.source,
    seed: num('seed', args.seed, true),
    epochs: intOption('epochs', args.epochs, { min: 1 }),
    batchSize: intOption('batch', args.batch, { min: 1 }),
    learningRate: numberOption('lr', args.lr, { min: 0 }),
    fleetWeight: numberOption('fleet-weight', args['fleet-weight']),
    replayRatio: numberOption('replay-ratio', args['replay-ratio']),
    fleetTestFraction: numberOption('fleet-test-fraction', args['fleet-test-fraction']),
    refitScaler: !!args['refit-scaler'],
    thresholds: args['keep-thresholds'] ? 'init' : 'rematch',
    classWeights: choiceOption('class-weights', args['class-weights'], ['init', ...CLASS_WEIGHTINGS] as const),
    out: args.out as string | undefined,
    backend: choiceOption<BackendChoice>('backend', args.backend, ['auto', 'wasm', 'cpu', 'node']),
    export: !!args.export,
  };
}

export default defineCommand({
  meta: { name: 'train', description: 'Train the CNN-LSTM on flow CSVs, evaluate it beside a random forest, write a report' },
  args: {
    data: { type: 'string', description: 'CSV file or folder of CSVs (repeat for several)', required: true },
    label: { type: 'string', description: 'label column (default Cat)' },
    map: { type: 'string', description: 'label map: cicids2017, binary, a JSON object or a JSON file; labels it leaves out are dropped' },
    recipe: { type: 'string', description: 'paper | default (default: default)' },
    seed: { type: 'string', description: 'seed for split, initialisation and batch order (default 1)' },
    epochs: { type: 'string', description: 'override the recipe' },
    batch: { type: 'string', description: 'override the recipe' },
    lr: { type: 'string', description: 'override the recipe' },
    'val-fraction': { type: 'string', description: 'validation share of the training split (0 = none)' },
    schedule: { type: 'string', description: 'constant | cosine | plateau' },
    'log-scale': { type: 'string', description: 'none | auto (log1p on heavy-tailed features)' },
    'port-encoding': { type: 'string', description: 'value (min-max of the number) | benign-rate (lookup of each port\'s Normal share in training)' },
    'class-weights': { type: 'string', description: 'none | balanced | sqrt | rare (with --init-from also init, the default: the init model\'s own)' },
    patience: { type: 'string', description: 'early-stopping patience in epochs' },
    monitor: { type: 'string', description: 'early stopping watches valLoss | valMacroF1' },
    ema: { type: 'string', description: 'per-step decay of a moving average of the weights (0 = off), e.g. 0.999' },
    'prune-correlated': { type: 'string', description: 'drop features with |r| ≥ this to an earlier kept one on the training rows, e.g. 0.99 (0 = off, the default): a smaller, faster hub model' },
    ports: { type: 'string', description: 'none | dst | both (default dst)' },
    drop: { type: 'string', description: 'extra columns to drop (repeat or comma-separate)' },
    dedupe: { type: 'boolean', description: 'remove exact duplicate rows before splitting' },
    'max-rows': { type: 'string', description: 'read at most this many rows' },
    out: { type: 'string', description: 'output folder (default runs/<timestamp>)' },
    resume: { type: 'boolean', description: 'continue an interrupted run from OUT/checkpoints' },
    backend: { type: 'string', description: 'auto | wasm | cpu | node' },
    export: { type: 'boolean', description: 'export to ONNX and bundle after training' },
    'benign-val': { type: 'string', description: 'flows of benign devices no training row came from (a device-split lab corpus\'s benign-validation.csv): alert thresholds are raised until at most --benign-alert-target of them alert' },
    'benign-alert-target': { type: 'string', description: 'share of --benign-val flows allowed to alert (default 0.01)' },
    'benign-max-recall-drop': { type: 'string', description: 'with --benign-val: the most validation recall an attack class may give up (default 0.02)' },
    'init-from': { type: 'string', description: 'fine-tune: continue from this bundle or run folder; the first --data is the fleet\'s rows, further --data the original corpus replayed (trainer/README.md "Fine-tuning")' },
    'fleet-weight': { type: 'string', description: 'with --init-from: repeat the fleet\'s training rows this many times (default 3)' },
    'replay-ratio': { type: 'string', description: 'with --init-from: replay rows per (weighted) fleet row (default 3)' },
    'fleet-test-fraction': { type: 'string', description: 'with --init-from: share of the fleet rows held out for the report (default 0.3)' },
    'keep-thresholds': { type: 'boolean', description: 'with --init-from: keep the init model\'s alert thresholds instead of re-matching them to its recall' },
    'refit-scaler': { type: 'boolean', description: 'with --init-from: refit the scaler on the fine-tuning rows instead of keeping the init model\'s' },
    features: { type: 'string', description: 'all-numeric (every numeric column but the label) or a comma-separated list; default: the IoTID20/CICFlowMeter schema columns' },
    'label-column': { type: 'string', description: 'alias of --label' },
    'hub-check': { type: 'boolean', default: true, description: 'with --export: check that the hub\'s flow meter computes every feature (default); --no-hub-check builds a cloud-only evaluation bundle' },
    baseline: { type: 'boolean', default: true, description: 'train the random-forest baseline (--no-baseline to skip)' },
  },
  async run({ args }) {
    const ac = new AbortController();
    let presses = 0;
    const onSigint = () => {
      if (++presses > 1) process.exit(130);
      console.error('\ninterrupt: finishing this batch and saving a checkpoint (Ctrl-C again to quit at once)');
      ac.abort();
    };
    process.on('SIGINT', onSigint);
    try {
      if (args['init-from'] !== undefined) {
        const { runFineTune } = await import('./warm/fine-tune.ts');
        const res = await runFineTune({ ...fineTuneOptionsFromArgs(args as Record<string, unknown>), signal: ac.signal, progress: process.stderr.isTTY, log: (l) => console.log(l) });
        if (res.interrupted) process.exitCode = 130;
        else console.log(`done: ${res.outDir}`);
        return;
      }
      const opts = optionsFromArgs(args as Record<string, unknown>);
      const res = await runTraining({ ...opts, signal: ac.signal, progress: process.stderr.isTTY, log: (l) => console.log(l) });
      if (res.interrupted) process.exitCode = 130;
      else console.log(`done: ${res.outDir}`);
    } catch (e) {
      if (isIdsError(e)) {
        console.error(`error [${e.code}]: ${e.message}`);
        process.exitCode = 1;
      } else throw e;
    } finally {
      process.off('SIGINT', onSigint);
    }
  },
});
