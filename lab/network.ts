/**
 * The lab's small IoT network, after the IoTID20 testbed: a Wi-Fi router, IoT devices (camera, AI speaker, plug,
 * doorbell, hub), laptops and phones, an attacker laptop, and servers on the internet. Every address is fixed; the
 * generators pick hosts from here, so a packet's addresses say which part of the lab it belongs to.
 */
import { ip, ipv4FromInt, mac, type Hop } from '../capture/frames.ts';
import type { Rng } from '../shared/random.ts';

export interface Host {
  name: string;
  ip: Uint8Array;
  mac: Uint8Array;
  /** TCP ports with a listening service (a SYN gets SYN-ACK; others RST). */
  open: number[];
  /** Initial TTL of its OS (Linux 64, Windows 128). */
  ttl: number;
  /** Outside the lab subnet: reached through the gateway. */
  external: boolean;
}

export const LAB_SUBNET = '192.168.50.';

function host(name: string, addr: string, hw: string, open: number[], ttl = 64, external = false): Host {
  return { name, ip: ip(addr), mac: mac(hw), open, ttl, external };
}

export const GATEWAY = host('gateway', '192.168.50.1', '70:5d:cc:10:00:01', [53, 80, 443], 64);
export const CAMERA = host('camera', '192.168.50.10', 'bc:ad:28:10:00:0a', [23, 80, 554, 8000], 64);
export const SPEAKER = host('speaker', '192.168.50.11', '3c:98:72:10:00:0b', [80, 443, 9020, 10101], 64);
export const PLUG = host('plug', '192.168.50.12', '50:c7:bf:10:00:0c', [23, 80, 9999], 64);
export const DOORBELL = host('doorbell', '192.168.50.13', 'd4:b7:61:10:00:0d', [23, 8899], 64);
export const IOT_HUB = host('iot-hub', '192.168.50.14', '54:ef:44:10:00:0e', [80, 1883, 8080], 64);
export const LAPTOP = host('laptop', '192.168.50.100', '8c:85:90:10:00:64', [], 128);
export const PHONE = host('phone', '192.168.50.102', 'a4:83:e7:10:00:66', [], 64);
export const ATTACKER = host('attacker', '192.168.50.66', '00:e0:4d:10:00:42', [22], 64);

/** IoT devices the attacks aim at (IoTID20's victims were the camera and the AI speaker). */
export const VICTIMS = [CAMERA, SPEAKER];
/** Devices the Mirai scenarios treat as infected bots. */
export const BOTS = [PLUG, DOORBELL, IOT_HUB];
export const LAN_HOSTS = [GATEWAY, CAMERA, SPEAKER, PLUG, DOORBELL, IOT_HUB, LAPTOP, PHONE, ATTACKER];

/** A public server (cloud endpoints of the devices, web sites). */
export function internetHost(rng: Rng, open: number[] = [443, 80]): Host {
  return {
    name: 'internet',
    ip: randomPublicIpv4(rng),
    mac: GATEWAY.mac,
    open,
    ttl: rng.pick([52, 54, 56, 57, 116, 118, 243]),
    external: true,
  };
}

/** A random routable IPv4 address (skips 0/8, 10/8, 127/8, 169.254/16, 172.16/12, 192.168/16, 224+/4). */
export function randomPublicIpv4(rng: Rng): Uint8Array {
  for (;;) {
    const n = Math.floor(rng.next() * 4294967296) >>> 0;
    const a = n >>> 24;
    const b = (n >>> 16) & 255;
    if (a === 0 || a === 10 || a === 127 || a >= 224) continue;
    if (a === 169 && b === 254) continue;
    if (a === 172 && b >= 16 && b < 32) continue;
    if (a === 192 && b === 168) continue;
    if (a === 100 && b >= 64 && b < 128) continue;
    return ipv4FromInt(n);
  }
}

/**
 * Link and IP layer for a packet from `from` to `to` as seen on the lab's LAN: frames to or from the internet
 * carry the gateway's MAC, and packets from the internet arrive with the TTL their path left them.
 */
export function hop(from: Host, to: Host, ipId: number, src: Uint8Array = from.ip, dst: Uint8Array = to.ip): Hop {
  return {
    srcMac: from.external ? GATEWAY.mac : from.mac,
    dstMac: to.external ? GATEWAY.mac : to.mac,
    src,
    dst,
    ttl: from.ttl,
    ipId: ipId & 0xffff,
  };
}
