/**
 * Picks the fastest tfjs backend that works here. `@tensorflow/tfjs-node` (native libtensorflow) is an optional
 * accelerator and is used when it loads; otherwise the wasm backend (XNNPACK, SIMD) with our kernel fills, which
 * train the CNN-LSTM about two orders of magnitude faster than the pure-JS cpu backend.
 */
import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { IdsError } from '../../shared/errors.ts';
import { registerWasmFills } from './wasm-kernels.ts';

export type BackendChoice = 'auto' | 'node' | 'wasm' | 'cpu';

let wasmRegistered = false;

/** The folder holding tfjs-backend-wasm's .wasm binaries on disk. */
export function wasmDistDir(): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve('@tensorflow/tfjs-backend-wasm')) + '/';
}

async function tryNode(): Promise<boolean> {
  try {
    // A variable specifier keeps TypeScript from requiring the (optional, usually absent) package's types.
    const name = '@tensorflow/tfjs-node';
    await import(name);
    return tf.findBackend('tensorflow') != null && (await tf.setBackend('tensorflow'));
  } catch {
    return false;
  }
}

async function tryWasm(): Promise<boolean> {
  try {
    if (!wasmRegistered) {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      // Multi-threaded wasm needs Worker + SharedArrayBuffer plumbing that Node's emscripten glue lacks; tfjs
      // falls back to the single-threaded SIMD binary, which is what we measure and ship.
      wasm.setWasmPaths(wasmDistDir());
      wasmRegistered = true;
    }
    // The emscripten glue adds process handlers that rethrow every uncaught exception and unhandled rejection
    // from inside its own minified source, so a crash prints a 30 kB line instead of the error. Node's defaults
    // already end the process on both; drop the glue's handlers.
    const before = {
      uncaughtException: process.listeners('uncaughtException'),
      unhandledRejection: process.listeners('unhandledRejection'),
    };
    let ok: boolean;
    try {
      ok = await tf.setBackend('wasm');
      await tf.ready();
    } finally {
      for (const l of process.listeners('uncaughtException')) {
        if (!before.uncaughtException.includes(l)) process.removeListener('uncaughtException', l);
      }
      for (const l of process.listeners('unhandledRejection')) {
        if (!before.unhandledRejection.includes(l)) process.removeListener('unhandledRejection', l);
      }
    }
    if (!ok) return false;
    registerWasmFills();
    return true;
  } catch {
    return false;
  }
}

/**
 * Initialise a backend and return its name ('tensorflow', 'wasm' or 'cpu'). 'auto' tries node → wasm → cpu.
 * An explicit choice that cannot load is an error (BAD_OPTION), never a silent fallback.
 */
export async function initBackend(prefer: BackendChoice = 'auto'): Promise<string> {
  if (prefer === 'node' || prefer === 'auto') {
    if (await tryNode()) return tf.getBackend();
    if (prefer === 'node') {
      throw new IdsError('BAD_OPTION', 'backend "node": @tensorflow/tfjs-node is not installed or failed to load');
    }
  }
  if (prefer === 'wasm' || prefer === 'auto') {
    if (await tryWasm()) return tf.getBackend();
    if (prefer === 'wasm') {
      throw new IdsError('BAD_OPTION', `backend "wasm": @tensorflow/tfjs-backend-wasm failed to load from ${join(wasmDistDir())}`);
    }
  }
  if (prefer === 'cpu' || prefer === 'auto') {
    await tf.setBackend('cpu');
    await tf.ready();
    return tf.getBackend();
  }
  throw new IdsError('BAD_OPTION', `backend "${String(prefer)}": expected auto, node, wasm or cpu`);
}
