/**
 * The devices' own life, so every capture has benign flows beside the attack and ports 23/80/1883/5683 are not
 * attack-only: sensors publish over MQTT and report to the cloud after a DNS lookup, devices set their clocks by
 * NTP, the owner's phone opens the camera page, asks the bulb over CoAP/SSDP and logs in to the DVR by telnet.
 * Every exchange has a timeout and errors are swallowed: a device under attack keeps trying, as real ones do.
 */
import { createSocket } from 'node:dgram';
import { request } from 'node:http';
import { connect } from 'node:net';
import mqtt from 'mqtt';
import { INTERNET } from '../network.ts';

const jitter = (ms: number) => ms * (0.7 + Math.random() * 0.6);

/** Calls fn now-ish and then about every `ms` (±30 %), forever (the process is bounded by its --seconds). */
export function every(ms: number, fn: () => void): void {
  const tick = () => {
    try {
      fn();
    } catch {
      // a failed exchange is part of the background
    }
    setTimeout(tick, jitter(ms)).unref();
  };
  setTimeout(tick, Math.random() * Math.min(ms, 3000)).unref();
}

function udpAsk(host: string, port: number, msg: Buffer): void {
  const s = createSocket('udp4');
  const done = () => s.close();
  s.on('error', done);
  s.on('message', done);
  setTimeout(() => {
    try {
      done();
    } catch {
      // already closed
    }
  }, 2000).unref();
  s.send(msg, port, host);
}

export function dnsLookup(name: string): void {
  const q = Buffer.alloc(12);
  q.writeUInt16BE(Math.floor(Math.random() * 65536), 0);
  q.writeUInt16BE(0x0100, 2);
  q.writeUInt16BE(1, 4);
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  udpAsk(INTERNET.dns, 53, Buffer.concat([q, ...labels, Buffer.from([0, 0, 1, 0, 1])]));
}

export function ntpQuery(): void {
  const m = Buffer.alloc(48);
  m[0] = 0x23; // version 4, mode 3 (client)
  m.writeUInt32BE((Math.floor(Date.now() / 1000) + 2_208_988_800) >>> 0, 40);
  udpAsk(INTERNET.ntp, 123, m);
}

export function coapGet(host: string, path: string): void {
  const id = Math.floor(Math.random() * 65536);
  const opt = Buffer.from(path);
  udpAsk(host, 5683, Buffer.concat([Buffer.from([0x41, 0x01, id >> 8, id & 255, id & 255, 0xb0 | opt.length]), opt]));
}

export function ssdpSearch(host: string): void {
  udpAsk(host, 1900, Buffer.from('M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\nMX: 1\r\nST: upnp:rootdevice\r\n\r\n'));
}

export function http(host: string, path: string, body?: Buffer): void {
  const req = request({ host, port: 80, path, method: body ? 'POST' : 'GET', timeout: 5000, agent: false }, (res) => res.resume());
  req.on('error', () => {});
  req.on('timeout', () => req.destroy());
  req.end(body);
}

/** The owner logs in by telnet, runs a command, logs out. */
export function telnetLogin(host: string, user: string, pass: string, cmd: string): void {
  const s = connect(23, host);
  let step = 0;
  s.setTimeout(8000, () => s.destroy());
  s.on('error', () => s.destroy());
  s.on('data', (d) => {
    const t = d.toString('latin1');
    if (step === 0 && t.includes('login:')) s.write(`${user}\r\n`), (step = 1);
    else if (step === 1 && t.includes('assword')) s.write(`${pass}\r\n`), (step = 2);
    else if (step === 2 && t.includes('#')) s.write(`${cmd}\r\n`), (step = 3);
    else if (step === 3 && t.includes('#')) s.end('exit\r\n'), (step = 4);
  });
}

export function mqttClient(broker: string, id: string, onReady: (c: mqtt.MqttClient) => void): void {
  const c = mqtt.connect(`mqtt://${broker}:1883`, { clientId: id, keepalive: 15, reconnectPeriod: 2000, connectTimeout: 5000 });
  c.on('error', () => {});
  c.once('connect', () => onReady(c));
}
