/**
 * The fleet loop's premise, on the inputs test/fleet/fixture.ts builds from ../shared/data: the shipped model
 * misclassifies the chosen benign device (MAXGateway) often enough to give an operator something to mark, while
 * it catches the real attacks mixed in beside it, and the other benign traffic stays quiet. One real hub (the
 * shipped bundle, the embedded broker), every hub's phase inputs in turn.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedBroker } from '../../cli/embedded-broker.ts';
import { Hub } from '../../edge/hub.ts';
import { PROJECT_ROOT, SHARED_DATA, sharedData } from '../helpers/shared-data.ts';
import { DEVICE, buildFleetInputs, flowKey } from './fixture.ts';

test('fleet inputs: the shipped model calls the device Scan often and catches the attacks beside it', { timeout: 120_000 }, async (t) => {
  const device = sharedData(t, 'pcaps', 'benign', DEVICE.id);
  if (!device) return;
  const tmp = mkdtempSync(join(tmpdir(), 'iot-ids-fleet-in-'));
  const broker = await startEmbeddedBroker();
  const c = { device: 0, deviceAlerts: 0, attack: 0, attackRight: 0, benign: 0, benignAlerts: 0 };
  let hub: Hub | undefined;
  try {
    const inputs = await buildFleetInputs(SHARED_DATA, tmp, { hubs: 4 });
    hub = await Hub.start({
      bundleDir: join(PROJECT_ROOT, 'models', 'iot-ids-lab-v1'),
      publicKeyPem: readFileSync(join(PROJECT_ROOT, 'models', 'dev-key', 'public.pem'), 'utf8'),
      broker: broker.url, site: 's', hub: 'h', downlink: false, statsIntervalMs: 0, log: () => {},
      onVerdict: (v) => {
        const k = flowKey(v);
        const family = inputs.attackFamily(k);
        if (inputs.isDevice(k)) (c.device++, v.alerted && c.deviceAlerts++);
        else if (family) (c.attack++, v.alerted === family && c.attackRight++);
        else (c.benign++, v.alerted && c.benignAlerts++);
      },
    });
    for (const h of inputs.hubs) for (const f of h.phases) await hub.runFlows(f);
    await hub.drain();
    const want = inputs.counts.reduce((s, n) => s + n.device.reduce((a, b) => a + b, 0), 0);
    assert.equal(c.device, want, 'every device flow classified');
    console.log(`device ${DEVICE.id}: ${c.deviceAlerts} of ${c.device} flows alerted (${(100 * c.deviceAlerts / c.device).toFixed(1)} %); ` +
      `attacks: ${c.attackRight} of ${c.attack} alerted with their family; other benign: ${c.benignAlerts} of ${c.benign} alerted`);
    assert.ok(c.deviceAlerts / c.device >= 0.15, 'the device is misclassified often');
    assert.ok(c.attackRight / c.attack >= 0.95, 'the attacks are caught by the model');
    assert.ok(c.benignAlerts / c.benign <= 0.01, 'the other benign traffic stays quiet');
  } finally {
    await hub?.close();
    await broker.close();
    rmSync(tmp, { recursive: true, force: true });
  }
});
