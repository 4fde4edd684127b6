/**
 * The bundle downlink (`{prefix}/{site}/{hub}/bundle`, QoS 1): a retrained model reaches hubs without a reflash.
 *
 * Payload (JSON, one of):
 *   {"files": {"manifest.json": "<base64>", "manifest.sig": "<base64>", "model.int8.onnx": "<base64>",
 *              "preprocess.wasm": "<base64>", ...}}      the bundle itself (every file of the bundle folder)
 *   {"path": "/srv/bundles/2026-12-01.1"}               a bundle folder already on the hub (e.g. synced by rsync)
 * The files are written to a fresh folder under the hub's state directory and verified there exactly like the
 * startup bundle (signature, then hashes); the caller loads it only if that passes. File names must be plain
 * names, so a payload cannot write outside its folder.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, isAbsolute } from 'node:path';
import { IdsError } from '../shared/errors.ts';

/** A bundle is a few MB at most; the downlink refuses anything larger before parsing it. */
export const MAX_DOWNLINK_BYTES = 64 << 20;
const FILE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const B64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

let staged = 0;

/** Turns a downlink payload into a bundle folder on disk (not yet verified); returns its path. */
export function stageDownlink(payload: Uint8Array, stateDir: string): string {
  if (payload.byteLength > MAX_DOWNLINK_BYTES) {
    throw new IdsError('BAD_BUNDLE', `downlink: payload of ${payload.byteLength} bytes exceeds ${MAX_DOWNLINK_BYTES}`);
  }
  let msg: unknown;
  try {
    msg = JSON.parse(Buffer.from(payload).toString('utf8'));
  } catch (e) {
    throw new IdsError('BAD_BUNDLE', `downlink: payload is not JSON (${(e as Error).message})`);
  }
  const m = msg as { path?: unknown; files?: unknown };
  if (typeof m?.path === 'string') {
    if (!isAbsolute(m.path)) throw new IdsError('BAD_BUNDLE', `downlink: path "${m.path}" must be absolute`);
    return m.path;
  }
  if (!m || typeof m.files !== 'object' || m.files === null || Array.isArray(m.files)) {
    throw new IdsError('BAD_BUNDLE', 'downlink: payload must be {"files": {name: base64}} or {"path": "/abs/dir"}');
  }
  const entries = Object.entries(m.files as Record<string, unknown>);
  if (entries.length === 0 || entries.length > 32) throw new IdsError('BAD_BUNDLE', `downlink: ${entries.length} files`);
  for (const [name, b64] of entries) {
    if (!FILE_NAME_RE.test(name)) throw new IdsError('BAD_BUNDLE', `downlink: invalid file name ${JSON.stringify(name)}`);
    if (typeof b64 !== 'string' || !B64_RE.test(b64)) throw new IdsError('BAD_BUNDLE', `downlink: ${name} is not base64`);
  }
  const dir = join(stateDir, 'bundles', `downlink-${Date.now()}-${staged++}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const [name, b64] of entries) writeFileSync(join(dir, name), Buffer.from(b64 as string, 'base64'));
  return dir;
}

/** Encodes a bundle folder's files as a downlink payload (for operators' tools and tests). */
export function encodeDownlink(files: Record<string, Uint8Array>): string {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(files)) out[k] = Buffer.from(v).toString('base64');
  return JSON.stringify({ files: out });
}
