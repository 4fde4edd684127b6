/**
 * A BusyBox-style telnet login, as the lab's cameras and DVRs expose it: IAC negotiation, `login:` / `Password:`,
 * `Login incorrect` (three tries), then an ash prompt that answers what Mirai's loader types. Hostile input: lines
 * are cut at 128 bytes, a session ends after 15 s idle, at most 32 sessions at once.
 */
import { createServer, type Server, type Socket } from 'node:net';

export interface TelnetOptions {
  port: number;
  host?: string;
  /** Accepted user/password pairs (factory credentials). */
  accounts: ReadonlyArray<readonly [string, string]>;
}

const IAC = 255;
const NEGOTIATION = Buffer.from([IAC, 253, 1, IAC, 253, 31, IAC, 251, 1, IAC, 251, 3]);
const BANNER = '\r\n\r\nBusyBox v1.19.3 (2016-05-20 10:42:05 CST) built-in shell (ash)\r\nEnter \'help\' for a list of built-in commands.\r\n\r\n';
const MAX_LINE = 128;
const MAX_SESSIONS = 32;
const IDLE_MS = 15_000;

/** Strips telnet commands (IAC x y, IAC SB ... IAC SE) from a chunk; returns the data bytes. */
function stripIac(buf: Buffer): Buffer {
  const out: number[] = [];
  for (let i = 0; i < buf.length; i++) {
    if (buf[i] !== IAC) {
      out.push(buf[i]);
      continue;
    }
    const cmd = buf[i + 1];
    if (cmd === IAC) {
      out.push(IAC);
      i++;
    } else if (cmd === 250) {
      while (i < buf.length && !(buf[i] === IAC && buf[i + 1] === 240)) i++;
      i++;
    } else i += cmd >= 251 && cmd <= 254 ? 2 : 1;
  }
  return Buffer.from(out);
}

function answer(cmd: string): string | undefined {
  const [word, arg] = cmd.trim().split(/\s+/);
  if (!word || ['enable', 'system', 'shell', 'sh', 'linuxshell'].includes(word)) return '';
  if (word === 'exit' || word === 'logout') return undefined;
  if (word === '/bin/busybox' || word === 'busybox') return `${arg ?? ''}: applet not found\r\n`;
  if (word === 'uptime') return ' 08:14:02 up 3 days,  4:51, load average: 0.08, 0.03, 0.01\r\n';
  if (word === 'ps') return '  PID USER       VSZ STAT COMMAND\r\n    1 root      1508 S    init\r\n  412 root      2980 S    /usr/bin/camd\r\n';
  return `-sh: ${word}: not found\r\n`;
}

function session(sock: Socket, opts: TelnetOptions): void {
  let state: 'login' | 'password' | 'shell' = 'login';
  let user = '';
  let fails = 0;
  let line = '';
  let lastCr = false;
  sock.setTimeout(IDLE_MS, () => sock.destroy());
  sock.on('error', () => sock.destroy());
  sock.write(Buffer.concat([NEGOTIATION, Buffer.from('\r\n(none) login: ')]));
  const onLine = (text: string) => {
    if (state === 'login') {
      user = text.trim();
      state = 'password';
      sock.write('Password: ');
    } else if (state === 'password') {
      const ok = opts.accounts.some(([u, p]) => u === user && p === text.trim());
      if (ok) {
        state = 'shell';
        sock.write(BANNER + '# ');
      } else if (++fails >= 3) {
        sock.end('\r\nLogin incorrect\r\n');
      } else {
        state = 'login';
        // BusyBox's login sleeps before it answers a wrong password.
        setTimeout(() => sock.writable && sock.write('\r\nLogin incorrect\r\n(none) login: '), 300);
      }
    } else {
      const out = answer(text);
      if (out === undefined) sock.end('\r\n');
      else sock.write(out + '# ');
    }
  };
  sock.on('data', (chunk: Buffer) => {
    for (const b of stripIac(chunk)) {
      // CR LF and CR NUL end one line, not two.
      const pairEnd = lastCr && (b === 10 || b === 0);
      lastCr = b === 13;
      if (pairEnd) continue;
      if (b === 13 || b === 10) {
        if (line.length > 0 || state === 'password') onLine(line);
        line = '';
      } else if (b !== 0 && line.length < MAX_LINE) line += String.fromCharCode(b);
    }
  });
}

export function startTelnet(opts: TelnetOptions): Server {
  const server = createServer((sock) => session(sock, opts));
  server.maxConnections = MAX_SESSIONS;
  server.listen(opts.port, opts.host ?? '0.0.0.0');
  return server;
}
