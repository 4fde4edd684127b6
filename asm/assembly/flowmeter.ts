// CICFlowMeter-compatible flow meter. Exports are prefixed `fm_` (the scaler shares this module).
//
// Memory: everything this module uses is taken with heap.alloc at fm_init / fm_reserve (the stub runtime's bump
// allocator), never at fixed addresses, so the scaler can allocate beside it. The flow table is a fixed pool of
// `maxFlows` slots plus an open-addressing index (linear probing, backward-shift deletion): no allocation per
// packet or per flow. When the pool is full the least recently seen flow is evicted (emitted and counted).
//
// Protocol with the host (asm/flowmeter-host.ts): fm_reserve(bytes, count), then the host copies a batch into the
// buffers at fm_data_ptr / fm_ts_ptr / fm_off_ptr / fm_len_ptr / fm_link_ptr and calls fm_process(start, count)
// until it returns count, draining finished flows (fm_out_ptr, fm_out_count, REC_BYTES each) between calls.
import {
  parsePacket, initPacketScratch, PARSE_OK, PARSE_NOT_IP,
  pkSrcPtr, pkDstPtr, pkSrcPort, pkDstPort, pkProto, pkV6, pkPayload, pkHeader, pkWindow, pkFlags,
  F_FIN, F_SYN, F_RST, F_PSH, F_ACK, F_URG, F_ECE, F_CWR,
} from './flowpacket';
import {
  Flow, Stat, FLOW_BYTES, flowStat, statAdd, statReset, statStd, statVar, N_STATS,
  S_FWD_LEN, S_BWD_LEN, S_ALL_LEN, S_FLOW_IAT, S_FWD_IAT, S_BWD_IAT, S_ACTIVE, S_IDLE,
} from './flowstate';

const N_FEATURES: u32 = 76;
/** Output record: src IP (16 bytes), dst IP (16), then f64: srcPort, dstPort, proto, v6, startUs, 76 features. */
const REC_HEAD: u32 = 72;
const REC_BYTES: u32 = REC_HEAD + N_FEATURES * 8;

let compat = true;
let flowTimeout: f64 = 120e6;
let activityTimeout: f64 = 5e6;

let maxFlows: u32 = 0;
let slots: usize = 0;
let table: usize = 0;
let mask: u32 = 0;
let freeStack: usize = 0;
let freeTop: u32 = 0;
let lruHead: u32 = 0;
let lruTail: u32 = 0;
let live: u32 = 0;
let keyPtr: usize = 0;

let outPtr: usize = 0;
let outCap: u32 = 0;
let outCount: u32 = 0;

let dataPtr: usize = 0;
let dataCap: u32 = 0;
let dataLen: u32 = 0;
let metaPtr: usize = 0;
let metaCap: u32 = 0;

let now: f64 = -Infinity;
let pktTs: f64 = 0;

// Counters (fm_stat indices).
let cPackets: f64 = 0;
let cNonIp: f64 = 0;
let cSkipped: f64 = 0;
let cOpened: f64 = 0;
let cEmitted: f64 = 0;
let cEvicted: f64 = 0;
let cSuppressed: f64 = 0;
let cExpired: f64 = 0;

// ---------------------------------------------------------------- setup and buffers

export function fm_init(mode: i32, flowTimeoutUs: f64, activityTimeoutUs: f64, maxLive: u32, outRecords: u32): void {
  compat = mode == 0;
  flowTimeout = flowTimeoutUs;
  activityTimeout = activityTimeoutUs;
  maxFlows = maxLive < 1 ? 1 : maxLive;
  let size: u32 = 16;
  while (size < maxFlows * 2) size <<= 1;
  mask = size - 1;
  outCap = outRecords < 4 ? 4 : outRecords;
  // Grow memory to exactly what the pool needs: the stub allocator would otherwise double it.
  ensureMemory(<usize>size * 4 + <usize>maxFlows * (FLOW_BYTES + 4) + <usize>outCap * REC_BYTES + 1024);
  table = heap.alloc(<usize>size * 4);
  memory.fill(table, 0, <usize>size * 4);
  slots = heap.alloc(<usize>maxFlows * FLOW_BYTES);
  freeStack = heap.alloc(<usize>maxFlows * 4);
  for (let i: u32 = 0; i < maxFlows; i++) store<u32>(freeStack + <usize>i * 4, maxFlows - 1 - i);
  freeTop = maxFlows;
  keyPtr = heap.alloc(48);
  initPacketScratch();
  outPtr = heap.alloc(<usize>outCap * REC_BYTES);
  outCount = 0;
}

/** Grows memory to hold `bytes` more past the heap top: the stub allocator alone would double it. */
function ensureMemory(bytes: usize): void {
  const top = heap.alloc(16);
  const wantPages = <i32>((top + bytes + 0x1ffff) >> 16) - memory.size();
  if (wantPages > 0) memory.grow(wantPages);
}

/** Makes room for a batch of `count` packets holding `bytes` bytes of data. */
export function fm_reserve(bytes: u32, count: u32): void {
  if (bytes > dataCap) {
    if (dataPtr != 0) heap.free(dataPtr);
    dataCap = bytes + (bytes >> 2) + 4096;
    ensureMemory(dataCap);
    dataPtr = heap.alloc(dataCap);
  }
  dataLen = bytes;
  if (count > metaCap) {
    if (metaPtr != 0) heap.free(metaPtr);
    metaCap = count + (count >> 2) + 64;
    ensureMemory(<usize>metaCap * 18 + 16);
    metaPtr = heap.alloc(<usize>metaCap * 18 + 16);
  }
}

export function fm_data_ptr(): usize { return dataPtr; }
export function fm_ts_ptr(): usize { return metaPtr; }
export function fm_off_ptr(): usize { return metaPtr + <usize>metaCap * 8; }
export function fm_len_ptr(): usize { return metaPtr + <usize>metaCap * 12; }
export function fm_link_ptr(): usize { return metaPtr + <usize>metaCap * 16; }
export function fm_out_ptr(): usize { return outPtr; }
export function fm_out_count(): u32 { return outCount; }
export function fm_out_reset(): void { outCount = 0; }
export function fm_record_bytes(): u32 { return REC_BYTES; }
export function fm_flow_bytes(): u32 { return <u32>FLOW_BYTES; }

export function fm_stat(k: i32): f64 {
  switch (k) {
    case 0: return cPackets;
    case 1: return cNonIp;
    case 2: return cOpened;
    case 3: return cEmitted;
    case 4: return cEvicted;
    case 5: return <f64>live;
    case 6: return cSkipped;
    case 7: return cSuppressed;
    case 8: return cExpired;
  }
  return 0;
}

// ---------------------------------------------------------------- slots, index, LRU

@inline function slotPtr(s: u32): usize {
  return slots + <usize>s * FLOW_BYTES;
}

@inline function flowAt(s: u32): Flow {
  return changetype<Flow>(slotPtr(s));
}

@inline function slotOf(f: Flow): u32 {
  return <u32>((changetype<usize>(f) - slots) / FLOW_BYTES);
}

@inline function keyEquals(p: usize): bool {
  const x = v128.xor(v128.load(p), v128.load(keyPtr));
  const y = v128.xor(v128.load(p, 16), v128.load(keyPtr, 16));
  return !v128.any_true(v128.or(x, y)) && load<u64>(p, 32) == load<u64>(keyPtr, 32);
}

function keyHash(): u32 {
  let h = load<u64>(keyPtr) ^ (load<u64>(keyPtr, 16) * 0x9e3779b97f4a7c15) ^ rotl<u64>(load<u64>(keyPtr, 8), 21) ^
    rotl<u64>(load<u64>(keyPtr, 24), 42) ^ (load<u64>(keyPtr, 32) * 0xc2b2ae3d27d4eb4f);
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccd;
  h ^= h >> 33;
  return <u32>h;
}

/** Slot index + 1 of the flow with the key in keyPtr, or 0. */
function lookup(hash: u32): u32 {
  let i = hash & mask;
  while (true) {
    const e = load<u32>(table + (<usize>i << 2));
    if (e == 0) return 0;
    const f = flowAt(e - 1);
    if (f.hash == hash && keyEquals(changetype<usize>(f))) return e;
    i = (i + 1) & mask;
  }
  return 0;
}

function tableInsert(hash: u32, e: u32): void {
  let i = hash & mask;
  while (load<u32>(table + (<usize>i << 2)) != 0) i = (i + 1) & mask;
  store<u32>(table + (<usize>i << 2), e);
}

function tableDelete(f: Flow): void {
  const e = slotOf(f) + 1;
  let i = f.hash & mask;
  while (load<u32>(table + (<usize>i << 2)) != e) i = (i + 1) & mask;
  // Backward-shift deletion keeps probe chains intact without tombstones.
  let j = i;
  while (true) {
    j = (j + 1) & mask;
    const ej = load<u32>(table + (<usize>j << 2));
    if (ej == 0) break;
    const k = flowAt(ej - 1).hash & mask;
    const stays = i <= j ? i < k && k <= j : i < k || k <= j;
    if (stays) continue;
    store<u32>(table + (<usize>i << 2), ej);
    i = j;
  }
  store<u32>(table + (<usize>i << 2), 0);
}

function lruUnlink(f: Flow): void {
  if (f.prev != 0) flowAt(f.prev - 1).next = f.next;
  else lruHead = f.next;
  if (f.next != 0) flowAt(f.next - 1).prev = f.prev;
  else lruTail = f.prev;
  f.prev = 0;
  f.next = 0;
}

function lruPushFront(f: Flow): void {
  const e = slotOf(f) + 1;
  f.prev = 0;
  f.next = lruHead;
  if (lruHead != 0) flowAt(lruHead - 1).prev = e;
  lruHead = e;
  if (lruTail == 0) lruTail = e;
}

function removeFlow(f: Flow): void {
  tableDelete(f);
  lruUnlink(f);
  store<u32>(freeStack + (<usize>freeTop << 2), slotOf(f));
  freeTop++;
  live--;
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

function updateActiveIdle(f: Flow, ts: f64): void {
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
function firstPacket(f: Flow, ts: f64): void {
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

function addPacket(f: Flow, fwd: bool, ts: f64): void {
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

/** Writes a finished flow to the output block (compat drops one-packet flows, as the reference does). */
function emit(f: Flow): void {
  const nf = f.fwdPkts;
  const nb = f.bwdPkts;
  if (compat && nf + nb <= 1) {
    cSuppressed += 1;
    return;
  }
  if (!compat && f.endActive - f.startActive > 0) statAdd(flowStat(f, S_ACTIVE), f.endActive - f.startActive);
  const r = outPtr + <usize>outCount * REC_BYTES;
  outCount++;
  cEmitted += 1;
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

// ---------------------------------------------------------------- the packet loop

function evictOldest(): void {
  const f = flowAt(lruTail - 1);
  emit(f);
  cEvicted += 1;
  removeFlow(f);
}

/** Corrected mode: flows idle for longer than the flow timeout can take no more packets; emit them now. */
function expireIdle(): void {
  while (lruTail != 0 && outCount + 1 < outCap) {
    const f = flowAt(lruTail - 1);
    if (now - f.lastSeen <= flowTimeout) break;
    emit(f);
    cExpired += 1;
    removeFlow(f);
  }
}

/** Builds the canonical key in keyPtr; returns true when the packet's source became address B. */
function buildKey(): bool {
  // CICFlowMeter orders the two addresses by comparing their bytes as signed Java bytes.
  const flip: u64 = 0x8080808080808080;
  const sHi = bswap<u64>(load<u64>(pkSrcPtr)) ^ flip;
  const dHi = bswap<u64>(load<u64>(pkDstPtr)) ^ flip;
  let swap = false;
  if (sHi != dHi) swap = sHi > dHi;
  else {
    const sLo = bswap<u64>(load<u64>(pkSrcPtr, 8)) ^ flip;
    const dLo = bswap<u64>(load<u64>(pkDstPtr, 8)) ^ flip;
    if (sLo != dLo) swap = sLo > dLo;
    // Same address both ways: compat keeps packet order (so the two directions are two flows); corrected orders
    // by port so both directions meet in one flow.
    else swap = !compat && pkSrcPort > pkDstPort;
  }
  let portA = pkSrcPort;
  let portB = pkDstPort;
  if (swap) {
    v128.store(keyPtr, v128.load(pkDstPtr));
    v128.store(keyPtr, v128.load(pkSrcPtr), 16);
    portA = pkDstPort;
    portB = pkSrcPort;
  } else {
    v128.store(keyPtr, v128.load(pkSrcPtr));
    v128.store(keyPtr, v128.load(pkDstPtr), 16);
  }
  store<u64>(keyPtr, <u64>portA | (<u64>portB << 16) | (<u64>pkProto << 32) | (<u64>pkV6 << 40), 32);
  return swap;
}

function openFlow(hash: u32, swap: bool, ts: f64): void {
  if (freeTop == 0) evictOldest();
  freeTop--;
  const s = load<u32>(freeStack + (<usize>freeTop << 2));
  const f = flowAt(s);
  const p = changetype<usize>(f);
  v128.store(p, v128.load(keyPtr));
  v128.store(p, v128.load(keyPtr, 16), 16);
  store<u64>(p, load<u64>(keyPtr, 32), 32);
  f.hash = hash;
  f.prev = 0;
  f.next = 0;
  firstPacket(f, ts);
  f.srcIsA = swap ? 0 : 1;
  f.srcPort = pkSrcPort;
  f.dstPort = pkDstPort;
  tableInsert(hash, s + 1);
  lruPushFront(f);
  live++;
  cOpened += 1;
}

function onPacket(ts: f64): void {
  const swap = buildKey();
  const hash = keyHash();
  const e = lookup(hash);
  if (e == 0) {
    openFlow(hash, swap, ts);
    return;
  }
  const f = flowAt(e - 1);
  lruUnlink(f);
  lruPushFront(f);
  const fwd = (!swap) == (f.srcIsA != 0);
  if (ts - f.startUs > flowTimeout) {
    emit(f);
    const srcIsA = f.srcIsA;
    const sp = f.srcPort;
    const dp = f.dstPort;
    firstPacket(f, ts);
    cOpened += 1;
    if (compat) {
      // The reference starts the new flow with the old flow's direction, whichever side sent this packet.
      f.srcIsA = srcIsA;
      f.srcPort = sp;
      f.dstPort = dp;
    } else {
      f.srcIsA = swap ? 0 : 1;
      f.srcPort = pkSrcPort;
      f.dstPort = pkDstPort;
    }
    return;
  }
  if (compat) {
    if (pkFlags & F_FIN) {
      // The reference ends a flow on the first FIN in either direction (and skips the active/idle update).
      addPacket(f, fwd, ts);
      emit(f);
      removeFlow(f);
      return;
    }
    updateActiveIdle(f, ts);
    addPacket(f, fwd, ts);
    return;
  }
  updateActiveIdle(f, ts);
  addPacket(f, fwd, ts);
  const fl = pkFlags;
  if (fl & F_RST) {
    emit(f);
    removeFlow(f);
    return;
  }
  if (fl & F_FIN) {
    f.finState |= fwd ? 1 : 2;
    if ((f.finState & 3) == 3) f.finState |= 4;
    return;
  }
  // Both sides sent FIN: the connection ends with the ACK of the last FIN.
  if ((f.finState & 4) != 0 && (fl & F_ACK) != 0) {
    emit(f);
    removeFlow(f);
  }
}

/**
 * Processes packets start..count-1 of the batch in the input buffers. Returns the index of the first packet not
 * processed: less than `count` when the output block filled up (drain it and call again).
 */
export function fm_process(start: u32, count: u32): u32 {
  const tsBase = metaPtr;
  const offBase = metaPtr + <usize>metaCap * 8;
  const lenBase = metaPtr + <usize>metaCap * 12;
  const linkBase = metaPtr + <usize>metaCap * 16;
  for (let i = start; i < count; i++) {
    if (outCount + 2 > outCap) return i;
    const ts = load<f64>(tsBase + (<usize>i << 3));
    const off = load<u32>(offBase + (<usize>i << 2));
    const len = load<u32>(lenBase + (<usize>i << 2));
    const link = <u32>load<u16>(linkBase + (<usize>i << 1));
    cPackets += 1;
    if (<u64>off + <u64>len > <u64>dataLen) {
      cSkipped += 1;
      continue;
    }
    const r = parsePacket(dataPtr + off, len, link, compat);
    if (r != PARSE_OK) {
      if (r == PARSE_NOT_IP) cNonIp += 1;
      else cSkipped += 1;
      continue;
    }
    if (ts > now) now = ts;
    if (!compat) expireIdle();
    pktTs = ts;
    onPacket(ts);
  }
  return count;
}

/** Corrected mode: lets time pass without packets (a quiet network), expiring idle flows. 1 = more to emit. */
export function fm_advance(nowUs: f64): i32 {
  if (nowUs > now) now = nowUs;
  if (compat) return 0;
  expireIdle();
  return lruTail != 0 && now - flowAt(lruTail - 1).lastSeen > flowTimeout ? 1 : 0;
}

/** Emits live flows, oldest first, until the output block is full. Returns 1 while flows remain. */
export function fm_flush(): i32 {
  while (lruTail != 0 && outCount < outCap) {
    const f = flowAt(lruTail - 1);
    emit(f);
    removeFlow(f);
  }
  if (lruTail != 0) return 1;
  // End of a capture: the next one starts its own clock (a reused meter must not expire its flows at once).
  now = -Infinity;
  return 0;
}

/** Version of the record layout and semantics (bumped when either changes). */
export function flowmeterVersion(): i32 {
  return 1;
}
