/**
 * The lab's UDP services: CoAP and SSDP on the bulb, DNS and NTP in the internet namespace. Each answers a
 * request larger than it came, which is what makes them reflection amplifiers when a request's source is spoofed.
 * Malformed datagrams are dropped; replies are never larger than 1,400 bytes.
 */
import { createSocket, type Socket } from 'node:dgram';

function bind(port: number, host: string, handle: (msg: Buffer) => Buffer | undefined): Socket {
  const s = createSocket('udp4');
  s.on('message', (msg, rinfo) => {
    let reply: Buffer | undefined;
    try {
      reply = handle(msg);
    } catch {
      reply = undefined;
    }
    if (reply) s.send(reply, rinfo.port, rinfo.address);
  });
  s.on('error', () => {});
  s.bind(port, host);
  return s;
}

const CORE = Buffer.from(
  Array.from({ length: 14 }, (_, i) => `</light/${i}>;rt="core.light";if="core.a";obs;ct=50,</sensor/${i}>;rt="temperature";if="core.s"`).join(','),
).subarray(0, 1200);

/** CoAP (RFC 7252): a GET is answered 2.05 Content (an ACK for a CON, a NON for a NON); `.well-known/core` is big. */
export function startCoap(host = '0.0.0.0'): Socket {
  return bind(5683, host, (m) => {
    if (m.length < 4 || m[0] >> 6 !== 1 || m[1] !== 1) return undefined; // version 1, code 0.01 GET only
    const tkl = m[0] & 15;
    if (tkl > 8 || m.length < 4 + tkl) return undefined;
    const type = (m[0] >> 4) & 3;
    const wantsCore = m.includes(Buffer.from('core'));
    const payload = wantsCore ? CORE : Buffer.from('{"on":true,"level":72}');
    const head = Buffer.from([0x40 | ((type === 0 ? 2 : 1) << 4) | tkl, 0x45, m[2], m[3]]);
    return Buffer.concat([head, m.subarray(4, 4 + tkl), Buffer.from([0xc1, wantsCore ? 40 : 50, 0xff]), payload]);
  });
}

const SSDP_REPLY = Buffer.from(
  'HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=1800\r\nEXT:\r\nLOCATION: http://198.18.0.15:49152/description.xml\r\n' +
    'SERVER: Linux/3.10 UPnP/1.0 SmartBulb/2.1\r\nST: upnp:rootdevice\r\nUSN: uuid:2f402f80-da50-11e1-9b23-0017881a2b3c::upnp:rootdevice\r\n' +
    'hue-bridgeid: 001788FFFE1A2B3C\r\n\r\n',
);

export function startSsdp(host = '0.0.0.0'): Socket {
  return bind(1900, host, (m) => (m.subarray(0, 8).toString() === 'M-SEARCH' ? SSDP_REPLY : undefined));
}

/** Reads a DNS question name; returns its end offset (no compression in questions). */
function questionEnd(m: Buffer): number {
  let i = 12;
  while (i < m.length && m[i] !== 0) {
    if (m[i] > 63) return -1;
    i += m[i] + 1;
  }
  return i + 5 <= m.length ? i + 5 : -1;
}

function rr(type: number, data: Buffer): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(0xc00c, 0);
  h.writeUInt16BE(type, 2);
  h.writeUInt16BE(1, 4);
  h.writeUInt32BE(300, 6);
  h.writeUInt16BE(data.length, 10);
  return Buffer.concat([h, data]);
}

/** DNS: A → one address in the internet block; ANY/TXT → a kilobyte of TXT records (the amplification). */
export function startDns(host: string): Socket {
  return bind(53, host, (m) => {
    if (m.length < 17 || (m[2] & 0x80) !== 0 || m.readUInt16BE(4) !== 1) return undefined;
    const end = questionEnd(m);
    if (end < 0) return undefined;
    const qtype = m.readUInt16BE(end - 4);
    const name = m.subarray(12, end - 4);
    let h = 0;
    for (const b of name) h = (h * 31 + b) & 0xffff;
    const answers =
      qtype === 1
        ? [rr(1, Buffer.from([198, 19, 1 + (h >> 8) % 200, 1 + (h & 255) % 250]))]
        : qtype === 255 || qtype === 16
          ? Array.from({ length: 5 }, (_, i) => rr(16, Buffer.concat([Buffer.from([200]), Buffer.alloc(200, 97 + i)])))
          : [];
    const head = Buffer.from(m.subarray(0, 12));
    head[2] = 0x81;
    head[3] = 0x80;
    head.writeUInt16BE(answers.length, 6);
    head.writeUInt16BE(0, 8);
    head.writeUInt16BE(0, 10);
    return Buffer.concat([head, m.subarray(12, end), ...answers]);
  });
}

/** NTP: a client request (mode 3) gets a server reply (mode 4) with the time. */
export function startNtp(host: string): Socket {
  return bind(123, host, (m) => {
    if (m.length < 48 || (m[0] & 7) !== 3) return undefined;
    const r = Buffer.alloc(48);
    r[0] = 0x24; // LI 0, version 4, mode 4
    r[1] = 2;
    r[2] = m[2];
    r[3] = 0xe9;
    const secs = Math.floor(Date.now() / 1000) + 2_208_988_800;
    m.copy(r, 24, 40, 48); // originate = the client's transmit time
    for (const off of [16, 32, 40]) r.writeUInt32BE(secs >>> 0, off);
    return r;
  });
}
