/**
 * The contract between capture readers and the flow meter: packets travel in batches laid out in flat typed
 * arrays, so a batch crosses into wasm memory with one copy and no per-packet objects.
 */

/** Link-layer types we read (pcap LINKTYPE_* values). */
export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_RAW = 101;
export const LINKTYPE_LINUX_SLL = 113;

export interface PacketBatch {
  /** Number of packets in the batch. */
  count: number;
  /** Captured bytes of all packets back to back; packet i is data[offsets[i] .. offsets[i] + lengths[i]). */
  data: Uint8Array;
  offsets: Uint32Array;
  /** Captured length (may be less than the length on the wire when the capture used a snap length). */
  lengths: Uint32Array;
  /** Original length on the wire. */
  wireLengths: Uint32Array;
  /** Timestamp, microseconds since the epoch (float64 holds µs exactly until the year 2255). */
  timestampsUs: Float64Array;
  /** Link type of each packet's interface (pcapng captures can mix interfaces). */
  linkTypes: Uint16Array;
  /** Byte offset in the source of the first packet of the batch (for error messages). */
  sourceOffset: number;
}

/** One flow out of the meter: identifiers plus the 76 statistical features in STAT_FEATURES order. */
export interface FlowRecord {
  srcIp: string;
  srcPort: number;
  dstIp: string;
  dstPort: number;
  protocol: number;
  /** First packet's time, µs since the epoch. */
  startUs: number;
  /** Values in STAT_FEATURES order (shared/features.ts). */
  features: Float64Array;
}

/** Flow_ID as CICFlowMeter writes it for the forward direction: "src-dst-sport-dport-proto". */
export function flowId(r: Pick<FlowRecord, 'srcIp' | 'dstIp' | 'srcPort' | 'dstPort' | 'protocol'>): string {
  return `${r.srcIp}-${r.dstIp}-${r.srcPort}-${r.dstPort}-${r.protocol}`;
}
