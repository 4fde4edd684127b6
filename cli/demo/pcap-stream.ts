/**
 * Classic pcap (little-endian, µs, Ethernet) as byte chunks for a live stream: the global header once, then each
 * paced tick's records as one Buffer. capture/pcap-writer.ts buffers 1 MiB before it writes, which suits files;
 * a replay that must reach the hub now needs every tick flushed.
 */
import { LINKTYPE_ETHERNET } from '../../shared/packets.ts';

export const PCAP_SNAPLEN = 262_144;

export function pcapHeader(linkType = LINKTYPE_ETHERNET): Buffer {
  const h = Buffer.alloc(24);
  h.writeUInt32LE(0xa1b2c3d4, 0);
  h.writeUInt16LE(2, 4);
  h.writeUInt16LE(4, 6);
  h.writeUInt32LE(PCAP_SNAPLEN, 16);
  h.writeUInt32LE(linkType, 20);
  return h;
}

/** Records for frames[from..to) with the given µs timestamps, in one buffer. */
export function pcapRecords(frames: readonly Uint8Array[], timesUs: readonly number[], from: number, to: number): Buffer {
  let bytes = 0;
  for (let i = from; i < to; i++) bytes += 16 + frames[i].byteLength;
  const b = Buffer.allocUnsafe(bytes);
  let p = 0;
  for (let i = from; i < to; i++) {
    const f = frames[i];
    const us = Math.round(timesUs[i]);
    const sec = Math.floor(us / 1e6);
    b.writeUInt32LE(sec, p);
    b.writeUInt32LE(us - sec * 1e6, p + 4);
    b.writeUInt32LE(f.byteLength, p + 8);
    b.writeUInt32LE(f.byteLength, p + 12);
    b.set(f, p + 16);
    p += 16 + f.byteLength;
  }
  return b;
}
