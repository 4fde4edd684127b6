import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labelFor, makeTruth, TAIL_US } from '../../../lab/live/labels.ts';
import { loadScenarios } from '../../../lab/live/scenario.ts';
import type { FlowRecord } from '../../../shared/packets.ts';
import { STAT_FEATURES } from '../../../shared/features.ts';

const scenarios = loadScenarios();
const get = (n: string) => scenarios.find((s) => s.name === n)!;
const T0 = 1_800_000_000_000_000;
const flow = (srcIp: string, dstIp: string, startUs: number, protocol = 6, srcPort = 40000, dstPort = 80): FlowRecord => ({
  srcIp, dstIp, srcPort, dstPort, protocol, startUs, features: new Float64Array(0),
});

test('flows of the attacker inside the window are the attack; others and later ones are Normal', () => {
  const t = makeTruth(get('hping3-syn-flood'), 'hping3 ...', T0, T0 + 10_000_000, 0);
  assert.equal(labelFor(t, flow('198.18.0.66', '198.18.0.10', T0 + 5_000_000)).subCat, 'DoS-Synflooding');
  assert.equal(labelFor(t, flow('198.18.0.10', '198.18.0.66', T0 + 5_000_000)).cat, 'DoS');
  assert.equal(labelFor(t, flow('198.18.0.20', '198.18.0.10', T0 + 5_000_000)).cat, 'Normal');
  assert.equal(labelFor(t, flow('198.18.0.66', '198.18.0.10', T0 + 10_000_000 + TAIL_US + 1)).cat, 'Normal');
  assert.equal(labelFor(t, flow('198.18.0.66', '198.18.0.10', T0 - 5_000_000)).label, 'Normal');
});

test('spoofed and reflected flows are labelled by the scenario rules, not by the attacker address', () => {
  const spoof = makeTruth(get('hping3-syn-flood-spoofed'), '', T0, T0 + 10_000_000, 0);
  assert.equal(labelFor(spoof, flow('198.19.44.44', '198.18.0.10', T0 + 1)).cat, 'DoS');
  assert.equal(labelFor(spoof, flow('198.19.44.45', '198.18.0.10', T0 + 1)).cat, 'Normal');
  const coap = makeTruth(get('reflection-coap'), '', T0, T0 + 10_000_000, 0);
  assert.equal(labelFor(coap, flow('198.18.0.10', '198.18.0.15', T0 + 1, 17, 20001, 5683)).subCat, 'DoS-Reflection Flooding');
  assert.equal(labelFor(coap, flow('198.18.0.20', '198.18.0.15', T0 + 1, 17, 50001, 5683)).cat, 'Normal', "the phone's own CoAP");
  assert.equal(labelFor(coap, flow('198.18.0.10', '198.18.0.15', T0 + 1, 1, 0, 0)).cat, 'DoS', 'the victim\'s ICMP unreachables');
  assert.equal(labelFor(coap, flow('198.18.0.10', '198.18.0.15', T0 + 1, 0, 0, 0)).cat, 'DoS', 'ICMP as compat mode writes it (protocol 0)');
  const mitm = makeTruth(get('arpspoof-gateway'), '', T0, T0 + 10_000_000, 0);
  assert.equal(labelFor(mitm, flow('198.18.0.14', '198.19.1.1', T0 + 1)).cat, 'MITM ARP Spoofing');
  assert.equal(labelFor(mitm, flow('198.18.0.14', '198.18.0.13', T0 + 1, 6, 40000, 1883)).cat, 'Normal', 'LAN traffic is not relayed');
  const long = flow('198.18.0.14', '198.19.1.1', T0 - 30_000_000);
  long.features = new Float64Array(STAT_FEATURES.length);
  assert.equal(labelFor(mitm, long).cat, 'Normal', 'ended before the poisoning');
  long.features[STAT_FEATURES.indexOf('Flow_Duration')] = 35_000_000;
  assert.equal(labelFor(mitm, long).cat, 'MITM ARP Spoofing', 'began before the poisoning and went on through it');
});
