/**
 * Mirai, after its public source (2016): the telnet scanner and brute-forcer, and the UDP, ACK and HTTP floods.
 * Each function writes what an infected IoT device of the lab (BOTS) sends and what its targets answer.
 */
import { ipv4ToInt, mssOption, tcpFrame, udpFrame, TCP_ACK, TCP_RST, TCP_SYN } from '../../capture/frames.ts';
import { ATTACKER, BOTS, LAN_HOSTS, VICTIMS, hop, internetHost, type Host } from '../network.ts';
import { TcpConn, ephemeralPort, text } from '../wire.ts';
import { after, type GenContext } from './types.ts';

/** Part of Mirai's table of factory credentials (scanner.c). */
const CREDENTIALS: [string, string][] = [
  ['root', 'xc3511'], ['root', 'vizxv'], ['root', 'admin'], ['admin', 'admin'], ['root', '888888'], ['root', 'xmhdipc'],
  ['root', 'default'], ['root', 'juantech'], ['root', '123456'], ['root', '54321'], ['support', 'support'], ['root', ''],
  ['admin', 'password'], ['root', 'root'], ['root', '12345'], ['user', 'user'], ['admin', ''], ['root', 'pass'],
  ['admin', 'admin1234'], ['root', '1111'], ['admin', 'smcadmin'], ['admin', '1111'], ['root', '666666'],
  ['root', 'password'], ['root', '1234'], ['root', 'klv123'], ['Administrator', 'admin'], ['service', 'service'],
  ['supervisor', 'supervisor'], ['guest', 'guest'], ['guest', '12345'], ['admin1', 'password'], ['administrator', '1234'],
  ['666666', '666666'], ['888888', '888888'], ['ubnt', 'ubnt'], ['root', 'klv1234'], ['root', 'Zte521'], ['root', 'hi3518'],
  ['root', 'jvbzd'], ['root', 'anko'], ['root', 'zlxx.'], ['root', '7ujMko0vizxv'], ['root', '7ujMko0admin'],
  ['root', 'system'], ['root', 'ikwb'], ['root', 'dreambox'], ['root', 'user'], ['root', 'realtek'], ['root', '00000000'],
  ['admin', '1111111'], ['admin', '1234'], ['admin', '12345'], ['admin', '54321'], ['admin', '123456'],
  ['admin', '7ujMko0admin'], ['admin', 'pass'], ['admin', 'meinsm'], ['tech', 'tech'], ['mother', 'fucker'],
];

const TELNET_NEGOTIATION = Uint8Array.of(0xff, 0xfd, 0x18, 0xff, 0xfd, 0x20, 0xff, 0xfd, 0x23, 0xff, 0xfd, 0x27);
const MIRAI_IAC_REPLY = Uint8Array.of(0xff, 0xfc, 0x18, 0xff, 0xfc, 0x20, 0xff, 0xfc, 0x23, 0xff, 0xfc, 0x27);

/** A raw scanner SYN: random source port and IP id, sequence number = target address (Mirai's fingerprint). */
function scanSyn(ctx: GenContext, bot: Host, target: Host, t: number): { sport: number; dport: number } {
  const { rng } = ctx;
  const sport = rng.int(1024, 65536);
  const dport = rng.next() < 0.9 ? 23 : 2323;
  const h = { ...hop(bot, target, rng.int(0, 65536)), df: false };
  ctx.sink.push(t, tcpFrame(h, { sport, dport, seq: ipv4ToInt(target.ip), ack: 0, flags: TCP_SYN, window: rng.int(0, 65536) }));
  return { sport, dport };
}

/**
 * Scanner + brute force: the bot SYN-scans random internet addresses and the LAN for telnet; a closed port answers
 * RST; an open one SYN-ACK (the bot's kernel resets the raw half-open), then the bot logs in over real TCP
 * connections with one credential pair each, as Mirai's scanner does.
 */
export function miraiBruteforce(ctx: GenContext, startUs: number, units: number): number {
  const { rng, sink } = ctx;
  let t = startUs;
  let end = t;
  const bot = rng.pick(BOTS);
  let flows = 0;
  while (flows < units) {
    // Internet probes: no answer (1-packet flows CICFlowMeter does not write, but they are on the wire).
    for (let k = rng.int(1, 4); k > 0; k--) {
      t = after(rng, t, 6_000);
      scanSyn(ctx, bot, internetHost(rng), t);
    }
    t = after(rng, t, 6_000);
    const target = rng.pick(LAN_HOSTS.filter((h) => h !== bot));
    const { sport, dport } = scanSyn(ctx, bot, target, t);
    const rtt = 2_000 + rng.exp(3_000);
    const tr = t + rtt;
    flows++;
    if (!target.open.includes(dport)) {
      sink.push(tr, tcpFrame(hop(target, bot, rng.int(0, 65536)), { sport: dport, dport: sport, seq: 0, ack: (ipv4ToInt(target.ip) + 1) >>> 0, flags: TCP_RST | TCP_ACK, window: 0 }));
      end = Math.max(end, tr);
      continue;
    }
    const tseq = rng.int(0, 2 ** 31);
    sink.push(tr, tcpFrame(hop(target, bot, rng.int(0, 65536)), { sport: dport, dport: sport, seq: tseq, ack: (ipv4ToInt(target.ip) + 1) >>> 0, flags: TCP_SYN | TCP_ACK, window: 14600, options: mssOption(1460) }));
    sink.push(tr + 60, tcpFrame(hop(bot, target, 0), { sport, dport, seq: (ipv4ToInt(target.ip) + 1) >>> 0, ack: 0, flags: TCP_RST, window: 0 }));
    // Brute force: up to 10 connections, one credential pair each.
    let tc = tr + 50_000 + rng.exp(200_000);
    const tries = rng.int(2, 11);
    for (let i = 0; i < tries && flows < units + 10; i++) {
      const [user, pass] = rng.pick(CREDENTIALS);
      const success = user === 'root' && pass === 'xc3511' && target === VICTIMS[0];
      const c = new TcpConn(sink, rng, bot, target, ephemeralPort(rng), dport, tc, { rttUs: rtt });
      flows++;
      if (!c.handshake()) break;
      c.wait(rng.exp(20_000));
      c.serverSends(TELNET_NEGOTIATION);
      c.clientSends(MIRAI_IAC_REPLY);
      c.wait(rng.exp(30_000));
      c.serverSends(text(`\r\n${target.name} login: `));
      c.wait(rng.exp(5_000));
      c.clientSends(text(`${user}\r\n`));
      c.serverSends(text('Password: '));
      c.clientSends(text(`${pass}\r\n`));
      c.wait(200_000 + rng.exp(800_000)); // login(1) delays a failure
      if (success) {
        c.serverSends(text('\r\n\r\nBusyBox v1.19.4 built-in shell (ash)\r\n# '));
        for (const cmd of ['enable', 'system', 'shell', 'sh', '/bin/busybox MIRAI']) {
          c.clientSends(text(`${cmd}\r\n`));
          c.wait(rng.exp(40_000));
          c.serverSends(text(cmd.includes('MIRAI') ? 'MIRAI: applet not found\r\n# ' : '# '));
        }
        c.close(true);
        // Report the find to the report server (TCP 48101).
        const report = new TcpConn(sink, rng, bot, internetHost(rng, [48101]), ephemeralPort(rng), 48101, c.t + 10_000, { rttUs: 60_000 });
        flows++;
        if (report.handshake()) {
          report.clientSends(ctx.pool.random(rng, 10)); // the victim's address and credentials, binary
          report.close(true);
        }
        end = Math.max(end, report.t);
        break;
      }
      c.serverSends(text('\r\nLogin incorrect\r\n'));
      if (rng.next() < 0.5) c.close(true);
      else c.reset();
      end = Math.max(end, c.t);
      tc = c.t + 20_000 + rng.exp(100_000);
    }
    t = Math.max(t, tr);
  }
  return Math.max(end, t);
}

/** Flood targets: the lab's victims or an internet address (Mirai floods were aimed at both). */
function floodTarget(ctx: GenContext): Host {
  return ctx.rng.next() < 0.7 ? ctx.rng.pick(VICTIMS) : internetHost(ctx.rng);
}

/**
 * UDP flood, the "udpplain" variant (ordinary sockets: a fixed source port per socket, so a socket's datagrams
 * form one flow): each bot sends bursts of 512-byte random payloads to a target port, re-opening sockets as the
 * command loops. Raw "udp generic" with per-packet random ports would give one-packet flows CICFlowMeter drops.
 */
export function miraiUdpFlood(ctx: GenContext, startUs: number, units: number): number {
  const { rng, sink, pool } = ctx;
  let end = startUs;
  let t = startUs;
  let flows = 0;
  while (flows < units) {
    const target = floodTarget(ctx);
    const dport = rng.next() < 0.5 ? rng.int(1, 65536) : rng.pick([53, 80, 8899, 9020, 10101, 554]);
    const size = rng.next() < 0.8 ? 512 : rng.int(32, 1400);
    const sockets = Math.min(units - flows, rng.int(20, 200));
    for (let s = 0; s < sockets; s++) {
      const bot = rng.pick(BOTS);
      const sport = ephemeralPort(rng);
      let ts = t + rng.exp(2_000_000);
      const n = 2 + Math.floor(rng.exp(12));
      for (let i = 0; i < n; i++) {
        sink.push(ts, udpFrame(hop(bot, target, rng.int(0, 65536)), { sport, dport, payload: pool.random(rng, size) }));
        ts += rng.exp(800);
      }
      end = Math.max(end, ts);
      flows++;
    }
    t = end + rng.exp(3_000_000);
  }
  return end;
}

/**
 * ACK flood: raw ACK segments with random sequence and acknowledgement numbers and a 512-byte random payload, random
 * ports per packet; the target's stack answers each stray segment with a RST (RFC 793), so each pair is a flow.
 */
export function miraiAckFlood(ctx: GenContext, startUs: number, units: number): number {
  const { rng, sink, pool } = ctx;
  let t = startUs;
  let end = t;
  let flows = 0;
  while (flows < units) {
    const target = floodTarget(ctx);
    const fixedDport = rng.next() < 0.4 ? rng.pick([80, 443, 554, 23]) : -1;
    const burst = Math.min(units - flows, rng.int(100, 1500));
    for (let i = 0; i < burst; i++) {
      const bot = rng.pick(BOTS);
      t += rng.exp(400);
      const sport = rng.int(1024, 65536);
      const dport = fixedDport > 0 ? fixedDport : rng.int(1, 65536);
      const ack = rng.int(0, 2 ** 31) * 2;
      const h = { ...hop(bot, target, rng.int(0, 65536)), df: false };
      sink.push(t, tcpFrame(h, { sport, dport, seq: rng.int(0, 2 ** 31) * 2, ack, flags: TCP_ACK, window: rng.int(0, 65536), payload: pool.random(rng, 512) }));
      if (rng.next() < 0.93) {
        const tr = t + (target.external ? 30_000 : 1_500) + rng.exp(1_000);
        sink.push(tr, tcpFrame(hop(target, bot, rng.int(0, 65536)), { sport: dport, dport: sport, seq: ack, ack: 0, flags: TCP_RST, window: 0 }));
        end = Math.max(end, tr);
      }
      flows++;
    }
    t = Math.max(t, end) + rng.exp(2_000_000);
  }
  return Math.max(t, end);
}

const USER_AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/51.0.2704.103 Safari/537.36',
  'Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/52.0.2743.116 Safari/537.36',
  'Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/51.0.2704.103 Safari/537.36',
  'Mozilla/5.0 (Windows NT 6.1; WOW64; rv:48.0) Gecko/20100101 Firefox/48.0',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_6) AppleWebKit/601.7.7 (KHTML, like Gecko) Version/9.1.2 Safari/601.7.7',
];

/** HTTP flood: real connections to the target's web server, a few keep-alive GETs each, replies read. */
export function miraiHttpFlood(ctx: GenContext, startUs: number, units: number): number {
  const { rng, sink } = ctx;
  let end = startUs;
  let t = startUs;
  let flows = 0;
  while (flows < units) {
    const target = rng.next() < 0.8 ? rng.pick(VICTIMS) : internetHost(rng, [80]);
    const path = rng.pick(['/', '/index.html', '/cgi-bin/login.cgi', '/doc/page/login.asp', '/api/status']);
    const conns = Math.min(units - flows, rng.int(30, 300));
    for (let i = 0; i < conns; i++) {
      const bot = rng.pick(BOTS);
      const c = new TcpConn(sink, rng, bot, target, ephemeralPort(rng), 80, t + rng.exp(3_000_000), { rttUs: target.external ? 40_000 : 3_000 });
      flows++;
      if (!c.handshake()) continue;
      for (let g = rng.int(1, 6); g > 0; g--) {
        c.clientSends(text(`GET ${path} HTTP/1.1\r\nUser-Agent: ${rng.pick(USER_AGENTS)}\r\nHost: ${target.name}\r\nConnection: keep-alive\r\nAccept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.8\r\nAccept-Encoding: gzip, deflate, sdch\r\n\r\n`));
        c.wait(1_000 + rng.exp(target === VICTIMS[0] ? 30_000 : 8_000)); // an overloaded camera answers slowly
        const busy = rng.next() < 0.2;
        const body = busy ? 'Service Unavailable' : '<html>'.padEnd(rng.int(300, 4000), 'x') + '</html>';
        c.serverSends(text(`HTTP/1.1 ${busy ? '503 Service Unavailable' : '200 OK'}\r\nServer: ${target === ATTACKER ? 'nginx' : 'lighttpd/1.4.28'}\r\nContent-Type: text/html\r\nContent-Length: ${body.length}\r\n\r\n${body}`));
        c.wait(rng.exp(2_000));
      }
      if (rng.next() < 0.7) c.close(true);
      else c.reset();
      end = Math.max(end, c.t);
    }
    t = end + rng.exp(1_000_000);
  }
  return end;
}
