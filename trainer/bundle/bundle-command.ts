/**
 * `iot-ids bundle build|verify|inspect|eval`. verify exits 0 only for an intact bundle signed by the given key
 * (--key, or --insecure-demo-key for the demo's committed key, announced on stderr) and otherwise prints the
 * reason and exits 1.
 */
import { defineCommand } from 'citty';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { choiceOption, intOption, listOption } from '../../shared/options.ts';
import { join, resolve } from 'node:path';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { keyFingerprint, verifyBundle } from '../../shared/bundle-verify.ts';
import { IdsError, isIdsError } from '../../shared/errors.ts';
import { MANIFEST_FILE, MODEL_FILE, PREPROCESS_WASM_FILE, bundleRelease, type BundleManifest } from '../../shared/manifest.ts';
import { parseWatcherSettings, watcherSettingsFromJson } from '../../shared/watcher-settings.ts';
import { buildBundle } from './build.ts';
import { readDevPrivateKey, readDevPublicKey, warnDevKey } from './dev-key.ts';
import { summarizeManifest } from './inspect.ts';

const readKey = (path: string, what: string): string => {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new IdsError('BAD_OPTION', `--key: cannot read ${what} key file ${path} (${(e as Error).message})`);
  }
};

/**
 * The public key a bundle must be signed with: --key, or the demo key when asked for by name. Never a silent
 * default: whoever holds the demo key's private half (it is committed) can sign anything.
 */
function verifyingKey(path: string | undefined, demo: boolean | undefined): string {
  if (path && demo) throw new IdsError('BAD_OPTION', 'give --key or --insecure-demo-key, not both');
  if (path) return readKey(path, 'public');
  if (!demo) {
    throw new IdsError('BAD_OPTION', '--key PEM (the signer\'s Ed25519 public key) is required; --insecure-demo-key uses the committed demo key');
  }
  warnDevKey('verifying');
  return readDevPublicKey();
}

const demoKeyArg = {
  type: 'boolean',
  description: 'verify with the committed demo key (models/dev-key/public.pem; its private half is public)',
} as const;

/** Runs a sub-command body; a bad bundle or option prints one clear line and sets exit code 1. */
async function guarded(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (e) {
    if (isIdsError(e)) {
      process.stderr.write(`error [${e.code}]: ${e.message}\n`);
      process.exitCode = 1;
      return;
    }
    throw e;
  }
}

const verify = defineCommand({
  meta: { name: 'verify', description: 'Check a bundle: signature, schema version, every file. Exit 0 only if intact.' },
  args: {
    dir: { type: 'positional', required: true, description: 'bundle folder' },
    key: { type: 'string', description: 'Ed25519 public key (PEM) the bundle must be signed with (required, or --insecure-demo-key)' },
    'insecure-demo-key': demoKeyArg,
  },
  run: ({ args }) =>
    guarded(async () => {
      const key = verifyingKey(args.key, args['insecure-demo-key']);
      const { manifest, files } = await verifyBundle(resolve(args.dir), { publicKeyPem: key });
      process.stdout.write(
        `ok: ${args.dir}: ${manifest.model.name} ${manifest.model.version} (${manifest.model.precision}), ` +
          `release ${bundleRelease(manifest)}${manifest.model.release === undefined ? ' (from createdAt)' : ''}, ` +
          `${Object.keys(files).length} files verified, key ${keyFingerprint(key).slice(0, 16)}\n`,
      );
    }),
});

const inspect = defineCommand({
  meta: { name: 'inspect', description: 'Print a bundle manifest summary (add --key to verify it too)' },
  args: {
    dir: { type: 'positional', required: true, description: 'bundle folder' },
    json: { type: 'boolean', description: 'print the whole manifest as JSON' },
    key: { type: 'string', description: 'also verify against this public key' },
  },
  run: ({ args }) =>
    guarded(async () => {
      const dir = resolve(args.dir);
      const path = join(dir, MANIFEST_FILE);
      let manifest: BundleManifest;
      try {
        manifest = JSON.parse(readFileSync(path, 'utf8')) as BundleManifest;
      } catch (e) {
        throw new IdsError('BAD_BUNDLE', `bundle ${dir}: cannot read ${MANIFEST_FILE} (${(e as Error).message})`);
      }
      let status = 'signature not checked (pass --key, or use `bundle verify`)';
      if (args.key) {
        await verifyBundle(dir, { publicKeyPem: readKey(args.key, 'public') });
        status = 'verified';
      }
      if (args.json) process.stdout.write(JSON.stringify(manifest, null, 2) + '\n');
      else process.stdout.write(summarizeManifest(manifest, status) + '\n');
    }),
});

const build = defineCommand({
  meta: {
    name: 'build',
    description:
      'Build and sign a bundle: --from a train output folder (or a bundle) to re-sign it, or --manifest/--model/--wasm files',
  },
  args: {
    from: { type: 'string', description: 'train output folder (holding bundle/) or a bundle folder' },
    manifest: { type: 'string', description: 'manifest JSON (files are filled in)' },
    model: { type: 'string', description: `int8 ONNX model (default: ${MODEL_FILE} in --from)` },
    wasm: { type: 'string', description: `preprocessing wasm (default: ${PREPROCESS_WASM_FILE} in --from, else asm/build/)` },
    out: { type: 'string', required: true, description: 'output bundle folder' },
    key: { type: 'string', description: 'Ed25519 private key (PEM) to sign with (default: the demo key)' },
    release: {
      type: 'string',
      description: 'release number hubs order bundles by (default: the source manifest\'s, else createdAt in seconds)',
    },
    watchers: {
      type: 'string',
      description: 'JSON file of watcher settings the hubs use with this bundle (edge/README.md "Watchers"; default: the source manifest\'s)',
    },
    'hub-check': {
      type: 'boolean',
      default: true,
      description: 'check that the hub\'s flow meter computes every feature (default); --no-hub-check builds a cloud-only evaluation bundle, marked notForHubs (hubs refuse it)',
    },
  },
  run: ({ args }) =>
    guarded(async () => {
      let src: string | undefined;
      if (args.from) {
        const f = resolve(args.from);
        src = existsSync(join(f, 'bundle', MANIFEST_FILE)) ? join(f, 'bundle') : f;
        if (!existsSync(join(src, MANIFEST_FILE))) {
          throw new IdsError('BAD_OPTION', `--from ${args.from}: no ${MANIFEST_FILE} there or in its bundle/ folder`);
        }
      }
      const manifestPath = args.manifest ?? (src && join(src, MANIFEST_FILE));
      if (!manifestPath) throw new IdsError('BAD_OPTION', 'bundle build needs --from DIR or --manifest FILE');
      let m: BundleManifest;
      try {
        m = JSON.parse(readFileSync(manifestPath, 'utf8'));
      } catch (e) {
        throw new IdsError('BAD_OPTION', `--manifest ${manifestPath}: not readable JSON (${(e as Error).message})`);
      }
      const { files: _drop, ...rest } = m;
      const release = intOption('release', args.release, { min: 0 });
      if (release !== undefined) rest.model = { ...rest.model, release };
      if (args.watchers) {
        let text: string;
        try {
          text = readFileSync(args.watchers, 'utf8');
        } catch (e) {
          throw new IdsError('BAD_OPTION', `--watchers ${args.watchers}: ${(e as Error).message}`);
        }
        rest.watchers = watcherSettingsFromJson(text, `--watchers ${args.watchers}`);
      } else if (rest.watchers !== undefined) {
        rest.watchers = parseWatcherSettings(rest.watchers, `${manifestPath} "watchers"`);
      }
      const modelPath = args.model ?? (src && join(src, MODEL_FILE));
      const wasmPath =
        args.wasm ??
        (src && existsSync(join(src, PREPROCESS_WASM_FILE))
          ? join(src, PREPROCESS_WASM_FILE)
          : new URL('../../asm/build/preprocess.wasm', import.meta.url).pathname);
      for (const [what, p] of [['model', modelPath], ['wasm', wasmPath]] as const) {
        if (!p || !existsSync(p) || !statSync(p).isFile()) throw new IdsError('BAD_OPTION', `--${what}: file ${p ?? '(none)'} not found`);
      }
      let keyPem: string;
      if (args.key) keyPem = readKey(args.key, 'private');
      else {
        warnDevKey('signing');
        keyPem = readDevPrivateKey();
      }
      const dir = await buildBundle({
        outDir: args.out,
        files: { [MODEL_FILE]: modelPath!, [PREPROCESS_WASM_FILE]: wasmPath },
        manifest: rest,
        privateKeyPem: keyPem,
        hubCheck: args['hub-check'] !== false,
      });
      const publicKeyPem = createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'pem' }).toString();
      const v = await verifyBundle(dir, { publicKeyPem });
      process.stdout.write(
        `ok: built and verified ${dir}: ${v.manifest.model.name} ${v.manifest.model.version}, release ${v.manifest.model.release}\n`,
      );
      if (v.manifest.notForHubs) {
        process.stdout.write(`NOT FOR HUBS (cloud evaluation only): the hub's flow meter cannot compute ${v.manifest.notForHubs.missingFeatures.join(', ')}\n`);
      }
    }),
});

const evaluate = defineCommand({
  meta: {
    name: 'eval',
    description: 'Score a bundle on labelled flow CSVs as a hub would decide (its scaler, thresholds and int8 model)',
  },
  args: {
    dir: { type: 'positional', required: true, description: 'bundle folder' },
    data: { type: 'string', required: true, description: 'CSV file or folder of CSVs with a label column (repeat for several)' },
    label: { type: 'string', description: 'label column (default Cat)' },
    'label-column': { type: 'string', description: 'alias of --label' },
    map: { type: 'string', description: 'label map onto the bundle\'s classes: cicids2017, binary, a JSON object or file' },
    key: { type: 'string', description: 'Ed25519 public key (PEM) the bundle must be signed with (required, or --insecure-demo-key)' },
    'insecure-demo-key': demoKeyArg,
    runtime: { type: 'string', description: 'ort-web (default, what hubs run) | ort-node' },
    'max-rows': { type: 'string', description: 'read at most this many rows' },
    json: { type: 'string', description: 'also write the full result (metrics, confusion) to this JSON file' },
  },
  run: ({ args }) =>
    guarded(async () => {
      const [{ evaluateBundle, formatEvaluation }, { parseLabelMap }] = await Promise.all([
        import('./evaluate.ts'),
        import('../train-command.ts'),
      ]);
      const runtime = choiceOption('runtime', args.runtime, ['ort-web', 'ort-node'] as const) ?? 'ort-web';
      const e = await evaluateBundle({
        bundleDir: resolve(args.dir), publicKeyPem: verifyingKey(args.key, args['insecure-demo-key']), data: listOption(args.data), labelColumn: args.label ?? args['label-column'],
        labelMap: args.map !== undefined ? parseLabelMap(String(args.map)).map : undefined, runtime,
        maxRows: intOption('max-rows', args['max-rows'], { min: 1 }),
      });
      process.stdout.write(formatEvaluation(e) + '\n');
      if (args.json) writeFileSync(args.json, JSON.stringify(e, null, 2) + '\n');
    }),
});

export default defineCommand({
  meta: { name: 'bundle', description: 'Build, verify, inspect and evaluate signed hub bundles' },
  subCommands: { build, verify, inspect, eval: evaluate },
});
