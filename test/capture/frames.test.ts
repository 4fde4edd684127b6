import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  arpFrame, ARP_REPLY, icmpFrame, ip, linuxSynOptions, mac, tcpFrame, udpFrame, TCP_ACK, TCP_PSH, TCP_SYN,
} from '../../capture/frames.ts';
import { internetChecksum, verifyChecksums } from '../../capture/decode.ts';
import { isIdsError } from '../../shared/errors.ts';

const v4 = { srcMac: mac('02:00:00:00:00:01'), dstMac: mac('02:00:00:00:00:02'), src: ip('192.168.1.10'), dst: ip('10.0.0.1'), ipId: 0x1234 };
const v6 = { ...v4, src: ip('fe80::1'), dst: ip('2001:db8::abcd:2') };

test('IPv4 header checksum matches a known frame (RFC 1071 worked example header)', () => {
  // Header from the classic example: 4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7.
  const h = Buffer.from('450000730000400040110000c0a80001c0a800c7', 'hex');
  assert.equal(internetChecksum(h, 0, 20), 0xb861);
});

test('TCP, UDP, ICMP over IPv4 and IPv6 carry checksums that verify', () => {
  const payload = new TextEncoder().encode('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  const cases = [
    tcpFrame(v4, { sport: 40000, dport: 80, seq: 0xdeadbeef, ack: 0, flags: TCP_SYN, window: 64240, options: linuxSynOptions(123) }),
    tcpFrame(v4, { sport: 40000, dport: 80, seq: 1, ack: 2, flags: TCP_PSH | TCP_ACK, window: 502, payload }),
    tcpFrame(v6, { sport: 40000, dport: 80, seq: 1, ack: 2, flags: TCP_ACK, window: 502, payload: payload.subarray(0, 7) }),
    udpFrame(v4, { sport: 5353, dport: 53, payload: payload.subarray(0, 13) }),
    udpFrame(v6, { sport: 5353, dport: 53, payload }),
    icmpFrame(v4, { type: 8, code: 0, rest: 0x00010001, payload: payload.subarray(0, 5) }),
    icmpFrame(v6, { type: 128, code: 0, rest: 0x00010001, payload }),
  ];
  for (const f of cases) {
    assert.ok(f.length >= 60);
    assert.deepEqual(verifyChecksums(f), { ip: true, l4: true });
  }
  // A flipped payload bit must break the layer-4 checksum: the check can fail.
  const broken = cases[1].slice();
  broken[broken.length - 1] ^= 1;
  assert.deepEqual(verifyChecksums(broken), { ip: true, l4: false });
  const badIp = cases[0].slice();
  badIp[14 + 8] = 1; // TTL changed without fixing the checksum
  assert.equal(verifyChecksums(badIp).ip, false);
});

test('TCP header fields land where tcpdump expects them', () => {
  const f = tcpFrame(v4, { sport: 1, dport: 23, seq: 0x0a000001, ack: 0, flags: TCP_SYN, window: 14600 });
  const d = Buffer.from(f);
  assert.equal(d.readUInt16BE(12), 0x0800);
  assert.equal(d.readUInt16BE(16), 40); // IP total length: no options, no payload
  assert.equal(d.readUInt16BE(36), 23);
  assert.equal(d.readUInt32BE(38), 0x0a000001);
  assert.equal(d[47], TCP_SYN);
});

test('ARP reply layout', () => {
  const f = arpFrame({ op: ARP_REPLY, senderMac: mac('aa:bb:cc:dd:ee:ff'), senderIp: ip('192.168.1.1'), targetMac: v4.dstMac, targetIp: ip('192.168.1.5') });
  const d = Buffer.from(f);
  assert.equal(d.readUInt16BE(12), 0x0806);
  assert.equal(d.readUInt16BE(20), 2);
  assert.equal(d.subarray(28, 32).join('.'), '192.168.1.1');
  assert.deepEqual([...d.subarray(0, 6)], [...v4.dstMac]);
});

test('address parsing rejects bad text with BAD_OPTION', () => {
  assert.deepEqual([...ip('::1')], [...new Uint8Array(15), 1]);
  for (const bad of ['1.2.3', '1.2.3.256', 'a::b::c', '12345::1']) assert.throws(() => ip(bad), (e) => isIdsError(e, 'BAD_OPTION'));
  assert.throws(() => mac('00:11:22'), (e) => isIdsError(e, 'BAD_OPTION'));
});
