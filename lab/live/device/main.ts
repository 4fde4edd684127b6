/**
 * One lab device: `node --import tsx lab/live/device/main.ts --as NAME --seconds N` inside the device's namespace
 * starts the services and the background behaviour of host NAME (see BEHAVIOUR) and exits by itself after N s.
 */
import { randomBytes } from 'node:crypto';
import { hostByName, INTERNET } from '../network.ts';
import { coapGet, dnsLookup, every, http, mqttClient, ntpQuery, ssdpSearch, telnetLogin } from './clients.ts';
import { startTelnet } from './telnet.ts';
import { startCoap, startDns, startNtp, startSsdp } from './udp.ts';
import { startSink, startWeb } from './web.ts';

const BROKER = '198.18.0.13';
const CLOUD = 'cloud.iot-ids.lab';

/** What each host runs. The attacker has none; `browse` is a victim's extra traffic during a MITM scenario. */
const BEHAVIOUR: Record<string, () => void> = {
  cam() {
    startWeb('camera');
    startTelnet({ port: 23, accounts: [['root', 'xc3511']] });
    every(6000, () => http(INTERNET.cloud, '/v1/snapshot', randomBytes(8000)));
    every(30_000, () => dnsLookup(CLOUD));
    every(30_000, ntpQuery);
  },
  dvr() {
    startWeb('dvr');
    startTelnet({ port: 23, accounts: [['root', 'vizxv']] });
    every(30_000, ntpQuery);
  },
  plug() {
    startTelnet({ port: 23, accounts: [['admin', 'Pl4g-8820']] });
    mqttClient(BROKER, 'plug-8820', (c) => c.subscribe('home/plug/cmd'));
    every(15_000, ntpQuery);
    every(30_000, () => dnsLookup('time.iot-ids.lab'));
  },
  sensor() {
    mqttClient(BROKER, 'sensor-14', (c) => every(2000, () => c.publish('home/sensor/temp', JSON.stringify({ t: 20 + Math.random() * 3, ts: Date.now() }))));
    every(5000, () => {
      dnsLookup(CLOUD);
      setTimeout(() => http(INTERNET.cloud, '/v1/telemetry', Buffer.from(JSON.stringify({ id: 'sensor-14', t: 21.4 }))), 50);
    });
    every(20_000, ntpQuery);
  },
  bulb() {
    startCoap();
    startSsdp();
    every(30_000, ntpQuery);
  },
  phone() {
    every(4000, () => {
      http('198.18.0.10', '/');
      http('198.18.0.10', '/snapshot.jpg');
    });
    every(5000, () => coapGet('198.18.0.15', 'light'));
    every(15_000, () => ssdpSearch('198.18.0.15'));
    every(12_000, () => telnetLogin('198.18.0.11', 'root', 'vizxv', 'uptime'));
    mqttClient(BROKER, 'phone-20', (c) => every(8000, () => c.publish('home/plug/cmd', Math.random() < 0.5 ? 'on' : 'off')));
    every(10_000, () => {
      dnsLookup(CLOUD);
      setTimeout(() => http(INTERNET.cloud, '/v1/devices'), 50);
    });
  },
  inet() {
    startDns(INTERNET.dns);
    startNtp(INTERNET.ntp);
    startWeb('cloud');
    startSink(48101);
  },
  browse() {
    every(500, () => {
      dnsLookup(CLOUD);
      setTimeout(() => http(INTERNET.cloud, '/v1/telemetry', Buffer.from('{"id":"sensor-14"}')), 30);
    });
  },
};

function arg(name: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : undefined;
  if (!v) {
    process.stderr.write(`device: --${name} is required\n`);
    process.exit(2);
  }
  return v;
}

const as = arg('as');
const seconds = Number(arg('seconds'));
if (!(seconds > 0) || !BEHAVIOUR[as]) {
  process.stderr.write(`device: --as ${as} --seconds ${seconds}: expected one of ${Object.keys(BEHAVIOUR).join(', ')} and a positive time\n`);
  process.exit(2);
}
if (as !== 'inet' && as !== 'browse') hostByName(as);
setTimeout(() => process.exit(0), seconds * 1000);
BEHAVIOUR[as]();
process.stdout.write(`device ${as} up\n`);
