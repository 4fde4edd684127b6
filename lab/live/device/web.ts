/**
 * The lab's HTTP servers: a camera's snapshot page, a DVR's login page, the cloud the devices report to, and the
 * bot's report port (a plain TCP sink). Bounded: 64 connections, 10 s per request, bodies read and dropped.
 */
import { createServer as createHttp, type Server } from 'node:http';
import { createServer as createTcp } from 'node:net';
import { randomBytes } from 'node:crypto';

export type WebKind = 'camera' | 'dvr' | 'cloud';

const SNAPSHOT = randomBytes(24_000);
const PAGES: Record<WebKind, string> = {
  camera: '<html><head><title>IPCam</title></head><body><h1>Live view</h1><img src="/snapshot.jpg"><a href="/setup">Setup</a></body></html>',
  dvr: '<html><head><title>NETSurveillance WEB</title></head><body><form action="/login" method="post"><input name="username"><input name="password" type="password"></form></body></html>',
  cloud: '{"status":"ok"}',
};

export function startWeb(kind: WebKind, port = 80, host = '0.0.0.0'): Server {
  const server = createHttp({ requestTimeout: 10_000, headersTimeout: 5_000, keepAliveTimeout: 5_000 }, (req, res) => {
    req.resume();
    req.on('end', () => {
      if (kind === 'camera' && req.url?.startsWith('/snapshot')) {
        res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': SNAPSHOT.length });
        res.end(SNAPSHOT);
      } else if (kind === 'dvr' && req.url !== '/') {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="DVR"' });
        res.end();
      } else {
        res.writeHead(200, { 'content-type': kind === 'cloud' ? 'application/json' : 'text/html' });
        res.end(PAGES[kind]);
      }
    });
  });
  server.maxConnections = 64;
  server.on('clientError', (_e, sock) => sock.destroy());
  server.listen(port, host);
  return server;
}

/** Accepts connections and drops what they send (Mirai's bots report found logins to such a port). */
export function startSink(port: number, host = '0.0.0.0'): void {
  const s = createTcp((sock) => {
    sock.setTimeout(10_000, () => sock.destroy());
    sock.on('error', () => sock.destroy());
    sock.resume();
  });
  s.maxConnections = 64;
  s.listen(port, host);
}
