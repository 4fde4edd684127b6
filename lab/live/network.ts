/**
 * The sealed virtual LAN: one network namespace per host, a bridge inside its own namespace (so the host's network
 * has no interface on the lab), a gateway with a link to an "internet" namespace that answers a whole /16 locally.
 * Every link is created inside a lab namespace (`ip -n SW link add ... peer ... netns HOST`), so no interface of
 * the lab ever exists in the host namespace, not even for a moment. No namespace gets a default route; routes
 * cover only 198.18.0.0/15 (RFC 2544's benchmark range), and `checkSeal` proves it before anything is sent.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { IdsError } from '../../shared/errors.ts';

/** Every lab namespace is named PREFIX + run id + '-' + host, so a leftover cleanup finds them all. */
export const NETNS_PREFIX = 'iotlab-';
const NETNS_DIR = '/run/netns';
export const LAN_CIDR = '198.18.0.0/24';
export const INTERNET_CIDR = '198.19.0.0/16';
const WAN_GW = '198.18.254.1';
const WAN_INET = '198.18.254.2';

export type Role = 'gateway' | 'device' | 'client' | 'attacker' | 'internet';

export interface HostSpec {
  name: string;
  role: Role;
  ip: string;
  /** Last octet of the MAC 02:18:00:00:00:XX (fixed, so captures of two runs name the same hosts alike). */
  macId: number;
  what: string;
}

/** The lab's hosts on the LAN (the internet namespace is apart: it sits behind the gateway). */
export const HOSTS: readonly HostSpec[] = [
  { name: 'gw', role: 'gateway', ip: '198.18.0.1', macId: 1, what: 'home router: forwards to the internet namespace' },
  { name: 'cam', role: 'device', ip: '198.18.0.10', macId: 10, what: 'IP camera: HTTP snapshot page, telnet root/xc3511, cloud uploads' },
  { name: 'dvr', role: 'device', ip: '198.18.0.11', macId: 11, what: 'DVR: telnet root/vizxv, HTTP login page' },
  { name: 'plug', role: 'device', ip: '198.18.0.12', macId: 12, what: 'smart plug: telnet with a non-default password, MQTT subscriber, NTP' },
  { name: 'broker', role: 'device', ip: '198.18.0.13', macId: 13, what: 'MQTT broker (mosquitto)' },
  { name: 'sensor', role: 'device', ip: '198.18.0.14', macId: 14, what: 'sensor: MQTT publisher, DNS + HTTP to the cloud, NTP' },
  { name: 'bulb', role: 'device', ip: '198.18.0.15', macId: 15, what: 'bulb: CoAP (UDP 5683) and SSDP (UDP 1900) services' },
  { name: 'phone', role: 'client', ip: '198.18.0.20', macId: 20, what: "owner's phone: camera page, CoAP, telnet to the DVR, cloud" },
  { name: 'atk', role: 'attacker', ip: '198.18.0.66', macId: 66, what: 'attacker: runs the scenario tools' },
];

/** Addresses the internet namespace serves (all of INTERNET_CIDR is local there; these have services). */
export const INTERNET = { dns: '198.19.0.53', ntp: '198.19.0.123', cloud: '198.19.1.1', report: '198.19.66.1' } as const;

export const hostByName = (name: string): HostSpec => {
  const h = HOSTS.find((x) => x.name === name);
  if (!h) throw new IdsError('BAD_SCENARIO', `no lab host named "${name}" (hosts: ${HOSTS.map((x) => x.name).join(', ')})`);
  return h;
};

export const macOf = (h: HostSpec): string => `02:18:00:00:00:${h.macId.toString(16).padStart(2, '0')}`;

export interface Lab {
  id: string;
  /** Namespace names by host name, plus 'sw' (the bridge) and 'inet'. */
  ns: Record<string, string>;
}

export const nsName = (id: string, host: string): string => `${NETNS_PREFIX}${id}-${host}`;

/** Runs a command and returns stdout; throws STEP_FAILED with the command and its stderr. */
export function run(cmd: string, args: string[], opts: { allowFail?: boolean } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 20_000 });
  if ((r.status !== 0 || r.error) && !opts.allowFail) {
    throw new IdsError('STEP_FAILED', `${cmd} ${args.join(' ')}: ${r.error?.message ?? r.stderr.trim()}`);
  }
  return r.stdout ?? '';
}

const ip = (...args: string[]) => run('ip', args);
const inNs = (ns: string, cmd: string, ...args: string[]) => run('ip', ['netns', 'exec', ns, cmd, ...args]);
const sysctl = (ns: string, ...kv: string[]) => inNs(ns, 'sysctl', '-q', '-w', ...kv);

/** Throws NO_NETNS with a clear message when this machine cannot make network namespaces. */
export function checkNetns(): void {
  const probe = `${NETNS_PREFIX}probe-${process.pid}`;
  const r = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new IdsError(
      'NO_NETNS',
      `the live lab needs network namespaces (root or CAP_NET_ADMIN, and the ip command): \`ip netns add\` said: ${r.error?.message ?? r.stderr.trim()}`,
    );
  }
  spawnSync('ip', ['netns', 'del', probe]);
}

/**
 * Lab namespaces present now (all runs, or one run's). Read from /run/netns, where `ip netns` keeps them: `ip netns
 * list` can fail or come back short while another process is deleting namespaces.
 */
export function labNamespaces(id?: string): string[] {
  const prefix = id ? `${NETNS_PREFIX}${id}-` : NETNS_PREFIX;
  try {
    return readdirSync(NETNS_DIR).filter((n) => n.startsWith(prefix));
  } catch {
    return []; // no /run/netns: no namespace was ever made here
  }
}

/** Kills every process in the namespaces, then deletes them (their veths and the bridge go with them). */
export function destroyNamespaces(names: string[]): void {
  for (const ns of names) {
    const pids = run('ip', ['netns', 'pids', ns], { allowFail: true }).split('\n').filter(Boolean);
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  for (const ns of names) run('ip', ['netns', 'del', ns], { allowFail: true });
}

/** Builds the lab. On any failure what was made is removed before the error is thrown. */
export function createLab(id: string): Lab {
  const ns: Record<string, string> = { sw: nsName(id, 'sw'), inet: nsName(id, 'inet') };
  for (const h of HOSTS) ns[h.name] = nsName(id, h.name);
  try {
    for (const n of Object.values(ns)) {
      ip('netns', 'add', n);
      ip('-n', n, 'link', 'set', 'lo', 'up');
      // IPv6 off: its router solicitations and MLD reports would be background noise no IoTID20 flow has.
      sysctl(n, 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1');
    }
    ip('-n', ns.sw, 'link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
    ip('-n', ns.sw, 'link', 'set', 'br0', 'address', '02:18:00:00:00:fe');
    ip('-n', ns.sw, 'link', 'set', 'br0', 'up');
    for (const h of HOSTS) {
      const port = `p-${h.name}`;
      ip('-n', ns.sw, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns[h.name]);
      ip('-n', ns.sw, 'link', 'set', port, 'master', 'br0');
      ip('-n', ns.sw, 'link', 'set', port, 'up');
      ip('-n', ns[h.name], 'link', 'set', 'eth0', 'address', macOf(h));
      ip('-n', ns[h.name], 'addr', 'add', `${h.ip}/24`, 'dev', 'eth0');
      ip('-n', ns[h.name], 'link', 'set', 'eth0', 'up');
      if (h.role !== 'gateway') {
        // Only the lab's own blocks, via the gateway: no default route anywhere.
        ip('-n', ns[h.name], 'route', 'add', INTERNET_CIDR, 'via', '198.18.0.1');
        ip('-n', ns[h.name], 'route', 'add', '198.18.254.0/30', 'via', '198.18.0.1');
      }
    }
    // Gateway ↔ internet: a veth made inside the gateway's namespace, its peer moved straight into the internet's.
    ip('-n', ns.gw, 'link', 'add', 'wan0', 'type', 'veth', 'peer', 'name', 'wan0', 'netns', ns.inet);
    ip('-n', ns.gw, 'addr', 'add', `${WAN_GW}/30`, 'dev', 'wan0');
    ip('-n', ns.gw, 'link', 'set', 'wan0', 'up');
    ip('-n', ns.gw, 'route', 'add', INTERNET_CIDR, 'via', WAN_INET);
    sysctl(ns.gw, 'net.ipv4.ip_forward=1');
    ip('-n', ns.inet, 'addr', 'add', `${WAN_INET}/30`, 'dev', 'wan0');
    ip('-n', ns.inet, 'link', 'set', 'wan0', 'up');
    ip('-n', ns.inet, 'route', 'add', LAN_CIDR, 'via', WAN_GW);
    // The whole /16 is local in the internet namespace: a bot's "random" address always answers from inside.
    ip('-n', ns.inet, 'route', 'add', 'local', INTERNET_CIDR, 'dev', 'lo');
    // The attacker relays what ARP poisoning brings it, without ICMP redirects that would give it away.
    sysctl(ns.atk, 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.send_redirects=0', 'net.ipv4.conf.eth0.send_redirects=0');
    const lab = { id, ns };
    checkSeal(lab);
    return lab;
  } catch (e) {
    destroyNamespaces(labNamespaces(id));
    throw e;
  }
}

interface JsonLink {
  ifname: string;
  link_type?: string;
  linkinfo?: { info_kind?: string };
}
interface JsonRoute {
  dst: string;
  type?: string;
  gateway?: string;
  dev?: string;
}

const inLabRange = (cidr: string): boolean => {
  const [a, b] = cidr.split('/')[0].split('.').map(Number);
  const len = Number(cidr.split('/')[1] ?? 32);
  return a === 198 && (b === 18 || b === 19) && len >= 15;
};

/**
 * Proves the lab cannot reach out: every interface of a lab namespace is loopback, a veth or the bridge (all made
 * inside the lab), no namespace has a default route or a route outside 198.18.0.0/15, and none can route to an
 * address outside it. Throws NOT_SEALED naming the namespace and what was found.
 */
export function checkSeal(lab: Lab): void {
  for (const [host, n] of Object.entries(lab.ns)) {
    const links = JSON.parse(run('ip', ['-n', n, '-d', '-j', 'link', 'show']) || '[]') as JsonLink[];
    for (const l of links) {
      const kind = l.linkinfo?.info_kind;
      if (l.ifname === 'lo' || kind === 'veth' || kind === 'bridge') continue;
      throw new IdsError('NOT_SEALED', `${host} (${n}) has interface ${l.ifname} of kind ${kind ?? l.link_type}`);
    }
    for (const table of ['main', 'local']) {
      const routes = JSON.parse(run('ip', ['-n', n, '-j', 'route', 'show', 'table', table]) || '[]') as JsonRoute[];
      for (const r of routes) {
        if (r.dst === 'default') throw new IdsError('NOT_SEALED', `${host} (${n}) has a default route`);
        if (table === 'local' && (r.dst.startsWith('127.') || r.dev === 'lo' && r.dst === '127.0.0.0/8')) continue;
        if (r.type === 'broadcast' || r.dst.startsWith('127.')) continue;
        if (!inLabRange(r.dst.includes('/') ? r.dst : `${r.dst}/32`)) {
          throw new IdsError('NOT_SEALED', `${host} (${n}) has a route to ${r.dst} outside 198.18.0.0/15`);
        }
      }
    }
    const probe = spawnSync('ip', ['-n', n, 'route', 'get', '192.0.2.1'], { encoding: 'utf8' });
    if (probe.status === 0) throw new IdsError('NOT_SEALED', `${host} (${n}) can route to 192.0.2.1: ${probe.stdout.trim()}`);
  }
}
