/** Headless Chromium for the dashboard tests (Debian's chromium; IOT_IDS_CHROMIUM for another one). */
import { existsSync } from 'node:fs';

export const CHROMIUM = process.env.IOT_IDS_CHROMIUM ?? '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

/** Why a browser test skips, or undefined when Chromium is there. */
export const chromiumMissing = (): string | undefined =>
  existsSync(CHROMIUM) ? undefined : `chromium not found at ${CHROMIUM} (apt-get install -y chromium): skipped`;

/** A headless Chromium with its profile in `profileDir` (playwright-core drives it; loaded only when a test runs). */
export async function launchChromium(profileDir: string) {
  const { chromium } = await import('playwright-core');
  return chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM, args: ARGS, headless: true, viewport: { width: 1360, height: 1000 },
  });
}
