#!/usr/bin/env node
// Builds dist/aggregator/iot-ids-aggregator.mjs: the aggregator command as one ES module (esbuild; npm packages
// stay in node_modules), which `iot-ids aggregator` runs instead of the TypeScript sources.
//
// Why a build for a long-running service: run through tsx, the aggregator carries tsx's module-loader thread and
// source-map support for its whole life, and draining a 150,000-alert backlog peaked at 254–273 MB RSS against
// 167–172 MB for this bundle (SQLite; PostgreSQL 211–220 MB) with 20–30 % more CPU per alert (aggregator/README.md,
// "Memory and the API while draining"). No build step to forget: `npm ci` builds it (postinstall), and the command
// rebuilds it first whenever the sources it was built from changed (a hash of their contents, ~0.3 s to rebuild).
//
// `import.meta.url` in a source file is rewritten to that file's own URL (relative to the bundle), so paths
// computed from it (the dashboard's public/ folder, the SQLite writer thread's entry) stay those of the sources.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** Bumped when the build's options change, so that an older bundle is not taken for a fresh one. */
const BUILD_FORMAT = 1;

/**
 * A bundle of `entry` (relative to `root`) at `outfile`, with `<outfile>.json` recording a hash of every source it
 * was built from. Rebuilt when that file is missing or any source's content differs; returns the bundle's path.
 */
export async function ensureBundle({ root, entry, outfile }) {
  const record = `${outfile}.json`;
  if (existsSync(outfile) && existsSync(record)) {
    try {
      const { hash, inputs } = JSON.parse(readFileSync(record, 'utf8'));
      if (hash === hashInputs(root, inputs)) return { file: outfile, built: false };
    } catch {
      // unreadable record or a source gone: build again
    }
  }
  await buildBundle({ root, entry, outfile });
  return { file: outfile, built: true };
}

export async function buildBundle({ root, entry, outfile }) {
  const outdir = dirname(outfile);
  const result = await build({
    absWorkingDir: root,
    entryPoints: [entry],
    outfile,
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // No source map: Node's source-map support (which a map would need) raised the drain's peak RSS by ~70 MB.
    sourcemap: false,
    write: false,
    metafile: true,
    logLevel: 'silent',
    plugins: [ownUrls(root, outdir)],
  });
  const inputs = Object.keys(result.metafile.inputs).sort();
  mkdirSync(outdir, { recursive: true });
  // Written under temporary names and renamed: several commands starting at once may build together, and none may
  // import a half-written file. The record goes last: a bundle without it is rebuilt.
  const tmp = `.tmp-${process.pid}-${Date.now()}`;
  for (const f of result.outputFiles) {
    writeFileSync(f.path + tmp, f.contents);
    renameSync(f.path + tmp, f.path);
  }
  writeFileSync(`${outfile}.json${tmp}`, JSON.stringify({ hash: hashInputs(root, inputs), inputs }, null, 1) + '\n');
  renameSync(`${outfile}.json${tmp}`, `${outfile}.json`);
}

function hashInputs(root, inputs) {
  const h = createHash('sha256').update(`format ${BUILD_FORMAT}\n`);
  for (const f of inputs) h.update(`${f}\n`).update(readFileSync(join(root, f))).update('\n');
  return h.digest('hex');
}

/** esbuild plugin: `import.meta.url` in each project source becomes that source's URL, relative to the bundle. */
function ownUrls(root, outdir) {
  return {
    name: 'own-import-meta-url',
    setup(b) {
      b.onLoad({ filter: /\.[cm]?[jt]s$/ }, (args) => {
        if (args.path.split(sep).includes('node_modules')) return undefined;
        const text = readFileSync(args.path, 'utf8');
        if (!text.includes('import.meta.url')) return undefined;
        const rel = relative(outdir, args.path).split(sep).join('/');
        const own = `new URL(${JSON.stringify(rel)}, import.meta.url).href`;
        return { contents: text.replaceAll('import.meta.url', own), loader: args.path.endsWith('ts') ? 'ts' : 'js' };
      });
    },
  };
}

export const AGGREGATOR_BUNDLE = join(ROOT, 'dist', 'aggregator', 'iot-ids-aggregator.mjs');

export const ensureAggregatorBundle = () =>
  ensureBundle({ root: ROOT, entry: 'aggregator/aggregator-command.ts', outfile: AGGREGATOR_BUNDLE });

if (process.argv[1] && pathToFileURL(resolve(process.argv[1])).href === import.meta.url) {
  await buildBundle({ root: ROOT, entry: 'aggregator/aggregator-command.ts', outfile: AGGREGATOR_BUNDLE });
  console.log(`built ${relative(process.cwd(), AGGREGATOR_BUNDLE)}`);
}
