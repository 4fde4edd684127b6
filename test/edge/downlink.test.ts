/**
 * The bundle downlink as an attacker uses it: payloads published on the hub's bundle topic through a broker. The
 * `path` form may name only folders strictly under --downlink-root; nothing outside the hub's own staging folders is
 * ever removed; a bundle that is not newer than the running one is refused unless allowDowngrade.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Hub, type HubOptions } from '../../edge/hub.ts';
import { encodeDownlink, stageDownlink } from '../../edge/downlink.ts';
import { isIdsError } from '../../shared/errors.ts';
import { buildFixtureBundle, devKeyPair, type KeyPair } from './fixtures/bundle.ts';
import { startAedes, subscriber, until, type Broker } from './fixtures/brokers.ts';

let root: string;
let keys: KeyPair;
let v1: string;
let v2: string;
let broker: Broker;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'iot-ids-downlink-'));
  keys = devKeyPair();
  v1 = await buildFixtureBundle(join(root, 'bundle-v1'), keys, 'fixture-1', '2026-11-30T00:00:00Z');
  v2 = await buildFixtureBundle(join(root, 'bundle-v2'), keys, 'fixture-2', '2026-12-01T00:00:00Z');
  broker = await startAedes();
});
after(async () => {
  await broker?.stop();
  rmSync(root, { recursive: true, force: true });
});

const files = (dir: string) => Object.fromEntries(readdirSync(dir).map((f) => [f, new Uint8Array(readFileSync(join(dir, f)))]));

/** A folder holding one file, to check it survives. */
function victim(path: string): string {
  mkdirSync(path, { recursive: true });
  writeFileSync(join(path, 'precious.txt'), 'keep me');
  return path;
}
const intact = (path: string) => existsSync(join(path, 'precious.txt'));

/** Publishes downlink payloads on the hub's topic, as anyone on the broker could, and waits until each is handled. */
async function send(hub: Hub, payloads: string[]): Promise<void> {
  const pub = await subscriber(broker.url, 'unused/topic');
  const before = hub.stats.bundlesRejected + hub.stats.bundlesLoaded;
  try {
    for (const p of payloads) pub.client.publish(hub.publisher.topics.bundle, p, { qos: 1 });
    await until(() => hub.stats.bundlesRejected + hub.stats.bundlesLoaded >= before + payloads.length, 10_000, `${payloads.length} downlinks handled`);
    await hub.idleDownlink();
  } finally {
    pub.client.end(true);
  }
}

function hubOpts(over: Partial<HubOptions>): HubOptions {
  return {
    bundleDir: v1, publicKeyPem: keys.publicKeyPem, broker: broker.url, site: 'dl', hub: 'h', statsIntervalMs: 0,
    log: () => undefined, overflow: 'block', ...over,
  };
}

test('traversal payloads (.., sibling prefix, the state dir, symlinks, the root itself) touch nothing outside the staging root', { timeout: 120_000 }, async () => {
  const t = mkdtempSync(join(root, 'trav-'));
  const state = join(t, 'state');
  const dlRoot = join(t, 'root');
  mkdirSync(dlRoot);
  const outside = victim(join(t, 'victim'));
  const sibling = victim(join(t, 'root-x'));
  const stateSibling = victim(join(t, 'state-sibling'));
  const inRootBad = victim(join(dlRoot, 'not-a-bundle'));
  symlinkSync(outside, join(dlRoot, 'link'));
  const hub = await Hub.start(hubOpts({ hub: 'trav', stateDir: state, downlinkRoot: dlRoot }));
  try {
    await until(() => hub.publisher.connected, 5000, 'connect');
    writeFileSync(join(state, 'marker'), 'state');
    const payloads = [
      join(dlRoot, '..', 'victim'), // `..` out of the root
      `${dlRoot}/../victim`,
      sibling, // shares the root's string prefix
      `${dlRoot}-x`,
      state, // the hub's own state
      join(state, 'offline-queue'),
      `${state}/../state-sibling`,
      join(dlRoot, 'link'), // a symlink under the root that leads out of it
      dlRoot, // the root itself
      `${dlRoot}/`,
      inRootBad, // under the root but not a bundle: refused, and a path bundle is never removed
      'relative/path',
    ].map((p) => JSON.stringify({ path: p }));
    await send(hub, payloads);
    assert.equal(hub.stats.bundlesRejected, payloads.length);
    assert.equal(hub.stats.bundlesLoaded, 0);
    for (const v of [outside, sibling, stateSibling, inRootBad]) assert.ok(intact(v), `${v} intact`);
    assert.ok(existsSync(join(state, 'marker')) && existsSync(join(state, 'offline-queue')), 'state dir intact');
    assert.ok(existsSync(join(dlRoot, 'link')), 'the symlink itself is left alone');
    assert.equal(hub.modelVersion, 'fixture-1');
    assert.equal(hub.health.state, 'online', 'refused downlinks do not degrade the hub');
  } finally {
    await hub.close();
  }
});

test('without --downlink-root the path form is refused with the option named; files bundles that fail are removed, only they', { timeout: 120_000 }, async () => {
  const t = mkdtempSync(join(root, 'off-'));
  const state = join(t, 'state');
  const outside = victim(join(t, 'victim'));
  const hub = await Hub.start(hubOpts({ hub: 'off', stateDir: state }));
  try {
    await until(() => hub.publisher.connected, 5000, 'connect');
    const tampered = files(v2);
    tampered['preprocess.wasm'] = tampered['preprocess.wasm'].slice();
    tampered['preprocess.wasm'][10] ^= 1;
    await send(hub, [JSON.stringify({ path: outside }), encodeDownlink(tampered)]);
    assert.equal(hub.stats.bundlesRejected, 2);
    assert.ok(intact(outside));
    assert.deepEqual(readdirSync(join(state, 'bundles')), [], 'the refused files bundle was unpacked into a folder of its own and removed');
    assert.match(hub.stats.lastError ?? '', /sha256/);
  } finally {
    await hub.close();
  }
  await assert.rejects(
    stageDownlink(Buffer.from(JSON.stringify({ path: outside })), { stagingDir: join(t, 'x') }),
    (e) => isIdsError(e, 'BAD_BUNDLE') && /--downlink-root/.test(e.message),
  );
});

test('a path bundle under the root is verified in place, installed, and never removed when replaced', { timeout: 120_000 }, async () => {
  const t = mkdtempSync(join(root, 'path-'));
  const dlRoot = join(t, 'root');
  const inPlace = join(dlRoot, 'v2');
  cpSync(v2, inPlace, { recursive: true });
  const v3 = await buildFixtureBundle(join(t, 'v3'), keys, 'fixture-3', '2026-12-02T00:00:00Z');
  const hub = await Hub.start(hubOpts({ hub: 'inplace', stateDir: join(t, 'state'), downlinkRoot: dlRoot }));
  try {
    await until(() => hub.publisher.connected, 5000, 'connect');
    await send(hub, [JSON.stringify({ path: inPlace })]);
    assert.equal(hub.modelVersion, 'fixture-2');
    await send(hub, [encodeDownlink(files(v3))]);
    assert.equal(hub.modelVersion, 'fixture-3');
    assert.deepEqual(readdirSync(inPlace).sort(), readdirSync(v2).sort(), 'the replaced path bundle is still all there');
  } finally {
    await hub.close();
  }
});

test('a downgrade is refused; allowDowngrade accepts it; a restart keeps the rollback', { timeout: 120_000 }, async () => {
  const t = mkdtempSync(join(root, 'ver-'));
  const state = join(t, 'state');
  const hub = await Hub.start(hubOpts({ hub: 'ver', bundleDir: v2, stateDir: state }));
  try {
    await until(() => hub.publisher.connected, 5000, 'connect');
    await send(hub, [encodeDownlink(files(v1))]);
    assert.equal(hub.modelVersion, 'fixture-2');
    assert.equal(hub.stats.bundlesRejected, 1);
    assert.match(hub.stats.lastError ?? '', /fixture-1 \(release \d+\) is not newer than the running fixture-2.*--allow-downgrade/);
    assert.deepEqual(readdirSync(join(state, 'bundles')), [], 'the refused bundle folder is removed');
  } finally {
    await hub.close();
  }
  const rollback = await Hub.start(hubOpts({ hub: 'ver', bundleDir: v2, stateDir: state, allowDowngrade: true }));
  try {
    await until(() => rollback.publisher.connected, 5000, 'connect');
    await send(rollback, [encodeDownlink(files(v1))]);
    assert.equal(rollback.modelVersion, 'fixture-1');
    assert.equal(rollback.stats.bundlesLoaded, 1);
  } finally {
    await rollback.close();
  }
  // Restarted with the same --bundle, the hub stays rolled back (the operator chose it after seeing that bundle)...
  const again = await Hub.start(hubOpts({ hub: 'ver', bundleDir: v2, stateDir: state }));
  assert.equal(again.modelVersion, 'fixture-1');
  await again.close();
  // ...until a bundle newer than the one rolled back from is installed by hand.
  const v3 = await buildFixtureBundle(join(t, 'v3'), keys, 'fixture-3', '2026-12-02T00:00:00Z');
  const newer = await Hub.start(hubOpts({ hub: 'ver', bundleDir: v3, stateDir: state }));
  assert.equal(newer.modelVersion, 'fixture-3');
  await newer.close();
});

test('with downlink off the hub does not subscribe: a valid newer bundle is never installed', { timeout: 120_000 }, async () => {
  const hub = await Hub.start(hubOpts({ hub: 'nodl', stateDir: mkdtempSync(join(root, 'nodl-')), downlink: false }));
  const pub = await subscriber(broker.url, 'unused/topic');
  try {
    await until(() => hub.publisher.connected, 5000, 'connect');
    await new Promise<void>((r) => pub.client.publish(hub.publisher.topics.bundle, encodeDownlink(files(v2)), { qos: 1 }, () => r()));
    await new Promise((r) => setTimeout(r, 500));
    await hub.idleDownlink();
    assert.equal(hub.modelVersion, 'fixture-1');
    assert.equal(hub.stats.bundlesLoaded + hub.stats.bundlesRejected, 0);
  } finally {
    pub.client.end(true);
    await hub.close();
  }
});

test('--downlink-root must exist and must not be the state folder or inside it', { timeout: 120_000 }, async () => {
  const t = mkdtempSync(join(root, 'opt-'));
  const state = join(t, 'state');
  mkdirSync(join(state, 'inside'), { recursive: true });
  for (const r of [state, join(state, 'inside'), join(t, 'missing')]) {
    await assert.rejects(Hub.start(hubOpts({ hub: 'opt', stateDir: state, downlinkRoot: r })), (e) => isIdsError(e, 'BAD_OPTION') && /--downlink-root/.test(e.message));
  }
});

test('a hub on the committed demo key does not subscribe to the downlink unless told to', { timeout: 120_000 }, async () => {
  const { PROJECT_ROOT } = await import('../helpers/shared-data.ts');
  const dev = {
    privateKeyPem: readFileSync(join(PROJECT_ROOT, 'models', 'dev-key', 'private.pem'), 'utf8'),
    publicKeyPem: readFileSync(join(PROJECT_ROOT, 'models', 'dev-key', 'public.pem'), 'utf8'),
  };
  const t = mkdtempSync(join(root, 'demo-'));
  const d1 = await buildFixtureBundle(join(t, 'd1'), dev, 'demo-1', '2026-11-30T00:00:00Z');
  const d2 = await buildFixtureBundle(join(t, 'd2'), dev, 'demo-2', '2026-12-01T00:00:00Z');
  const base = { bundleDir: d1, publicKeyPem: dev.publicKeyPem };
  const off = await Hub.start(hubOpts({ ...base, hub: 'demo-off', stateDir: join(t, 's1') }));
  const on = await Hub.start(hubOpts({ ...base, hub: 'demo-on', stateDir: join(t, 's2'), downlink: true }));
  const pub = await subscriber(broker.url, 'unused/topic');
  try {
    await until(() => off.publisher.connected && on.publisher.connected, 5000, 'connect');
    for (const h of [off, on]) pub.client.publish(h.publisher.topics.bundle, encodeDownlink(files(d2)), { qos: 1 });
    await until(() => on.modelVersion === 'demo-2', 10_000, 'the hub told to take downlinks swaps');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(off.modelVersion, 'demo-1');
    assert.equal(off.stats.bundlesLoaded + off.stats.bundlesRejected, 0);
  } finally {
    pub.client.end(true);
    await off.close();
    await on.close();
  }
});
