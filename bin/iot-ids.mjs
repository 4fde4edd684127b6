#!/usr/bin/env node
// The iot-ids command. Sources are TypeScript run through tsx, so there is no build step to forget.
// The demo promises to leave no file outside its temporary folder, so it runs without tsx's disk cache
// (/tmp/tsx-*); other commands keep the cache for faster starts.
// The aggregator, a long-running service, runs from a bundle of its sources instead (scripts/build-aggregator.mjs:
// about a third less memory and CPU while draining), rebuilt first if they changed; IOT_IDS_FROM_SOURCE=1 runs it
// through tsx like the rest.
import { pathToFileURL } from 'node:url';

const bundle = process.argv[2] === 'aggregator' && !process.env.IOT_IDS_FROM_SOURCE ? await aggregatorBundle() : undefined;
if (bundle) {
  const [{ defineCommand, runMain }, { default: aggregator }] = await Promise.all([import('citty'), import(pathToFileURL(bundle).href)]);
  runMain(defineCommand({ meta: { name: 'iot-ids', description: 'Intrusion detection for IoT fleets' }, subCommands: { aggregator } }));
} else {
  if (process.argv[2] === 'demo') process.env.TSX_DISABLE_CACHE ??= '1';
  const { register } = await import('tsx/esm/api');
  register();
  await import('../cli/main.ts');
}

/** The aggregator's bundle, built or rebuilt if needed; undefined (said once) when it cannot be, e.g. a read-only install. */
async function aggregatorBundle() {
  try {
    const { ensureAggregatorBundle } = await import('../scripts/build-aggregator.mjs');
    return (await ensureAggregatorBundle()).file;
  } catch (e) {
    process.stderr.write(`iot-ids: running the aggregator from its sources (its bundle could not be built: ${e.message})\n`);
    return undefined;
  }
}
