import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ip, udpFrame } from '../../capture/frames.ts';
import { A, EVIL, GW, hop, run, type Pkt } from './watchers-fixtures.ts';

// A DNS server on the Internet: its frames reach the LAN through the gateway's MAC.
const DNS = { mac: GW.mac, ip: ip('203.0.113.53') };

/** `n` DNS queries carrying A's address, sent from `from`'s MAC, each answered with 1,000 bytes to A. */
function reflection(n: number, from: typeof A): Pkt[] {
  const pkts: Pkt[] = [];
  for (let i = 0; i < n; i++) {
    const t = i * 0.004;
    pkts.push({ frame: udpFrame({ ...hop(from, GW), src: A.ip, dst: DNS.ip }, { sport: 30000 + i, dport: 53, payload: new Uint8Array(40) }), t });
    pkts.push({ frame: udpFrame(hop(DNS, A), { sport: 53, dport: 30000 + i, payload: new Uint8Array(1000) }), t: t + 0.001 });
  }
  return pkts;
}

test('reflection with spoofed queries: queries from another MAC than the address\'s are not the victim asking', async () => {
  // The attacker's queries carry A's address from its own MAC; the first comes before any frame shows A's MAC.
  const spoofed = await run(reflection(600, EVIL));
  const amp = spoofed.found.filter((f) => f.evidence.kind === 'udp-amplification');
  assert.equal(amp.length, 1, JSON.stringify(spoofed.found.map((f) => f.evidence.kind)));
  assert.equal(amp[0].host, '192.168.1.10');
  assert.equal(amp[0].class, 'DoS');
  assert.ok(amp[0].tUs < 2.2e6, `found after ~500 answers (${amp[0].tUs} µs)`);
  assert.equal(spoofed.w.flood!.spoofedQueries, 599);

  // The same exchange asked by A itself (its own MAC): solicited answers, no amplification.
  const own = await run(reflection(600, A));
  assert.equal(own.found.filter((f) => f.evidence.kind === 'udp-amplification').length, 0);
  assert.equal(own.w.flood!.spoofedQueries, 0);
});
