// Per-flow updates and the feature record: what CICFlowMeter's BasicFlow does, for both modes (asm/FLOWMETER.md).
import {
  pkPayload, pkHeader, pkWindow, pkFlags, F_FIN, F_SYN, F_RST, F_PSH, F_ACK, F_URG, F_ECE, F_CWR,
} from './flowpacket';
import {
  Flow, Stat, FLOW_BYTES, flowStat, statAdd, statReset, statStd, statVar, N_STATS,
  S_FWD_LEN, S_BWD_LEN, S_ALL_LEN, S_FLOW_IAT, S_FWD_IAT, S_BWD_IAT, S_ACTIVE, S_IDLE,
} from './flowstate';

export const N_FEATURES: u32 = 76;
/** Output record: src IP (16 bytes), dst IP (16), then f64: srcPort, dstPort, proto, v6, startUs, 76 features. */
export const REC_HEAD: u32 = 72;
export const REC_BYTES: u32 = REC_HEAD + N_FEATURES * 8;

let compat = true;
let activityTimeout: f64 = 5e6;

export function setFeatureMode(compatMode: bool, activityTimeoutUs: f64): void {
  compat = compatMode;
  activityTimeout = activityTimeoutUs;
}

// ---------------------------------------------------------------- per-flow updates

function resetFlow(f: Flow): void {
  // Zero everything after the 40-byte key; then the statistics' min/max sentinels.
  const p = changetype<usize>(f);
  const hash = f.hash;
  const prev = f.prev;
  const next = f.next;
  memory.fill(p + 40, 0, FLOW_BYTES - 40);
  f.hash = hash;
  f.prev = prev;
  f.next = next;
  for (let k = 0; k < N_STATS; k++) statReset(flowStat(f, k));
}

export function updateActiveIdle(f: Flow, ts: f64): void {
  if (ts - f.endActive > activityTimeout) {
    if (f.endActive - f.startActive > 0) statAdd(flowStat(f, S_ACTIVE), f.endActive - f.startActive);
    statAdd(flowStat(f, S_IDLE), ts - f.endActive);
    f.startActive = ts;
    f.endActive = ts;
  } else {
    f.endActive = ts;
  }
}

function countFlags(f: Flow, fl: u32): void {
  if (fl & F_FIN) f.cFin += 1;
  if (fl & F_SYN) f.cSyn += 1;
  if (fl & F_RST) f.cRst += 1;
  if (fl & F_PSH) f.cPsh += 1;
  if (fl & F_ACK) f.cAck += 1;
  if (fl & F_URG) f.cUrg += 1;
  if (fl & F_CWR) f.cCwr += 1;
  if (fl & F_ECE) f.cEce += 1;
}

/** Bulk detection for one direction; `base` points at that direction's 8 bulk fields (fBulk* or bBulk*). */
function updateBulk(base: usize, otherLast: f64, ts: f64, size: f64): void {
  // Fields: 0 dur, 1 pkts, 2 size, 3 states, 4 cntHelper, 5 startHelper, 6 sizeHelper, 7 last.
  if (otherLast > load<f64>(base, 40)) store<f64>(base, 0, 40);
  if (size <= 0) return;
  if (load<f64>(base, 40) == 0) {
    store<f64>(base, ts, 40);
    store<f64>(base, 1, 32);
    store<f64>(base, size, 48);
    store<f64>(base, ts, 56);
  } else if ((ts - load<f64>(base, 56)) / 1e6 > 1.0) {
    store<f64>(base, ts, 40);
    store<f64>(base, ts, 56);
    store<f64>(base, 1, 32);
    store<f64>(base, size, 48);
  } else {
    const cnt = load<f64>(base, 32) + 1;
    store<f64>(base, cnt, 32);
    store<f64>(base, load<f64>(base, 48) + size, 48);
    if (cnt == 4) {
      store<f64>(base, load<f64>(base, 24) + 1, 24);
      store<f64>(base, load<f64>(base, 8) + cnt, 8);
      store<f64>(base, load<f64>(base, 16) + load<f64>(base, 48), 16);
      store<f64>(base, load<f64>(base) + (ts - load<f64>(base, 40)), 0);
    } else if (cnt > 4) {
      store<f64>(base, load<f64>(base, 8) + 1, 8);
      store<f64>(base, load<f64>(base, 16) + size, 16);
      store<f64>(base, load<f64>(base) + (ts - load<f64>(base, 56)), 0);
    }
    store<f64>(base, ts, 56);
  }
}

@inline function fBulkBase(f: Flow): usize {
  return changetype<usize>(f) + offsetof<Flow>('fBulkDur');
}
@inline function bBulkBase(f: Flow): usize {
  return changetype<usize>(f) + offsetof<Flow>('bBulkDur');
}

/** The packet that opens a flow; it is always the flow's forward direction. */
export function firstPacket(f: Flow, ts: f64): void {
  resetFlow(f);
  const pay = pkPayload;
  f.startUs = ts;
  f.lastSeen = ts;
  f.startActive = ts;
  f.endActive = ts;
  f.sfLast = ts;
  f.sfCount = 1;
  f.minSegFwd = pkHeader;
  f.initWinFwd = pkWindow;
  f.initWinBwd = -1;
  statAdd(flowStat(f, S_ALL_LEN), pay);
  // compat: CICFlowMeter of the reference output adds the first packet's length to the flow statistics twice.
  if (compat) statAdd(flowStat(f, S_ALL_LEN), pay);
  statAdd(flowStat(f, S_FWD_LEN), pay);
  f.fwdHdr = pkHeader;
  f.fwdLastSeen = ts;
  f.fwdBytes = pay;
  f.fwdPkts = 1;
  if (pkFlags & F_PSH) f.fPsh = 1;
  if (pkFlags & F_URG) f.fUrg = 1;
  countFlags(f, pkFlags);
  if (!compat) {
    if (pay >= 1) f.actDataFwd = 1;
    if (pkFlags & F_FIN) f.finState = 1;
    updateBulk(fBulkBase(f), 0, ts, pay);
  }
}

export function addPacket(f: Flow, fwd: bool, ts: f64): void {
  const pay = pkPayload;
  statAdd(flowStat(f, S_ALL_LEN), pay);
  if (fwd) {
    if (pay >= 1) f.actDataFwd += 1;
    statAdd(flowStat(f, S_FWD_LEN), pay);
    f.fwdHdr += pkHeader;
    f.fwdBytes += pay;
    f.fwdPkts += 1;
    if (f.fwdPkts > 1) statAdd(flowStat(f, S_FWD_IAT), ts - f.fwdLastSeen);
    f.fwdLastSeen = ts;
    if (pkHeader < f.minSegFwd) f.minSegFwd = pkHeader;
  } else {
    statAdd(flowStat(f, S_BWD_LEN), pay);
    // compat: the reference keeps the window of the LAST backward packet, not the first.
    if (compat || f.bwdPkts == 0) f.initWinBwd = pkWindow;
    f.bwdHdr += pkHeader;
    f.bwdBytes += pay;
    f.bwdPkts += 1;
    if (f.bwdPkts > 1) statAdd(flowStat(f, S_BWD_IAT), ts - f.bwdLastSeen);
    f.bwdLastSeen = ts;
  }
  statAdd(flowStat(f, S_FLOW_IAT), ts - f.lastSeen);
  f.lastSeen = ts;
  if (!compat) {
    // The reference counts flags, PSH/URG per direction, subflows and bulks on a flow's first packet only.
    countFlags(f, pkFlags);
    if (pkFlags & F_PSH) {
      if (fwd) f.fPsh += 1;
      else f.bPsh += 1;
    }
    if (pkFlags & F_URG) {
      if (fwd) f.fUrg += 1;
      else f.bUrg += 1;
    }
    if ((ts - f.sfLast) / 1e6 > 1.0) f.sfCount += 1;
    f.sfLast = ts;
    if (fwd) updateBulk(fBulkBase(f), f.bBulkLast, ts, pay);
    else updateBulk(bBulkBase(f), f.fBulkLast, ts, pay);
  }
}

// ---------------------------------------------------------------- emission

@inline function rate(x: f64, durUs: f64): f64 {
  // Java double division: x/0 is Infinity, 0/0 NaN (compat); corrected writes 0 for 0/0.
  const r = x / (durUs / 1e6);
  return !compat && isNaN(r) ? 0 : r;
}

@inline function div(a: f64, b: f64): f64 {
  // compat: CICFlowMeter divides longs here (integer division).
  if (b == 0) return 0;
  return compat ? Math.floor(a / b) : a / b;
}

function writeStat4(o: usize, k: u32, s: Stat, withSum: bool): u32 {
  // sum?, mean, std, max, min, or zeros when the statistic has no values
  if (withSum) {
    store<f64>(o + (<usize>k << 3), s.n > 0 ? s.sum : 0);
    k++;
  }
  store<f64>(o + (<usize>k << 3), s.n > 0 ? s.mean : 0);
  store<f64>(o + (<usize>(k + 1) << 3), s.n > 0 ? statStd(s) : 0);
  store<f64>(o + (<usize>(k + 2) << 3), s.n > 0 ? s.max : 0);
  store<f64>(o + (<usize>(k + 3) << 3), s.n > 0 ? s.min : 0);
  return k + 4;
}

/** Writes a finished flow's record (identifiers, then the 76 features in STAT_FEATURES order) at `r`. */
export function writeRecord(f: Flow, r: usize): void {
  const nf = f.fwdPkts;
  const nb = f.bwdPkts;
  if (!compat && f.endActive - f.startActive > 0) statAdd(flowStat(f, S_ACTIVE), f.endActive - f.startActive);
  const p = changetype<usize>(f);
  if (f.srcIsA) {
    v128.store(r, v128.load(p));
    v128.store(r, v128.load(p, 16), 16);
  } else {
    v128.store(r, v128.load(p, 16));
    v128.store(r, v128.load(p), 16);
  }
  store<f64>(r, <f64>f.srcPort, 32);
  store<f64>(r, <f64>f.dstPort, 40);
  store<f64>(r, <f64>((f.misc >> 32) & 0xff), 48);
  store<f64>(r, <f64>((f.misc >> 40) & 1), 56);
  store<f64>(r, f.startUs, 64);
  const o = r + REC_HEAD;
  const dur = f.lastSeen - f.startUs;
  const fl = flowStat(f, S_FWD_LEN);
  const bl = flowStat(f, S_BWD_LEN);
  const al = flowStat(f, S_ALL_LEN);
  store<f64>(o, dur, 0);
  store<f64>(o, nf, 8);
  store<f64>(o, nb, 16);
  store<f64>(o, fl.sum, 24);
  store<f64>(o, bl.sum, 32);
  store<f64>(o, fl.n > 0 ? fl.max : 0, 40);
  store<f64>(o, fl.n > 0 ? fl.min : 0, 48);
  store<f64>(o, fl.n > 0 ? fl.mean : 0, 56);
  store<f64>(o, fl.n > 0 ? statStd(fl) : 0, 64);
  store<f64>(o, bl.n > 0 ? bl.max : 0, 72);
  store<f64>(o, bl.n > 0 ? bl.min : 0, 80);
  store<f64>(o, bl.n > 0 ? bl.mean : 0, 88);
  store<f64>(o, bl.n > 0 ? statStd(bl) : 0, 96);
  store<f64>(o, rate(f.fwdBytes + f.bwdBytes, dur), 104);
  store<f64>(o, rate(nf + nb, dur), 112);
  writeStat4(o, 15, flowStat(f, S_FLOW_IAT), false);
  writeStat4(o, 19, flowStat(f, S_FWD_IAT), true);
  writeStat4(o, 24, flowStat(f, S_BWD_IAT), true);
  store<f64>(o, f.fPsh, 29 * 8);
  store<f64>(o, f.bPsh, 30 * 8);
  store<f64>(o, f.fUrg, 31 * 8);
  store<f64>(o, f.bUrg, 32 * 8);
  store<f64>(o, f.fwdHdr, 33 * 8);
  store<f64>(o, f.bwdHdr, 34 * 8);
  store<f64>(o, dur > 0 ? nf / (dur / 1e6) : 0, 35 * 8);
  store<f64>(o, dur > 0 ? nb / (dur / 1e6) : 0, 36 * 8);
  store<f64>(o, al.min, 37 * 8);
  store<f64>(o, al.max, 38 * 8);
  store<f64>(o, al.mean, 39 * 8);
  store<f64>(o, statStd(al), 40 * 8);
  store<f64>(o, statVar(al), 41 * 8);
  if (compat) {
    // The reference prints its flag HashMap in Java's iteration order (RST, PSH, ECE, SYN, ACK, FIN, URG, CWR)
    // under the headers FIN, SYN, RST, PSH, ACK, URG, CWE, ECE.
    store<f64>(o, f.cRst, 42 * 8);
    store<f64>(o, f.cPsh, 43 * 8);
    store<f64>(o, f.cEce, 44 * 8);
    store<f64>(o, f.cSyn, 45 * 8);
    store<f64>(o, f.cAck, 46 * 8);
    store<f64>(o, f.cFin, 47 * 8);
    store<f64>(o, f.cUrg, 48 * 8);
    store<f64>(o, f.cCwr, 49 * 8);
  } else {
    store<f64>(o, f.cFin, 42 * 8);
    store<f64>(o, f.cSyn, 43 * 8);
    store<f64>(o, f.cRst, 44 * 8);
    store<f64>(o, f.cPsh, 45 * 8);
    store<f64>(o, f.cAck, 46 * 8);
    store<f64>(o, f.cUrg, 47 * 8);
    store<f64>(o, f.cCwr, 48 * 8);
    store<f64>(o, f.cEce, 49 * 8);
  }
  store<f64>(o, nf > 0 ? div(nb, nf) : 0, 50 * 8);
  store<f64>(o, nf + nb > 0 ? al.sum / (nf + nb) : 0, 51 * 8);
  store<f64>(o, nf > 0 ? fl.sum / nf : 0, 52 * 8);
  store<f64>(o, nb > 0 ? bl.sum / nb : 0, 53 * 8);
  const fBytesPerBulk = div(f.fBulkSize, f.fBulkStates);
  store<f64>(o, fBytesPerBulk, 54 * 8);
  store<f64>(o, div(f.fBulkPkts, f.fBulkStates), 55 * 8);
  store<f64>(o, f.fBulkDur != 0 ? bulkRate(f.fBulkSize, f.fBulkDur) : 0, 56 * 8);
  // compat: the reference writes the forward bytes/bulk again in the backward column.
  store<f64>(o, compat ? fBytesPerBulk : div(f.bBulkSize, f.bBulkStates), 57 * 8);
  store<f64>(o, div(f.bBulkPkts, f.bBulkStates), 58 * 8);
  store<f64>(o, f.bBulkDur != 0 ? bulkRate(f.bBulkSize, f.bBulkDur) : 0, 59 * 8);
  const sf = f.sfCount;
  store<f64>(o, div(nf, sf), 60 * 8);
  store<f64>(o, div(f.fwdBytes, sf), 61 * 8);
  store<f64>(o, div(nb, sf), 62 * 8);
  store<f64>(o, div(f.bwdBytes, sf), 63 * 8);
  store<f64>(o, f.initWinFwd, 64 * 8);
  store<f64>(o, f.initWinBwd, 65 * 8);
  store<f64>(o, f.actDataFwd, 66 * 8);
  store<f64>(o, f.minSegFwd, 67 * 8);
  writeStat4(o, 68, flowStat(f, S_ACTIVE), false);
  writeStat4(o, 72, flowStat(f, S_IDLE), false);
}

@inline function bulkRate(size: f64, durUs: f64): f64 {
  const r = size / (durUs / 1e6);
  return compat ? Math.trunc(r) : r;
}

