import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mergeWatcherSettings, parseWatcherSettings } from '../../shared/watcher-settings.ts';
import { isIdsError } from '../../shared/errors.ts';
import { MANIFEST_FILE, MODEL_FILE, PREPROCESS_WASM_FILE, type BundleManifest } from '../../shared/manifest.ts';
import { watcherSettings } from '../../edge/hub-command.ts';
import { Hub } from '../../edge/hub.ts';
import { buildBundle } from '../../trainer/bundle/build.ts';
import { readDevPrivateKey } from '../../trainer/bundle/dev-key.ts';
import { PROJECT_ROOT } from '../helpers/shared-data.ts';

const SHIPPED = join(PROJECT_ROOT, 'models', 'iot-ids-lab-v1');
const KEY = readFileSync(join(PROJECT_ROOT, 'models', 'dev-key', 'public.pem'), 'utf8');

const refused = (f: () => unknown, code: string, text: RegExp) =>
  assert.throws(f, (e) => isIdsError(e) && e.code === code && text.test(e.message), `expected ${code} ${text}`);

test('watcher settings: unknown watchers and unknown or bad settings are refused by name', () => {
  assert.deepEqual(parseWatcherSettings({ scan: { failures: 100 }, relay: false }, 'x'), { scan: { failures: 100 }, relay: false });
  refused(() => parseWatcherSettings({ scn: {} }, '--watchers'), 'BAD_OPTION', /--watchers: unknown watcher scn \(one of arp, scan,/);
  refused(() => parseWatcherSettings({ scan: { failure: 3 } }, '--watchers'), 'BAD_OPTION', /failure is not a setting of scan \(one of .*failures/);
  refused(() => parseWatcherSettings({ scan: { failures: -1 } }, '--watchers'), 'BAD_OPTION', /scan\.failures/);
  refused(() => parseWatcherSettings({ flood: { ampPorts: [53, 'x'] } }, '--watchers'), 'BAD_OPTION', /flood\.ampPorts/);
  refused(() => parseWatcherSettings({ scan: 3 }, '--watchers'), 'BAD_OPTION', /scan must be an object of settings or false/);
  // The hub's option goes through the same check (it used to ignore unknown names inside a watcher).
  refused(() => watcherSettings('{"bruteForce":{"session":5}}'), 'BAD_OPTION', /session is not a setting of bruteForce/);
  assert.deepEqual(watcherSettings('{"arp":{"gatewayIps":["10.0.0.1"]}}'), { arp: { gatewayIps: ['10.0.0.1'] } });

  // --watchers on top of the bundle's, setting by setting; false replaces a whole watcher either way.
  assert.deepEqual(mergeWatcherSettings({ scan: { failures: 10, echoHosts: 8 }, relay: false }, { scan: { failures: 20 } }),
    { scan: { failures: 20, echoHosts: 8 }, relay: false });
  assert.deepEqual(mergeWatcherSettings({ relay: false }, { relay: { relays: 5 } }), { relay: { relays: 5 } });
  assert.deepEqual(mergeWatcherSettings({ scan: { failures: 10 } }, { scan: false }), { scan: false });
});

async function startHub(bundleDir: string, watchers?: object): Promise<Hub> {
  return Hub.start({
    bundleDir, publicKeyPem: KEY, broker: 'mqtt://127.0.0.1:9', reconnectMs: 60_000, site: 's', hub: 'h', statsIntervalMs: 0,
    log: () => undefined, ...(watchers ? { watchers } : {}),
  });
}

test('bundle build --watchers signs the settings into the manifest; the hub uses them and --watchers overrides them', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'watchers-bundle-'));
  try {
    const file = join(dir, 'watchers.json');
    writeFileSync(file, JSON.stringify({ relay: false, scan: { failures: 32 } }));
    const out = join(dir, 'bundle');
    const r = spawnSync(process.execPath, [join(PROJECT_ROOT, 'bin', 'iot-ids.mjs'), 'bundle', 'build', '--from', SHIPPED, '--watchers', file, '--out', out],
      { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const m = JSON.parse(readFileSync(join(out, MANIFEST_FILE), 'utf8')) as BundleManifest;
    assert.deepEqual(m.watchers, { relay: false, scan: { failures: 32 } });

    writeFileSync(file, JSON.stringify({ relay: { relay: 3 } }));
    const bad = spawnSync(process.execPath, [join(PROJECT_ROOT, 'bin', 'iot-ids.mjs'), 'bundle', 'build', '--from', SHIPPED, '--watchers', file, '--out', join(dir, 'bad')],
      { encoding: 'utf8' });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /relay is not a setting of relay/);

    let hub = await startHub(out);
    assert.equal(hub.watchers.relay, undefined, 'off per the manifest');
    assert.ok(hub.watchers.scan);
    await hub.close();
    hub = await startHub(out, { relay: { relays: 5 } });
    assert.ok(hub.watchers.relay, 'the hub option wins');
    await hub.close();

    // A bundle whose manifest names a setting this hub does not know is refused, not half-applied.
    const src = JSON.parse(readFileSync(join(SHIPPED, MANIFEST_FILE), 'utf8')) as BundleManifest;
    const { files: _f, ...rest } = src;
    const odd = await buildBundle({
      outDir: join(dir, 'odd'), privateKeyPem: readDevPrivateKey(),
      files: { [MODEL_FILE]: join(SHIPPED, MODEL_FILE), [PREPROCESS_WASM_FILE]: join(SHIPPED, PREPROCESS_WASM_FILE) },
      manifest: { ...rest, watchers: { scan: { failures: 8, window: 5 } } as never },
    });
    await assert.rejects(startHub(odd), (e) => isIdsError(e) && e.code === 'BAD_BUNDLE' && /window is not a setting of scan/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a downlinked bundle brings its watcher settings at once: changed watchers are rebuilt, the others keep their state', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'watchers-downlink-'));
  try {
    const src = JSON.parse(readFileSync(join(SHIPPED, MANIFEST_FILE), 'utf8')) as BundleManifest;
    const { files: _f, ...rest } = src;
    const next = await buildBundle({
      outDir: join(dir, 'next'), privateKeyPem: readDevPrivateKey(),
      files: { [MODEL_FILE]: join(SHIPPED, MODEL_FILE), [PREPROCESS_WASM_FILE]: join(SHIPPED, PREPROCESS_WASM_FILE) },
      manifest: {
        ...rest,
        model: { ...rest.model, version: `${rest.model.version}-w`, release: (rest.model.release ?? 0) + 1 },
        watchers: { relay: false, scan: { failures: 32 } },
      },
    });
    const hub = await Hub.start({
      bundleDir: SHIPPED, publicKeyPem: KEY, broker: 'mqtt://127.0.0.1:9', reconnectMs: 60_000, site: 's', hub: 'h',
      statsIntervalMs: 0, stateDir: join(dir, 'state'), downlink: true, log: () => undefined,
    });
    try {
      const { arp, scan, flood, relay } = hub.watchers;
      assert.ok(relay && scan && arp && flood);
      const files: Record<string, string> = {};
      for (const name of ['manifest.json', 'manifest.sig', MODEL_FILE, PREPROCESS_WASM_FILE]) {
        files[name] = readFileSync(join(next, name)).toString('base64');
      }
      assert.equal(await hub.applyDownlink(Buffer.from(JSON.stringify({ files }))), true, hub.stats.lastError);
      assert.equal(hub.modelVersion, `${rest.model.version}-w`);
      assert.equal(hub.watchers.relay, undefined, 'turned off by the new manifest without a restart');
      assert.notEqual(hub.watchers.scan, scan, 'scan rebuilt with its new settings');
      assert.equal(hub.watchers.arp, arp, 'the ARP watcher keeps its bindings');
      assert.equal(hub.watchers.flood, flood);
    } finally {
      await hub.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
