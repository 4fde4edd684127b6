/**
 * `iot-ids bundle score-captures --bundle DIR --expect FILE [--benign DIR [--split FILE]] [--lab DIR] [--json] [--key PEM]`:
 * every capture through the hub's own packet path, scored against its ground truth (edge/score-captures.ts).
 * Needs no broker or aggregator. Exit 0 when it ran (the table says what holds), 1 on a bad bundle or file.
 */
import { defineCommand } from 'citty';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import { IdsError, isIdsError } from '../shared/errors.ts';
import { formatRun, scoreAll } from './score-captures.ts';

export default defineCommand({
  meta: { name: 'score-captures', description: 'Run captures through the hub (defaults of --pcap) and score alerts against ground truth' },
  args: {
    bundle: { type: 'string', required: true, description: 'bundle folder' },
    expect: { type: 'string', description: 'expected.json (attack captures in attack/ beside it)' },
    benign: { type: 'string', description: 'folder of benign captures (every alert is a false positive)' },
    lab: { type: 'string', description: 'live-lab recordings: DIR/<scenario>/capture.pcap + truth.json' },
    split: { type: 'string', description: 'a model\'s split.json: benign results per side (train, validation, test devices)' },
    json: { type: 'boolean', description: 'print the full result as JSON' },
    key: { type: 'string', description: 'Ed25519 public key (PEM) the bundle must be signed with (default: the demo key)' },
  },
  async run({ args }) {
    try {
      if (!args.expect && !args.benign && !args.lab) throw new IdsError('BAD_OPTION', 'give --expect, --benign and/or --lab');
      const keyPath = args.key ?? fileURLToPath(new URL('../models/dev-key/public.pem', import.meta.url));
      if (!args.key) process.stderr.write('warning: verifying with the DEMO development key (models/dev-key/public.pem); pass --key for real use\n');
      let publicKeyPem: string;
      try {
        publicKeyPem = readFileSync(keyPath, 'utf8');
      } catch (e) {
        throw new IdsError('BAD_OPTION', `--key ${keyPath}: ${(e as Error).message}`);
      }
      let n = 0;
      const run = await scoreAll({
        bundleDir: resolve(args.bundle), publicKeyPem,
        expect: args.expect && resolve(args.expect), benign: args.benign && resolve(args.benign), lab: args.lab && resolve(args.lab),
        split: args.split && resolve(args.split),
        progress: (s) => {
          if (process.stderr.isTTY) process.stderr.write(`\r${++n} captures scored (${s.capture.slice(0, 60)})\x1b[K`);
        },
      });
      if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
      process.stdout.write(args.json ? JSON.stringify(run, null, 2) + '\n' : formatRun(run) + '\n');
    } catch (e) {
      if (!isIdsError(e)) throw e;
      process.stderr.write(`error [${e.code}]: ${e.message}\n`);
      process.exitCode = 1;
    }
  },
});
