/**
 * Who is calling the HTTP API. Every token has a name (the `by` of the marks it makes) and a permission:
 * `write` may mark alerts and undo marks, `read` may only look. `--token T` is the identity "operator" (write);
 * `--tokens FILE` adds named ones, one per line:
 *
 *     # name   token                              permission (optional, default write)
 *     alice    3f0c1e8a9b7d4c2e8f6a1b3c5d7e9f01
 *     noc      9a8b7c6d5e4f30211203f4e5d6c7b8a9   read
 *
 * A file and not repeated `--token name:secret` options: secrets on a command line show in `ps` and in shell
 * history, and a `:` could never again appear in a plain `--token`.
 */
import { readFileSync } from 'node:fs';
import { createHash, timingSafeEqual } from 'node:crypto';
import { IdsError } from '../shared/errors.ts';

export type Permission = 'read' | 'write';

export interface TokenIdentity {
  /** Who: 1-64 of [A-Za-z0-9._@-]; what marks record as `by`. */
  name: string;
  token: string;
  permission: Permission;
}

/** What a request is allowed to do, once its token matched. */
export interface Identity {
  name: string;
  permission: Permission;
}

/** The identity of `--token T`. */
export const DEFAULT_TOKEN_NAME = 'operator';
/** Requests to a server without tokens (`--no-auth`, the local demo). */
export const ANONYMOUS: Identity = { name: 'anonymous', permission: 'write' };

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
/** Shorter tokens are guessable; longer ones are not tokens but accidents (and cost hashing per request). */
const MIN_TOKEN = 8;
const MAX_TOKEN = 512;
const MAX_TOKENS = 1000;

function checkToken(where: string, token: string): void {
  if (token.length < MIN_TOKEN || token.length > MAX_TOKEN || /[\s\u0000-\u001f\u007f]/.test(token)) {
    throw new IdsError('BAD_OPTION', `${where}: a token must be ${MIN_TOKEN}-${MAX_TOKEN} printable characters without spaces`);
  }
}

/** Parses the text of a tokens file; errors name the line. */
export function parseTokens(text: string, file = 'tokens'): TokenIdentity[] {
  const out: TokenIdentity[] = [];
  const names = new Set<string>();
  const tokens = new Set<string>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '' || line.startsWith('#')) continue;
    const where = `${file}:${i + 1}`;
    const f = line.split(/\s+/);
    if (f.length < 2 || f.length > 3) throw new IdsError('BAD_OPTION', `${where}: expected "name token [read|write]", got ${f.length} fields`);
    const [name, token, perm = 'write'] = f;
    if (!NAME_RE.test(name)) throw new IdsError('BAD_OPTION', `${where}: name "${name.slice(0, 70)}" must be 1-64 of [A-Za-z0-9._@-]`);
    checkToken(where, token);
    if (perm !== 'read' && perm !== 'write') throw new IdsError('BAD_OPTION', `${where}: permission must be read or write, got "${perm.slice(0, 20)}"`);
    if (names.has(name)) throw new IdsError('BAD_OPTION', `${where}: name "${name}" given twice`);
    if (tokens.has(token)) throw new IdsError('BAD_OPTION', `${where}: the token of "${name}" is already another name's`);
    names.add(name);
    tokens.add(token);
    out.push({ name, token, permission: perm });
    if (out.length > MAX_TOKENS) throw new IdsError('BAD_OPTION', `${file}: more than ${MAX_TOKENS} tokens`);
  }
  if (out.length === 0) throw new IdsError('BAD_OPTION', `${file}: no tokens in it`);
  return out;
}

export function readTokensFile(file: string): TokenIdentity[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new IdsError('BAD_OPTION', `--tokens ${file}: ${(e as Error).message}`);
  }
  return parseTokens(text, file);
}

/**
 * `--token T` (as "operator") and the named tokens together; a name or a token given twice is refused, so one
 * secret never stands for two people.
 */
export function identities(token: string | undefined, named: readonly TokenIdentity[] = []): TokenIdentity[] {
  const all = [...(token ? [{ name: DEFAULT_TOKEN_NAME, token, permission: 'write' as const }] : []), ...named];
  const names = new Set<string>();
  const tokens = new Set<string>();
  for (const t of all) {
    if (!NAME_RE.test(t.name)) throw new IdsError('BAD_OPTION', `token name "${t.name.slice(0, 70)}" must be 1-64 of [A-Za-z0-9._@-]`);
    if (names.has(t.name)) throw new IdsError('BAD_OPTION', `token name "${t.name}" given twice (--token is "${DEFAULT_TOKEN_NAME}")`);
    if (tokens.has(t.token)) throw new IdsError('BAD_OPTION', `the token of "${t.name}" is also another name's`);
    names.add(t.name);
    tokens.add(t.token);
  }
  return all;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * Finds the identity whose token equals `presented`. Constant time per token (both sides hashed to 32 bytes, so
 * not even the length leaks), and every token is compared whatever matched, so the time does not tell which one.
 */
export class TokenTable {
  private readonly entries: { digest: Buffer; id: Identity }[];

  constructor(tokens: readonly TokenIdentity[]) {
    this.entries = tokens.map((t) => ({ digest: digest(t.token), id: { name: t.name, permission: t.permission } }));
  }

  get size(): number {
    return this.entries.length;
  }

  identify(presented: string | undefined): Identity | undefined {
    if (presented === undefined || presented.length > MAX_TOKEN * 4) return undefined;
    const d = digest(presented);
    let found: Identity | undefined;
    for (const e of this.entries) if (timingSafeEqual(d, e.digest) && !found) found = e.id;
    return found;
  }
}

const byRequest = new WeakMap<object, Identity>();

/** Records who a request is (the HTTP token check calls it once per request). */
export const setIdentity = (req: object, id: Identity): void => void byRequest.set(req, id);

/** Who a request is; a request the token check did not see (no tokens configured) is anonymous. */
export const identityOf = (req: object): Identity => byRequest.get(req) ?? ANONYMOUS;
