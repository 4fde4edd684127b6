#!/usr/bin/env node
// Builds the single-file hub: dist/hub/iot-ids-hub.mjs (esbuild, every dependency inlined) plus the
// onnxruntime-web wasm runtime files beside it. A device needs only Node ≥ 20, this folder and a bundle:
//   node dist/hub/iot-ids-hub.mjs --bundle BUNDLE --pcap - --broker mqtt://HOST:1883 --site S --hub H --key pub.pem
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';

const out = process.argv[2] ?? 'dist/hub';
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

await build({
  entryPoints: ['edge/hub-main.ts'],
  outfile: join(out, 'iot-ids-hub.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minify: false,
  sourcemap: false,
  legalComments: 'linked',
  logLevel: 'warning',
  // Some CommonJS dependencies call require() for node built-ins; give the ESM bundle one.
  banner: {
    js: "import { createRequire as __ids_createRequire } from 'node:module'; const require = __ids_createRequire(import.meta.url);",
  },
});

// ort-web loads its wasm runtime (glue .mjs + .wasm) at run time from ort.env.wasm.wasmPaths, which the hub
// points at its own folder when these files sit beside it. Only the plain SIMD build is needed in Node.
const require = createRequire(import.meta.url);
const ortDist = dirname(require.resolve('onnxruntime-web/ort-wasm-simd-threaded.wasm'));
for (const f of readdirSync(ortDist)) {
  if (f === 'ort-wasm-simd-threaded.wasm' || f === 'ort-wasm-simd-threaded.mjs') copyFileSync(join(ortDist, f), join(out, f));
}
let total = 0;
for (const f of readdirSync(out)) total += statSync(join(out, f)).size;
console.log(`built ${out}/iot-ids-hub.mjs (+ ort wasm): ${(total / 1e6).toFixed(1)} MB`);
