/**
 * The committed development key pair (models/dev-key/, demo only: see its README). The CLI falls back to it
 * when no --key is given and prints a warning; library code never uses it implicitly.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const DEV_PRIVATE_KEY_PATH = fileURLToPath(new URL('../../models/dev-key/private.pem', import.meta.url));
export const DEV_PUBLIC_KEY_PATH = fileURLToPath(new URL('../../models/dev-key/public.pem', import.meta.url));

export const readDevPrivateKey = (): string => readFileSync(DEV_PRIVATE_KEY_PATH, 'utf8');
export const readDevPublicKey = (): string => readFileSync(DEV_PUBLIC_KEY_PATH, 'utf8');

export function warnDevKey(what: 'signing' | 'verifying', log: (s: string) => void = (s) => process.stderr.write(s)): void {
  log(`warning: ${what} with the DEMO development key (models/dev-key/, public, not secret); pass --key for real use\n`);
}
