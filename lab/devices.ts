/**
 * Ordinary life on the lab network: the IoT devices' cloud TLS, DNS through the gateway, NTP, vendor UDP
 * heartbeats, and people using their devices (a phone viewing the camera over HTTP and RTSP, an admin's telnet
 * login). Normal traffic in the same generator style as the attacks, so a model cannot tell classes apart by how
 * the lab writes packets; the MITM scenario relays these same sessions.
 */
import { udpFrame } from '../capture/frames.ts';
import { CAMERA, DOORBELL, GATEWAY, IOT_HUB, LAPTOP, PHONE, PLUG, SPEAKER, hop, internetHost, type Host } from './network.ts';
import { TcpConn, ephemeralPort, text, type Sink } from './wire.ts';
import { after, type GenContext } from './attacks/types.ts';

export const IOT_DEVICES = [CAMERA, SPEAKER, PLUG, DOORBELL, IOT_HUB];

function cloudTls(ctx: GenContext, sink: Sink, dev: Host, t: number): number {
  const { rng, pool } = ctx;
  const cloud = internetHost(rng, [443, 8883]);
  const c = new TcpConn(sink, rng, dev, cloud, ephemeralPort(rng), rng.next() < 0.8 ? 443 : 8883, t, { rttUs: 25_000 + rng.exp(30_000) });
  c.handshake();
  c.clientSends(pool.random(rng, 517)); // ClientHello
  c.wait(rng.exp(5_000));
  c.serverSends(pool.random(rng, rng.int(2_800, 4_600))); // ServerHello, certificate
  c.clientSends(pool.random(rng, 126));
  c.serverSends(pool.random(rng, 51));
  for (let k = rng.int(1, 8); k > 0; k--) {
    c.wait(rng.exp(1_500_000));
    c.clientSends(pool.random(rng, rng.int(60, 700)));
    c.wait(rng.exp(20_000));
    c.serverSends(pool.random(rng, rng.int(40, 2_000)));
  }
  c.wait(rng.exp(500_000));
  c.close(rng.next() < 0.6);
  return c.t;
}

const CLOUD_NAMES = [
  'api.amazonalexa.com', 'device-metrics-us.amazon.com', 'a1.tuyaus.com', 'm2.tuyaus.com', 'ot.io.mi.com',
  'de.ot.io.mi.com', 'open.ys7.com', 'dev.ys7.com', 'time.google.com', 'pool.ntp.org', 'api.nugu.co.kr',
  'iot.meross.com', 'use1-api.tplinkra.com', 'connectivitycheck.gstatic.com', 'firmware.ezvizlife.com',
];

/** A DNS query (A record, recursion desired) for `name`. */
export function dnsQuery(id: number, name: string): Uint8Array {
  const labels = name.split('.').flatMap((l) => [l.length, ...new TextEncoder().encode(l)]);
  return Uint8Array.from([id >> 8, id & 255, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, 0, 1, 0, 1]);
}

/** The answer to `query`: the question echoed and `answers` A records (TTL 300). */
export function dnsAnswer(query: Uint8Array, answers: Uint8Array[]): Uint8Array {
  const head = query.slice();
  head[2] = 0x81;
  head[3] = 0x80;
  head[7] = answers.length;
  const rrs = answers.flatMap((a) => [0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4, ...a]);
  return Uint8Array.from([...head, ...rrs]);
}

function dns(ctx: GenContext, sink: Sink, dev: Host, t: number): number {
  const { rng } = ctx;
  const sport = ephemeralPort(rng);
  const q = dnsQuery(rng.int(0, 65536), rng.pick(CLOUD_NAMES));
  sink.push(t, udpFrame(hop(dev, GATEWAY, rng.int(0, 65536)), { sport, dport: 53, payload: q }));
  const tr = t + 4_000 + rng.exp(25_000);
  const answers = Array.from({ length: rng.int(1, 4) }, () => internetHost(rng).ip);
  sink.push(tr, udpFrame(hop(GATEWAY, dev, rng.int(0, 65536)), { sport: 53, dport: sport, payload: dnsAnswer(q, answers) }));
  return tr;
}

/** NTPv4 client request (LI 0, VN 4, mode 3) or server reply (mode 4, stratum 2) with a transmit timestamp. */
function ntpPacket(rng: GenContext['rng'], tUs: number, server: boolean): Uint8Array {
  const p = new Uint8Array(48);
  p[0] = server ? 0x24 : 0x23;
  if (server) {
    p[1] = 2;
    p[2] = 3;
    p[3] = 0xe9;
  }
  const sec = Math.floor(tUs / 1e6) + 2_208_988_800; // NTP era 0
  const frac = Math.floor(((tUs % 1e6) / 1e6) * 4294967296);
  const at = 40;
  p[at] = (sec >>> 24) & 255;
  p[at + 1] = (sec >>> 16) & 255;
  p[at + 2] = (sec >>> 8) & 255;
  p[at + 3] = sec & 255;
  p[at + 4] = (frac >>> 24) & 255;
  p[at + 5] = (frac >>> 16) & 255;
  p[at + 6] = rng.int(0, 256);
  p[at + 7] = rng.int(0, 256);
  return p;
}

function ntp(ctx: GenContext, sink: Sink, dev: Host, t: number): number {
  const { rng } = ctx;
  const server = internetHost(rng, []);
  const sport = rng.next() < 0.5 ? 123 : ephemeralPort(rng);
  sink.push(t, udpFrame(hop(dev, server, rng.int(0, 65536)), { sport, dport: 123, payload: ntpPacket(rng, t, false) }));
  const tr = t + 20_000 + rng.exp(40_000);
  sink.push(tr, udpFrame(hop(server, dev, rng.int(0, 65536)), { sport: 123, dport: sport, payload: ntpPacket(rng, tr, true) }));
  return tr;
}

/** Vendor heartbeats over UDP (the IoTID20 devices' 8899/9020/10101 traffic). */
function heartbeat(ctx: GenContext, sink: Sink, dev: Host, t: number): number {
  const { rng, pool } = ctx;
  const server = internetHost(rng, []);
  const dport = rng.pick([8899, 9020, 10101]);
  const sport = ephemeralPort(rng);
  let tt = t;
  for (let k = rng.int(2, 12); k > 0; k--) {
    sink.push(tt, udpFrame(hop(dev, server, rng.int(0, 65536)), { sport, dport, payload: pool.random(rng, rng.int(20, 80)) }));
    if (rng.next() < 0.7) sink.push(tt + 30_000 + rng.exp(20_000), udpFrame(hop(server, dev, rng.int(0, 65536)), { sport: dport, dport: sport, payload: pool.random(rng, 32) }));
    tt += 100_000 + rng.exp(400_000);
  }
  return tt;
}

/** A person's phone or laptop using a device: the camera's web page and snapshot, or an RTSP DESCRIBE. */
function localUse(ctx: GenContext, sink: Sink, t: number): number {
  const { rng, pool } = ctx;
  const client = rng.pick([PHONE, LAPTOP]);
  if (rng.next() < 0.6) {
    const dev = rng.pick([CAMERA, PLUG, IOT_HUB]);
    const c = new TcpConn(sink, rng, client, dev, ephemeralPort(rng), dev === IOT_HUB ? 8080 : 80, t, { rttUs: 3_000 + rng.exp(3_000) });
    if (!c.handshake()) return c.t;
    for (let k = rng.int(1, 4); k > 0; k--) {
      c.clientSends(text(`GET ${rng.pick(['/', '/snapshot.jpg', '/status', '/api/v1/state'])} HTTP/1.1\r\nHost: ${dev.name}\r\nUser-Agent: Mozilla/5.0 (Linux; Android 9)\r\nAccept: */*\r\n\r\n`));
      c.wait(2_000 + rng.exp(15_000));
      c.serverSends(pool.random(rng, rng.int(200, 40_000)));
      c.wait(rng.exp(3_000_000));
    }
    c.close(true);
    return c.t;
  }
  if (rng.next() < 0.8) {
    const c = new TcpConn(sink, rng, client, CAMERA, ephemeralPort(rng), 554, t, { rttUs: 3_000 + rng.exp(3_000) });
    c.handshake();
    for (const m of ['OPTIONS', 'DESCRIBE']) {
      c.clientSends(text(`${m} rtsp://${CAMERA.ip.join('.')}:554/live RTSP/1.0\r\nCSeq: ${m === 'OPTIONS' ? 1 : 2}\r\nUser-Agent: LibVLC/3.0.8\r\n\r\n`));
      c.wait(3_000 + rng.exp(5_000));
      c.serverSends(text(`RTSP/1.0 200 OK\r\nCSeq: ${m === 'OPTIONS' ? 1 : 2}\r\n\r\n`.padEnd(m === 'OPTIONS' ? 120 : 600, ' ')));
    }
    c.close(true);
    return c.t;
  }
  // The owner logs in to the camera over telnet (port 23 is not only Mirai's).
  const c = new TcpConn(sink, rng, LAPTOP, CAMERA, ephemeralPort(rng), 23, t, { rttUs: 3_000 });
  c.handshake();
  c.serverSends(text(`\r\n${CAMERA.name} login: `));
  c.wait(1_500_000 + rng.exp(2_000_000)); // a human types
  c.clientSends(text('admin\r\n'));
  c.serverSends(text('Password: '));
  c.wait(2_000_000 + rng.exp(2_000_000));
  c.clientSends(text('Jq7#lab-owner\r\n'));
  c.serverSends(text('\r\n# '));
  for (let k = rng.int(1, 5); k > 0; k--) {
    c.wait(3_000_000 + rng.exp(5_000_000));
    c.clientSends(text(`${rng.pick(['uptime', 'ls /mnt', 'cat /proc/meminfo', 'reboot'])}\r\n`));
    c.serverSends(pool.random(rng, rng.int(20, 600)));
  }
  c.close(true);
  return c.t;
}

/** One ordinary session of `dev`; returns its end time. */
export function deviceSession(ctx: GenContext, sink: Sink, dev: Host, t: number): number {
  const kind = ctx.rng.next();
  if (kind < 0.45) return cloudTls(ctx, sink, dev, t);
  if (kind < 0.75) return dns(ctx, sink, dev, t);
  if (kind < 0.85) return ntp(ctx, sink, dev, t);
  return heartbeat(ctx, sink, dev, t);
}

/** Normal traffic of the whole lab: device sessions, and now and then someone using a device. */
export function benignChatter(ctx: GenContext, startUs: number, units: number): number {
  const { rng, sink } = ctx;
  let t = startUs;
  let end = t;
  for (let i = 0; i < units; i++) {
    t = after(rng, t, 300_000);
    const e = rng.next() < 0.15 ? localUse(ctx, sink, t) : deviceSession(ctx, sink, rng.pick(IOT_DEVICES), t);
    end = Math.max(end, e);
  }
  return end;
}
