import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Correlator } from '../../aggregator/correlator.ts';
import { AlertSchema, IncidentSchema, type Alert, type Incident } from '../../shared/payloads.ts';
import { alertPayload } from './fixtures.ts';

function setup(over: Partial<ConstructorParameters<typeof Correlator>[0]> = {}) {
  let now = 1_000_000;
  const out: Incident[] = [];
  const c = new Correlator({
    now: () => now, onIncident: (i) => out.push(IncidentSchema.parse(i)),
    outbreakHubs: 3, outbreakWindowMs: 60_000, burstAlerts: 50, burstWindowMs: 10_000, quietMs: 120_000, silentMs: 90_000,
    ...over,
  });
  return { c, out, advance: (ms: number) => (now += ms), now: () => now };
}
const alert = (site: string, hub: string, seq: number, cls = 'Mirai', count = 1): Alert =>
  AlertSchema.parse({ ...alertPayload(site, hub, seq, cls), count });

describe('correlator', () => {
  it('opens an outbreak when one class comes from K hubs within the window, updates it, closes it when quiet', () => {
    const { c, out, advance } = setup();
    c.onAlerts([alert('s1', 'h1', 1), alert('s1', 'h2', 1)]);
    assert.equal(out.length, 0);
    advance(70_000); // h1 and h2 fall out of the window
    c.onAlerts([alert('s2', 'h3', 1)]);
    assert.equal(out.length, 0, 'stale hubs do not count');
    c.onAlerts([alert('s1', 'h1', 2)]);
    advance(1000);
    c.onAlerts([alert('s2', 'h4', 1)]);
    assert.equal(out.length, 1);
    const o = out[0];
    assert.equal(o.kind, 'outbreak');
    assert.equal(o.state, 'open');
    assert.equal(o.class, 'Mirai');
    assert.deepEqual([...o.hubs].sort(), ['s1/h1', 's2/h3', 's2/h4']);
    assert.deepEqual([...o.sites].sort(), ['s1', 's2']);
    assert.equal(o.alerts, 3);
    c.onAlerts([alert('s3', 'h5', 1), alert('s3', 'h5', 2)]);
    assert.equal(out.length, 1, 'evidence is batched until tick');
    advance(1000);
    c.tick();
    assert.equal(out.length, 2);
    assert.equal(out[1].state, 'updated');
    assert.equal(out[1].alerts, 5);
    assert.equal(out[1].hubs.length, 4);
    assert.equal(out[1].id, o.id);
    c.tick();
    assert.equal(out.length, 2, 'nothing new, nothing sent');
    advance(118_000); // 119 s after the last evidence
    c.tick();
    assert.equal(out.length, 2, 'not quiet long enough');
    advance(1000);
    c.tick();
    assert.equal(out[2].state, 'closed');
    assert.equal(out[2].closedAt, out[2].updatedAt);
    assert.equal(c.openIncidents().length, 0);
  });

  it('Normal verdicts never make incidents', () => {
    const { c, out } = setup({ burstAlerts: 2 });
    c.onAlerts([alert('s', 'a', 1, 'Normal'), alert('s', 'b', 1, 'Normal'), alert('s', 'c', 1, 'Normal', 5)]);
    assert.equal(out.length, 0);
  });

  it('opens a burst when one hub reaches N verdicts of a class in the window (counting summarised alerts)', () => {
    const { c, out, advance } = setup();
    for (let i = 0; i < 4; i++) (c.onAlerts([alert('s1', 'h1', i, 'DoS', 10)]), advance(4000));
    assert.equal(out.length, 0, '40 verdicts spread over 16 s never reach 50 in 10 s');
    for (let i = 10; i < 15; i++) c.onAlerts([alert('s1', 'h1', i, 'DoS', 10)]);
    assert.equal(out.length, 1);
    assert.equal(out[0].kind, 'burst');
    assert.deepEqual(out[0].hubs, ['s1/h1']);
    assert.ok(out[0].alerts >= 50);
    assert.match(out[0].summary, /burst of DoS on s1\/h1/);
  });

  it('hub-offline opens on the last will and closes when the hub is back', () => {
    const { c, out, advance } = setup();
    c.onStatus({ v: 1, site: 's1', hub: 'h1', ts: 1, state: 'offline' });
    c.onStatus({ v: 1, site: 's1', hub: 'h1', ts: 2, state: 'offline' });
    assert.equal(out.length, 1);
    assert.equal(out[0].kind, 'hub-offline');
    advance(5000);
    c.onStatus({ v: 1, site: 's1', hub: 'h1', ts: 3, state: 'online', bundle: 'b' });
    assert.equal(out.length, 2);
    assert.equal(out[1].state, 'closed');
    assert.equal(out[1].id, out[0].id);
  });

  it('hub-silent opens when stats stop and closes when they resume; restore keeps open incidents closable', () => {
    const { c, out, advance, now } = setup();
    const stats = { v: 1 as const, site: 's1', hub: 'h2', ts: 0, intervalMs: 10_000, flowsPerSec: 1, flows: 10,
      classCounts: {}, latencyMs: { p50: 1, p95: 2, p99: 3 }, queueDepth: 0, dropped: 0, malformed: 0, offlineQueued: 0, inputErrors: 0, bundlesRejected: 0, unconfirmed: 0 };
    c.onStats(stats);
    advance(89_000);
    c.tick();
    assert.equal(out.length, 0);
    advance(1000);
    c.tick();
    assert.equal(out.length, 1);
    assert.equal(out[0].kind, 'hub-silent');
    c.tick();
    assert.equal(out.length, 1);
    // A restarted aggregator takes the open incident back and closes it when stats return.
    const c2 = new Correlator({ now, onIncident: (i) => out.push(i) });
    c2.restore([out[0]]);
    assert.equal(c2.openIncidents().length, 1);
    c2.onStats(stats);
    assert.equal(out[1].state, 'closed');
    assert.equal(out[1].id, out[0].id);
  });
});
