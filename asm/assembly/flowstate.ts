// One flow's state, laid out in a preallocated slot of linear memory (no GC objects). The first 40 bytes are
// the canonical key (address A, address B, then ports/protocol/version packed in a u64) so a lookup compares
// a slot with two v128 loads and one u64.

/** Running statistics (Welford, as Apache commons-math SummaryStatistics, which CICFlowMeter uses). */
@unmanaged
export class Stat {
  n: f64;
  mean: f64;
  m2: f64;
  min: f64;
  max: f64;
  sum: f64;
}

export const STAT_BYTES: usize = 48;

@inline export function statReset(s: Stat): void {
  s.n = 0;
  s.mean = 0;
  s.m2 = 0;
  s.min = Infinity;
  s.max = -Infinity;
  s.sum = 0;
}

@inline export function statAdd(s: Stat, x: f64): void {
  const n = s.n + 1;
  const d = x - s.mean;
  s.n = n;
  s.mean += d / n;
  s.m2 += d * (x - s.mean);
  if (x < s.min) s.min = x;
  if (x > s.max) s.max = x;
  s.sum += x;
}

/** Sample standard deviation as commons-math reports it: 0 for one value. */
@inline export function statStd(s: Stat): f64 {
  return s.n > 1 ? Math.sqrt(s.m2 / (s.n - 1)) : 0;
}

@inline export function statVar(s: Stat): f64 {
  return s.n > 1 ? s.m2 / (s.n - 1) : 0;
}

// Indices of the statistics blocks that follow the head.
export const S_FWD_LEN = 0;
export const S_BWD_LEN = 1;
export const S_ALL_LEN = 2;
export const S_FLOW_IAT = 3;
export const S_FWD_IAT = 4;
export const S_BWD_IAT = 5;
export const S_ACTIVE = 6;
export const S_IDLE = 7;
export const N_STATS = 8;

@unmanaged
export class Flow {
  // --- key (40 bytes, compared as a block) ---
  a0: u64;
  a1: u64;
  b0: u64;
  b1: u64;
  /** portA | portB << 16 | proto << 32 | v6 << 40 */
  misc: u64;
  // --- bookkeeping ---
  hash: u32;
  /** LRU neighbours as slot index + 1 (0 = none); head = most recently seen. */
  prev: u32;
  next: u32;
  /** 1 when the forward source is address A of the key. */
  srcIsA: u32;
  srcPort: u32;
  dstPort: u32;
  /** Corrected mode: FIN seen forward (1), backward (2); 4 = both seen, closing on the last ACK. */
  finState: u32;
  pad: u32;
  // --- times (µs) ---
  startUs: f64;
  lastSeen: f64;
  fwdLastSeen: f64;
  bwdLastSeen: f64;
  startActive: f64;
  endActive: f64;
  // --- counters ---
  fwdPkts: f64;
  bwdPkts: f64;
  fwdBytes: f64;
  bwdBytes: f64;
  fwdHdr: f64;
  bwdHdr: f64;
  fPsh: f64;
  bPsh: f64;
  fUrg: f64;
  bUrg: f64;
  cFin: f64;
  cSyn: f64;
  cRst: f64;
  cPsh: f64;
  cAck: f64;
  cUrg: f64;
  cCwr: f64;
  cEce: f64;
  actDataFwd: f64;
  minSegFwd: f64;
  initWinFwd: f64;
  initWinBwd: f64;
  // --- subflows ---
  sfLast: f64;
  sfCount: f64;
  // --- bulk, per direction (0 forward, 1 backward) ---
  fBulkDur: f64;
  fBulkPkts: f64;
  fBulkSize: f64;
  fBulkStates: f64;
  fBulkCntHelper: f64;
  fBulkStartHelper: f64;
  fBulkSizeHelper: f64;
  fBulkLast: f64;
  bBulkDur: f64;
  bBulkPkts: f64;
  bBulkSize: f64;
  bBulkStates: f64;
  bBulkCntHelper: f64;
  bBulkStartHelper: f64;
  bBulkSizeHelper: f64;
  bBulkLast: f64;
}

export const HEAD_BYTES: usize = (offsetof<Flow>() + 15) & ~15;
export const FLOW_BYTES: usize = HEAD_BYTES + N_STATS * STAT_BYTES;

@inline export function flowStat(f: Flow, k: i32): Stat {
  return changetype<Stat>(changetype<usize>(f) + HEAD_BYTES + <usize>k * STAT_BYTES);
}
