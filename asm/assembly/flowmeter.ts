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
  pkSrcPtr, pkDstPtr, pkSrcPort, pkDstPort, pkProto, pkV6, pkFlags, F_FIN, F_RST, F_ACK,
} from './flowpacket';
import { Flow, FLOW_BYTES } from './flowstate';
import { REC_BYTES, setFeatureMode, firstPacket, addPacket, updateActiveIdle, writeRecord } from './flowfeatures';

let compat = true;
let flowTimeout: f64 = 120e6;

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
  setFeatureMode(compat, activityTimeoutUs);
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

// ---------------------------------------------------------------- the packet loop

/** Writes a finished flow to the output block (compat drops one-packet flows, as the reference does). */
function emit(f: Flow): void {
  if (compat && f.fwdPkts + f.bwdPkts <= 1) {
    cSuppressed += 1;
    return;
  }
  writeRecord(f, outPtr + <usize>outCount * REC_BYTES);
  outCount++;
  cEmitted += 1;
}

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
    // corrected: a connection reset with nothing before it (a scan's answer) is a whole flow already.
    if (!compat && (pkFlags & F_RST) != 0) {
      const f = flowAt(lruHead - 1);
      emit(f);
      removeFlow(f);
    }
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
      if ((pkFlags & F_RST) != 0) {
        emit(f);
        removeFlow(f);
      }
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
    let ts = load<f64>(tsBase + (<usize>i << 3));
    // compat: CICFlowMeter reads whole microseconds (nanosecond captures are truncated).
    if (compat) ts = Math.floor(ts);
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
