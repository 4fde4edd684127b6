/**
 * `QUEUE_DIR/active-bundle`: the bundle last taken from the downlink, so an over-the-air update survives a power
 * cycle. The record says whether the hub created that folder itself (only then may it ever remove it) and, for an
 * operator's deliberate rollback (--allow-downgrade), the release it replaced.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { verifyBundle } from '../shared/bundle-verify.ts';
import { bundleRelease } from '../shared/manifest.ts';

export const ACTIVE_BUNDLE_FILE = 'active-bundle';

export interface ActiveBundle {
  dir: string;
  /** The hub unpacked this folder itself (a `files`/`url` downlink), as opposed to a `path` bundle. */
  owned: boolean;
  /** Set when the bundle was installed as a rollback: the release of the bundle it replaced. */
  rolledBackFrom?: number;
}

export function readActiveBundle(stateDir: string): ActiveBundle | undefined {
  let text: string;
  try {
    text = readFileSync(join(stateDir, ACTIVE_BUNDLE_FILE), 'utf8').trim();
  } catch {
    return undefined;
  }
  if (!text) return undefined;
  try {
    const r = JSON.parse(text) as Partial<ActiveBundle>;
    if (typeof r.dir !== 'string') return undefined;
    const rolledBackFrom = typeof r.rolledBackFrom === 'number' ? r.rolledBackFrom : undefined;
    return { dir: r.dir, owned: r.owned === true, rolledBackFrom };
  } catch {
    // Written by an earlier version as a bare path: use it, never remove it.
    return { dir: text, owned: false };
  }
}

export function writeActiveBundle(stateDir: string, rec: ActiveBundle): void {
  // The state folder may have been removed under the running hub: recreate it rather than lose the record.
  mkdirSync(stateDir, { recursive: true });
  const tmp = join(stateDir, ACTIVE_BUNDLE_FILE + '.tmp');
  writeFileSync(tmp, JSON.stringify(rec) + '\n');
  renameSync(tmp, join(stateDir, ACTIVE_BUNDLE_FILE));
}

/**
 * The bundle to start with: --bundle, unless the last downlinked bundle still verifies and is newer by release
 * (the same comparison a downlink must pass), or was an operator's rollback from a release --bundle does not pass.
 * So an update pushed over the air survives a power cycle, a rollback stays rolled back, and an operator who
 * installs a newer bundle by hand still gets it.
 */
export async function chooseStartBundle(
  bundleDir: string,
  stateDir: string | undefined,
  publicKeyPem: string | Uint8Array,
  log: (line: string) => void,
): Promise<{ dir: string; fromDownlink: boolean; record?: ActiveBundle }> {
  const rec = stateDir ? readActiveBundle(stateDir) : undefined;
  if (!rec) return { dir: bundleDir, fromDownlink: false };
  try {
    const given = bundleRelease((await verifyBundle(bundleDir, { publicKeyPem })).manifest);
    const pushed = (await verifyBundle(rec.dir, { publicKeyPem })).manifest;
    const kept = rec.rolledBackFrom !== undefined && given <= rec.rolledBackFrom;
    if (bundleRelease(pushed) > given || kept) {
      log(`starting with bundle ${pushed.model.version} from the downlink (${rec.dir}), ` +
        (kept ? `a rollback from release ${rec.rolledBackFrom}` : 'newer than --bundle'));
      return { dir: rec.dir, fromDownlink: true, record: rec };
    }
  } catch (e) {
    // --bundle itself is checked again (and refused loudly) by loadBundle; a bad pushed bundle is just skipped.
    log(`downlinked bundle ${rec.dir} not used: ${(e as Error).message}`);
  }
  return { dir: bundleDir, fromDownlink: false, record: rec };
}
