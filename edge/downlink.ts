/**
 * The bundle downlink (`{prefix}/{site}/{hub}/bundle`, QoS 1): a retrained model reaches hubs without a reflash.
 *
 * Payload (JSON, one of):
 *   {"files": {"manifest.json": "<base64>", "manifest.sig": "<base64>", "model.int8.onnx": "<base64>",
 *              "preprocess.wasm": "<base64>", ...}}      the bundle itself (every file of the bundle folder)
 *   {"path": "/srv/bundles/2026-12-01.1"}               a bundle folder already on the hub (e.g. synced by rsync)
 *   {"url": "https://models.example/2026-12-01.1.json"}  where to GET the first form (brokers limit message sizes)
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
export async function stageDownlink(payload: Uint8Array, stateDir: string, fetchTimeoutMs = 60_000): Promise<string> {
  const m = parsePayload(payload, 'payload') as { path?: unknown; url?: unknown; files?: unknown };
  if (typeof m.path === 'string') {
    if (!isAbsolute(m.path)) throw new IdsError('BAD_BUNDLE', `downlink: path "${m.path}" must be absolute`);
    return m.path;
  }
  if (typeof m.url === 'string') {
    const body = await fetchLimited(m.url, fetchTimeoutMs);
    return writeFiles(parsePayload(body, m.url) as { files?: unknown }, stateDir);
  }
  return writeFiles(m, stateDir);
}

function parsePayload(bytes: Uint8Array, what: string): Record<string, unknown> {
  if (bytes.byteLength > MAX_DOWNLINK_BYTES) {
    throw new IdsError('BAD_BUNDLE', `downlink: ${what} of ${bytes.byteLength} bytes exceeds ${MAX_DOWNLINK_BYTES}`);
  }
  let msg: unknown;
  try {
    msg = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (e) {
    throw new IdsError('BAD_BUNDLE', `downlink: ${what} is not JSON (${(e as Error).message})`);
  }
  if (!msg || typeof msg !== 'object' || Array.isArray(msg)) throw new IdsError('BAD_BUNDLE', `downlink: ${what} is not an object`);
  return msg as Record<string, unknown>;
}

/** GETs an http(s) URL, refusing bodies over the limit while they stream in. */
async function fetchLimited(url: string, timeoutMs: number): Promise<Uint8Array> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new IdsError('BAD_BUNDLE', `downlink: url "${url}" is not a URL`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new IdsError('BAD_BUNDLE', `downlink: url must be http(s), got ${u.protocol}`);
  let res: Response;
  try {
    res = await fetch(u, { signal: AbortSignal.timeout(timeoutMs), redirect: 'follow' });
  } catch (e) {
    throw new IdsError('BAD_BUNDLE', `downlink: GET ${url} failed: ${(e as Error).message}`);
  }
  if (!res.ok || !res.body) throw new IdsError('BAD_BUNDLE', `downlink: GET ${url} answered ${res.status}`);
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > MAX_DOWNLINK_BYTES) throw new IdsError('BAD_BUNDLE', `downlink: ${url} is over ${MAX_DOWNLINK_BYTES} bytes`);
    parts.push(chunk);
  }
  return new Uint8Array(Buffer.concat(parts));
}

function writeFiles(m: { files?: unknown }, stateDir: string): string {
  if (typeof m.files !== 'object' || m.files === null || Array.isArray(m.files)) {
    throw new IdsError('BAD_BUNDLE', 'downlink: payload must be {"files": {name: base64}}, {"path": "/abs/dir"} or {"url": "https://..."}');
  }
  const entries = Object.entries(m.files as Record<string, unknown>);
  if (entries.length === 0 || entries.length > 32) throw new IdsError('BAD_BUNDLE', `downlink: ${entries.length} files`);
  for (const [name, b64] of entries) {
    if (!FILE_NAME_RE.test(name)) throw new IdsError('BAD_BUNDLE', `downlink: invalid file name ${JSON.stringify(name)}`);
    if (typeof b64 !== 'string' || !B64_RE.test(b64)) throw new IdsError('BAD_BUNDLE', `downlink: ${name} is not base64`);
  }
  if (!stateDir) throw new IdsError('BAD_OPTION', 'downlink: the hub has no state directory to unpack a bundle into');
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
