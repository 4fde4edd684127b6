import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readdresser, replayCapture } from '../../lab/background.ts';
import { ip, mac, tcpFrame, udpFrame, arpFrame, ARP_REQUEST, TCP_ACK } from '../../capture/frames.ts';
import { internetChecksum, verifyChecksums } from '../../capture/decode.ts';
import { FrameList } from '../../lab/wire.ts';
import { sharedData } from '../helpers/shared-data.ts';

const hop = (src: string, dst: string) => ({ srcMac: mac('02:00:00:00:00:01'), dstMac: mac('02:00:00:00:00:02'), src: ip(src), dst: ip(dst) });

test('private addresses move into the lab subnet keeping the last octet; public ones stay; checksums stay valid', () => {
  const f = tcpFrame(hop('10.10.10.227', '52.219.36.20'), { sport: 1, dport: 443, seq: 5, ack: 6, flags: TCP_ACK, window: 100, payload: new Uint8Array(30).fill(7) });
  const r0 = new Readdresser(0);
  r0.frame(f);
  assert.equal(f.subarray(26, 30).join('.'), '192.168.50.227');
  assert.equal(f.subarray(30, 34).join('.'), '52.219.36.20');
  assert.deepEqual(verifyChecksums(f), { ip: true, l4: true });
  const u = udpFrame(hop('192.168.1.136', '169.254.8.208'), { sport: 5353, dport: 5353, payload: new Uint8Array(11).fill(1) });
  new Readdresser(2).frame(u); // a replica moves hosts (but not .1 / .255)
  assert.equal(u.subarray(26, 30).join('.'), `192.168.50.${((136 - 2 + 74) % 253) + 2}`);
  assert.equal(u.subarray(30, 34).join('.'), `192.168.51.${((208 - 2 + 74) % 253) + 2}`, 'a second subnet gets its own /24');
  assert.deepEqual(verifyChecksums(u), { ip: true, l4: true });
  const a = arpFrame({ op: ARP_REQUEST, senderMac: mac('02:00:00:00:00:01'), senderIp: ip('192.168.0.5'), targetIp: ip('192.168.0.1') });
  r0.frame(a); // 192.168.0/24 is this capture's second private subnet
  assert.equal(a.subarray(28, 32).join('.'), '192.168.51.5');
  assert.equal(a.subarray(38, 42).join('.'), '192.168.51.1');
});

test('a frame cut by the snap length is updated incrementally (RFC 1624): the IP header checksum still verifies', () => {
  const whole = tcpFrame(hop('172.16.11.12', '74.125.19.17'), { sport: 64565, dport: 443, seq: 1, ack: 2, flags: TCP_ACK, window: 9, payload: new Uint8Array(400).fill(3) });
  const cut = whole.slice(0, 96);
  new Readdresser(0).frame(cut);
  assert.equal(internetChecksum(cut, 14, 34), 0);
  // The TCP checksum, adjusted incrementally, equals a full recomputation over the whole re-addressed frame.
  const full = whole.slice();
  new Readdresser(0).frame(full);
  assert.deepEqual([...cut.subarray(50, 52)], [...full.subarray(50, 52)]);
});

test('replaying a real capture re-times it to the lab clock, in order', async (t) => {
  const f = sharedData(t, 'pcaps', 'benign', 'tcpreplay-mixed.pcap');
  if (!f) return;
  const list = new FrameList();
  const r = await replayCapture(f, list, 1_000_000, 0);
  assert.equal(r.packets, 179);
  assert.equal(list.times[0], 1_000_000);
  for (let i = 1; i < list.length; i++) assert.ok(list.times[i] >= list.times[i - 1]);
  assert.ok(list.frames.some((x) => x[26] === 192 && x[27] === 168 && x[28] === 50), 'some source moved into 192.168.50/24');
});
