/**
 * Classic pcap (little-endian, µs, Ethernet) as byte chunks for a live stream: the global header once, then each
 * paced tick's records as one Buffer. capture/pcap-writer.ts buffers 1 MiB before it writes, which suits files;
 * a replay that must reach the hub now needs every tick flushed.
 */
import { LINKTYPE_ETHERNET } from '../../shared/packets.ts';
import { PCAP_HEADER_BYTES, PCAP_RECORD_HEADER_BYTES, writePcapHeader, writePcapRecordHeader } from '../../capture/pcap-writer.ts';

export function pcapHeader(linkType = LINKTYPE_ETHERNET): Buffer {
  const h = Buffer.alloc(PCAP_HEADER_BYTES);
  writePcapHeader(h, 0, linkType);
  return h;
}

/** Records for frames[from..to) with the given µs timestamps, in one buffer. */
export function pcapRecords(frames: readonly Uint8Array[], timesUs: readonly number[], from: number, to: number): Buffer {
  let bytes = 0;
  for (let i = from; i < to; i++) bytes += PCAP_RECORD_HEADER_BYTES + frames[i].byteLength;
  const b = Buffer.allocUnsafe(bytes);
  let p = 0;
  for (let i = from; i < to; i++) {
    const f = frames[i];
    writePcapRecordHeader(b, p, timesUs[i], f.byteLength, f.byteLength);
    b.set(f, p + PCAP_RECORD_HEADER_BYTES);
    p += PCAP_RECORD_HEADER_BYTES + f.byteLength;
  }
  return b;
}
