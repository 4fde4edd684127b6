/**
 * The bundle downlink (`{prefix}/{site}/{hub}/bundle`, QoS 1): a retrained model reaches hubs without a reflash.
 *
 * Payload (JSON, one of):
 *   {"files": {"manifest.json": "<base64>", "manifest.sig": "<base64>", "model.int8.onnx": "<base64>",
 *              "preprocess.wasm": "<base64>", ...}}      the bundle itself (every file of the bundle folder)
 *   {"url": "https://models.example/2026-12-01.1.json"}  where to GET the first form (brokers limit message sizes)
 *   {"path": "/srv/bundles/2026-12-01.1"}               a bundle folder already on the hub (e.g. synced by rsync),
 *                                                        only with --downlink-root and only strictly under it
 * The first two are written to a fresh folder the hub creates under its staging folder; the third is used where it
 * is and never written to or removed. Anyone who can publish on the topic controls the payload, so nothing here
 * may name a folder to delete: the caller removes only folders this module reports as `owned` (created by it).
 */
import { mkdirSync, mkdtempSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, relative, sep } from 'node:path';
import { IdsError } from '../shared/errors.ts';

/** A bundle is a few MB at most; the downlink refuses anything larger before parsing it. */
export const MAX_DOWNLINK_BYTES = 64 << 20;
const FILE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const B64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

export interface DownlinkOptions {
  /** Where `files`/`url` bundles are unpacked, each into a new folder of its own. */
  stagingDir: string;
  /** Real path of --downlink-root; undefined = the `path` form is refused. */
  pathRoot?: string;
  /** Real paths no `path` payload may name, lie inside or contain (the hub's state folder). */
  forbidden?: readonly string[];
  fetchTimeoutMs?: number;
}

export interface StagedBundle {
  /** The bundle folder to verify (a real path for the `path` form). */
  dir: string;
  /** True when this module created `dir` (the caller may remove it); false for a `path` bundle. */
  owned: boolean;
}

/** Turns a downlink payload into a bundle folder on disk (not yet verified). */
export async function stageDownlink(payload: Uint8Array, opts: DownlinkOptions): Promise<StagedBundle> {
  const m = parsePayload(payload, 'payload') as { path?: unknown; url?: unknown; files?: unknown };
  if (m.path !== undefined) {
    if (typeof m.path !== 'string') throw new IdsError('BAD_BUNDLE', 'downlink: path must be a string');
    return { dir: resolveUnderRoot(m.path, opts), owned: false };
  }
  if (typeof m.url === 'string') {
    const body = await fetchLimited(m.url, opts.fetchTimeoutMs ?? 60_000);
    return { dir: writeFiles(parsePayload(body, m.url) as { files?: unknown }, opts.stagingDir), owned: true };
  }
  return { dir: writeFiles(m, opts.stagingDir), owned: true };
}

/** True when `child` lies strictly below `parent` (both absolute, normalised). */
export function isStrictlyInside(parent: string, child: string): boolean {
  const r = relative(parent, child);
  return r !== '' && r !== '..' && !r.startsWith('..' + sep) && !isAbsolute(r);
}

/**
 * The `path` form: resolved with realpath (so `..` and symlinks are followed to where they really lead) and
 * accepted only strictly under the root, and never overlapping the hub's own state.
 */
function resolveUnderRoot(path: string, opts: DownlinkOptions): string {
  if (opts.pathRoot === undefined) {
    throw new IdsError('BAD_BUNDLE', 'downlink: the path form is off on this hub (start it with --downlink-root DIR to allow it)');
  }
  if (!isAbsolute(path)) throw new IdsError('BAD_BUNDLE', `downlink: path ${JSON.stringify(path)} must be absolute`);
  let real: string;
  try {
    real = realpathSync(path);
  } catch (e) {
    throw new IdsError('BAD_BUNDLE', `downlink: path ${JSON.stringify(path)} cannot be resolved (${(e as NodeJS.ErrnoException).code ?? e})`);
  }
  if (!isStrictlyInside(opts.pathRoot, real)) {
    throw new IdsError('BAD_BUNDLE', `downlink: path ${JSON.stringify(path)} resolves to ${real}, not strictly under --downlink-root ${opts.pathRoot}`);
  }
  for (const f of opts.forbidden ?? []) {
    if (real === f || isStrictlyInside(f, real) || isStrictlyInside(real, f)) {
      throw new IdsError('BAD_BUNDLE', `downlink: path ${JSON.stringify(path)} overlaps the hub's state folder`);
    }
  }
  if (!statSync(real).isDirectory()) throw new IdsError('BAD_BUNDLE', `downlink: path ${JSON.stringify(path)} is not a folder`);
  return real;
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

function writeFiles(m: { files?: unknown }, stagingDir: string): string {
  if (typeof m.files !== 'object' || m.files === null || Array.isArray(m.files)) {
    throw new IdsError('BAD_BUNDLE', 'downlink: payload must be {"files": {name: base64}}, {"url": "https://..."} or {"path": "/abs/dir"}');
  }
  const entries = Object.entries(m.files as Record<string, unknown>);
  if (entries.length === 0 || entries.length > 32) throw new IdsError('BAD_BUNDLE', `downlink: ${entries.length} files`);
  for (const [name, b64] of entries) {
    if (!FILE_NAME_RE.test(name)) throw new IdsError('BAD_BUNDLE', `downlink: invalid file name ${JSON.stringify(name)}`);
    if (typeof b64 !== 'string' || !B64_RE.test(b64)) throw new IdsError('BAD_BUNDLE', `downlink: ${name} is not base64`);
  }
  if (!stagingDir) throw new IdsError('BAD_OPTION', 'downlink: the hub has no state directory to unpack a bundle into');
  let dir: string | undefined;
  try {
    mkdirSync(stagingDir, { recursive: true });
    // mkdtemp makes a folder nobody else has: the only kind the hub ever removes.
    dir = mkdtempSync(join(stagingDir, 'downlink-'));
    for (const [name, b64] of entries) writeFileSync(join(dir, name), Buffer.from(b64 as string, 'base64'));
    return dir;
  } catch (e) {
    if (dir) rmSync(dir, { recursive: true, force: true });
    throw new IdsError('STORE_FAILED', `downlink: cannot unpack into ${stagingDir}: ${(e as Error).message}`, { cause: e });
  }
}

/** Encodes a bundle folder's files as a downlink payload (for operators' tools and tests). */
export function encodeDownlink(files: Record<string, Uint8Array>): string {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(files)) out[k] = Buffer.from(v).toString('base64');
  return JSON.stringify({ files: out });
}
