#!/usr/bin/env node
// Builds asm/assembly/index.ts into asm/build/preprocess.wasm (+ .wat for review). Generated files are never
// committed or edited: CI and `npm ci` (postinstall) build them fresh.
import { mkdirSync } from 'node:fs';
import asc from 'assemblyscript/asc';

mkdirSync('asm/build', { recursive: true });
const { error, stderr } = await asc.main([
  'asm/assembly/index.ts',
  '--outFile', 'asm/build/preprocess.wasm',
  '--textFile', 'asm/build/preprocess.wat',
  '--optimizeLevel', '3',
  '--shrinkLevel', '0',
  '--runtime', 'stub',
  '--enable', 'simd',
  '--noAssert',
  '--initialMemory', '32',
  '--exportRuntime',
]);
if (error) {
  console.error(stderr.toString());
  console.error(error.message);
  process.exit(1);
}
