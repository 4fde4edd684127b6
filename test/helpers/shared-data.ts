/**
 * Where the real shared data lives (../shared/data beside the project, as in CI). Tests that need it call
 * `sharedData(t, ...)`, which skips the test with a message when the folder is absent on a user's machine.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, resolve } from 'node:path';
import type { TestContext } from 'node:test';

export const PROJECT_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const SHARED_DATA = process.env.IOT_IDS_SHARED_DATA ?? resolve(PROJECT_ROOT, '..', 'shared', 'data');

/** The path of a shared data file, or undefined after marking the test skipped when it is not there. */
export function sharedData(t: TestContext, ...parts: string[]): string | undefined {
  const p = join(SHARED_DATA, ...parts);
  if (existsSync(p)) return p;
  t.skip(`shared data not found at ${p}: skipped (see ../shared/data/README.md)`);
  return undefined;
}
