/**
 * The JS side of the wasm flow meter: one wasm instance per meter. A PacketBatch crosses into wasm memory with
 * one bulk copy per array (no per-packet calls); finished flows come back as a block of f64 records read through
 * typed-array views. Semantics live in asm/assembly/flowmeter.ts; differences between the modes in
 * asm/FLOWMETER.md.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { IdsError } from '../shared/errors.ts';
import type { FlowRecord, PacketBatch } from '../shared/packets.ts';

export type MeterMode = 'cicflowmeter-compat' | 'corrected';

export interface MeterOptions {
  mode?: MeterMode;
  flowTimeoutUs?: number;
  activityTimeoutUs?: number;
  /** Cap on live flows; past it the least recently seen flow is evicted (emitted and counted). */
  maxFlows?: number;
  /** Bytes of preprocess.wasm; default asm/build/preprocess.wasm. */
  wasm?: Uint8Array;
}

export interface MeterStats {
  packets: number;
  /** Packets with no IP layer (ARP, LLDP, ...): counted and skipped. */
  nonIp: number;
  flowsOpened: number;
  flowsEmitted: number;
  /** Flows pushed out by the live-flow cap. */
  evicted: number;
  live: number;
  /** IP packets no flow can use: header cut by the snap length, bad header, IPv6 in compat mode. */
  skipped: number;
  /** Compat mode: one-packet flows the reference never writes (opened, ended, not emitted). */
  suppressed: number;
  /** Corrected mode: flows ended because time moved past their flow timeout with no packet. */
  expired: number;
  /** Bytes of wasm linear memory now (the meter's peak: wasm memory never shrinks). */
  wasmMemoryBytes: number;
}

export const DEFAULT_FLOW_TIMEOUT_US = 120_000_000;
export const DEFAULT_ACTIVITY_TIMEOUT_US = 5_000_000;
export const DEFAULT_MAX_FLOWS = 32_768;
const OUT_RECORDS = 1024;
const N_FEATURES = 76;

export const DEFAULT_WASM_PATH = fileURLToPath(new URL('./build/preprocess.wasm', import.meta.url));

interface FmExports {
  memory: WebAssembly.Memory;
  fm_init(mode: number, flowTimeoutUs: number, activityTimeoutUs: number, maxFlows: number, outRecords: number): void;
  fm_reserve(bytes: number, count: number): void;
  fm_data_ptr(): number;
  fm_ts_ptr(): number;
  fm_off_ptr(): number;
  fm_len_ptr(): number;
  fm_link_ptr(): number;
  fm_out_ptr(): number;
  fm_out_count(): number;
  fm_out_reset(): void;
  fm_record_bytes(): number;
  fm_stat(k: number): number;
  fm_process(start: number, count: number): number;
  fm_advance(nowUs: number): number;
  fm_flush(): number;
}

let cachedModule: { bytes: Uint8Array | undefined; module: WebAssembly.Module } | undefined;

async function compile(bytes: Uint8Array | undefined): Promise<WebAssembly.Module> {
  if (cachedModule && cachedModule.bytes === bytes) return cachedModule.module;
  let src = bytes;
  if (!src) {
    try {
      src = readFileSync(DEFAULT_WASM_PATH);
    } catch (e) {
      throw new IdsError('BAD_OPTION', `flow meter wasm not found at ${DEFAULT_WASM_PATH}: run \`npm run build:asm\``, {
        cause: e,
      });
    }
  }
  const module = await WebAssembly.compile(src as Uint8Array<ArrayBuffer>);
  cachedModule = { bytes, module };
  return module;
}

const OCTET = Array.from({ length: 256 }, (_, i) => String(i));
const OCTET_DOT = OCTET.map((o) => o + '.');

/**
 * IPv4 text through a direct-mapped cache: making the string is most of the JS cost of a flow record, and a hub's
 * flows keep naming the same few hosts (in a spoofed flood: the victim).
 */
class Ipv4Names {
  private readonly keys = new Int32Array(1024).fill(-1);
  private readonly keyValid = new Uint8Array(1024);
  private readonly names: string[] = new Array(1024).fill('');

  get(b: Uint8Array, at: number): string {
    const v = (b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3];
    const i = (v ^ (v >>> 10) ^ (v >>> 20)) & 1023;
    if (this.keyValid[i] === 1 && this.keys[i] === v) return this.names[i];
    const name = OCTET_DOT[b[at]] + OCTET_DOT[b[at + 1]] + OCTET_DOT[b[at + 2]] + OCTET[b[at + 3]];
    this.keys[i] = v;
    this.keyValid[i] = 1;
    this.names[i] = name;
    return name;
  }
}

function ipString(bytes: Uint8Array, at: number, v6: boolean, names: Ipv4Names): string {
  if (!v6) return names.get(bytes, at);
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((bytes[at + 2 * i] << 8) | bytes[at + 2 * i + 1]);
  // RFC 5952: the longest run (≥ 2) of zero words becomes "::".
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (ws: number[]) => ws.map((w) => w.toString(16)).join(':');
  if (best < 0) return hex(words);
  return `${hex(words.slice(0, best))}::${hex(words.slice(best + bestLen))}`;
}

export class FlowMeter {
  private readonly x: FmExports;
  private readonly recBytes: number;
  private readonly names = new Ipv4Names();
  readonly mode: MeterMode;

  private constructor(x: FmExports, mode: MeterMode) {
    this.x = x;
    this.mode = mode;
    this.recBytes = x.fm_record_bytes();
  }

  static async create(opts: MeterOptions = {}): Promise<FlowMeter> {
    const mode = opts.mode ?? 'cicflowmeter-compat';
    if (mode !== 'cicflowmeter-compat' && mode !== 'corrected') {
      throw new IdsError('BAD_OPTION', `flow meter mode "${mode}": expected cicflowmeter-compat or corrected`);
    }
    const flowTimeout = opts.flowTimeoutUs ?? DEFAULT_FLOW_TIMEOUT_US;
    const activityTimeout = opts.activityTimeoutUs ?? DEFAULT_ACTIVITY_TIMEOUT_US;
    const maxFlows = opts.maxFlows ?? DEFAULT_MAX_FLOWS;
    for (const [name, v] of [['flowTimeoutUs', flowTimeout], ['activityTimeoutUs', activityTimeout]] as const) {
      if (!(v > 0) || !Number.isFinite(v)) throw new IdsError('BAD_OPTION', `flow meter ${name} must be > 0, got ${v}`);
    }
    if (!Number.isInteger(maxFlows) || maxFlows < 1 || maxFlows > 2_000_000) {
      throw new IdsError('BAD_OPTION', `flow meter maxFlows must be an integer in 1..2000000 (832 bytes each), got ${maxFlows}`);
    }
    const module = await compile(opts.wasm);
    const instance = await WebAssembly.instantiate(module, {
      env: {
        abort: (_m: number, _f: number, line: number, col: number) => {
          throw new IdsError('BAD_CAPTURE', `flow meter wasm aborted at ${line}:${col}`);
        },
      },
    });
    const x = instance.exports as unknown as FmExports;
    x.fm_init(mode === 'corrected' ? 1 : 0, flowTimeout, activityTimeout, maxFlows, OUT_RECORDS);
    return new FlowMeter(x, mode);
  }

  /** Feeds one batch; returns the flows it finished (FIN/RST, timeout, eviction, expiry). */
  push(batch: PacketBatch): FlowRecord[] {
    const out: FlowRecord[] = [];
    const n = batch.count;
    if (n === 0) return out;
    const x = this.x;
    const bytes = batch.data.byteLength;
    x.fm_reserve(bytes, n);
    // Views made after fm_reserve: memory may have grown (and detached older views).
    const buf = x.memory.buffer;
    new Uint8Array(buf, x.fm_data_ptr(), bytes).set(batch.data);
    new Float64Array(buf, x.fm_ts_ptr(), n).set(batch.timestampsUs.subarray(0, n));
    new Uint32Array(buf, x.fm_off_ptr(), n).set(batch.offsets.subarray(0, n));
    new Uint32Array(buf, x.fm_len_ptr(), n).set(batch.lengths.subarray(0, n));
    new Uint16Array(buf, x.fm_link_ptr(), n).set(batch.linkTypes.subarray(0, n));
    let i = 0;
    while (i < n) {
      i = x.fm_process(i, n);
      this.drain(out);
    }
    return out;
  }

  /** Corrected mode: time passed with no packets (e.g. a quiet hub); returns flows idle past the flow timeout. */
  advance(nowUs: number): FlowRecord[] {
    const out: FlowRecord[] = [];
    while (this.x.fm_advance(nowUs)) this.drain(out);
    this.drain(out);
    return out;
  }

  /** Ends every live flow (end of capture). */
  flush(): FlowRecord[] {
    const out: FlowRecord[] = [];
    while (this.x.fm_flush()) this.drain(out);
    this.drain(out);
    return out;
  }

  stats(): MeterStats {
    const s = (k: number) => this.x.fm_stat(k);
    return {
      packets: s(0),
      nonIp: s(1),
      flowsOpened: s(2),
      flowsEmitted: s(3),
      evicted: s(4),
      live: s(5),
      skipped: s(6),
      suppressed: s(7),
      expired: s(8),
      wasmMemoryBytes: this.x.memory.buffer.byteLength,
    };
  }

  private drain(out: FlowRecord[]): void {
    const x = this.x;
    const count = x.fm_out_count();
    if (count === 0) return;
    const buf = x.memory.buffer;
    const base = x.fm_out_ptr();
    const bytes = new Uint8Array(buf, base, count * this.recBytes);
    const f64 = new Float64Array(buf, base, (count * this.recBytes) / 8);
    const stride = this.recBytes / 8;
    // One copy of the whole block; each record's features are a view into it (a typed array of its own per
    // flow would cost an off-heap allocation each).
    const block = f64.slice(0, count * stride);
    for (let r = 0; r < count; r++) {
      const o = r * stride;
      const v6 = block[o + 7] === 1;
      out.push({
        srcIp: ipString(bytes, r * this.recBytes, v6, this.names),
        dstIp: ipString(bytes, r * this.recBytes + 16, v6, this.names),
        srcPort: block[o + 4],
        dstPort: block[o + 5],
        protocol: block[o + 6],
        startUs: block[o + 8],
        // The constructor, not subarray(): subarray goes through the species lookup and costs several times more.
        features: new Float64Array(block.buffer, (o + 9) * 8, N_FEATURES),
      });
    }
    x.fm_out_reset();
  }
}
