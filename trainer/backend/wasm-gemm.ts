/**
 * Direct access to the tfjs wasm backend's heap and its XNNPACK matrix multiply, bypassing the tfjs engine.
 * A training step of the small CNN-LSTM is thousands of tiny kernels through the engine (~50 µs each); here it is
 * ~55 matmul calls plus JS loops over typed views of the same heap.
 *
 * The backend caches one XNNPACK operator per (b, bias) tensor id with b's values packed inside, so every call
 * registers b and bias under fresh ids and disposes them after: a buffer whose values change is never stale.
 */
import * as tf from '@tensorflow/tfjs';

interface EmModule {
  HEAPF32: Float32Array;
  HEAP32: Int32Array;
  _malloc(bytes: number): number;
  _free(ptr: number): void;
  _register_tensor(id: number, size: number, ptr: number): void;
  _dispose_data(id: number): void;
  _Sigmoid(xId: number, outId: number): void;
  __FusedMatMul(
    aId: number, aShape: number, aRank: number, bId: number, bShape: number, bRank: number,
    transposeA: number, transposeB: number, activation: number, biasId: number, preluId: number, alpha: number, outId: number,
  ): void;
}

/** A float buffer on the wasm heap; `v` is its current typed view (renewed when the heap grows). */
export interface HeapBuf {
  ptr: number;
  size: number;
  /** Tensor id registered for use as a matmul input/output (a or out; b and bias get fresh ids per call). */
  id: number;
  v: Float32Array;
}

// Ids far above the backend's own counter (which starts at 0 and counts up by one per tensor).
let nextId = 0x40000000;

export class WasmHeap {
  private readonly mod: EmModule;
  private readonly bufs: HeapBuf[] = [];
  private readonly owned = new Set<HeapBuf>();
  private heap: ArrayBuffer;
  private readonly shapes: number;

  constructor() {
    if (tf.getBackend() !== 'wasm') throw new Error('WasmHeap needs the wasm backend to be active');
    this.mod = (tf.backend() as unknown as { wasm: EmModule }).wasm;
    if (typeof this.mod.__FusedMatMul !== 'function' || typeof this.mod._register_tensor !== 'function') {
      throw new Error('this tfjs-backend-wasm build does not export _FusedMatMul/register_tensor');
    }
    this.shapes = this.mod._malloc(6 * 4);
    this.heap = this.mod.HEAPF32.buffer as ArrayBuffer;
  }

  alloc(size: number): HeapBuf {
    const n = Math.max(1, size);
    const ptr = this.mod._malloc(n * 4);
    if (!ptr) throw new Error(`wasm heap: cannot allocate ${n} floats`);
    const id = nextId++;
    this.mod._register_tensor(id, n, ptr);
    const b: HeapBuf = { ptr, size: n, id, v: new Float32Array(this.mod.HEAPF32.buffer, ptr, n) };
    this.bufs.push(b);
    this.owned.add(b);
    this.refresh();
    return b;
  }

  /** The whole heap as floats (for native copyWithin between buffers); renewed like the views. */
  get f32(): Float32Array {
    return this.mod.HEAPF32;
  }

  /** Register `b` under a fresh id for several matmuls (its XNNPACK packing is reused); release with unpin. */
  pin(b: HeapBuf, size: number): number {
    const id = nextId++;
    this.mod._register_tensor(id, size, b.ptr);
    return id;
  }

  unpin(id: number): void {
    this.mod._dispose_data(id);
  }

  /** Renew every view if the wasm memory grew (growth detaches the old ArrayBuffer). */
  refresh(): void {
    const buf = this.mod.HEAPF32.buffer as ArrayBuffer;
    if (buf === this.heap) return;
    this.heap = buf;
    for (const b of this.bufs) b.v = new Float32Array(buf, b.ptr, b.size);
  }

  /**
   * out[M,N] = act(a[M,K] · b[K,N] + bias[N]) with row-major operands (act 0 = linear, 1 = relu); offsets in
   * floats select a block of a buffer (e.g. one time step). Every operand is registered under a fresh id.
   */
  matmul(
    a: HeapBuf, aOff: number, M: number, K: number,
    b: HeapBuf, bOff: number, N: number,
    out: HeapBuf, outOff = 0, bias: HeapBuf | null = null, act = 0, pinnedB = 0,
  ): void {
    if (aOff + M * K > a.size || bOff + K * N > b.size || outOff + M * N > out.size || (bias && bias.size < N)) {
      throw new Error(`matmul ${M}×${K}·${K}×${N}: an operand is too small`);
    }
    const m = this.mod;
    const s = this.shapes >> 2;
    const H = m.HEAP32;
    H[s] = 1;
    H[s + 1] = M;
    H[s + 2] = K;
    H[s + 3] = 1;
    H[s + 4] = K;
    H[s + 5] = N;
    const aId = nextId++;
    const bId = pinnedB || nextId++;
    const oId = nextId++;
    m._register_tensor(aId, M * K, a.ptr + aOff * 4);
    if (!pinnedB) m._register_tensor(bId, K * N, b.ptr + bOff * 4);
    m._register_tensor(oId, M * N, out.ptr + outOff * 4);
    let biasId = 0;
    if (bias) {
      biasId = nextId++;
      m._register_tensor(biasId, N, bias.ptr);
    }
    m.__FusedMatMul(aId, this.shapes, 3, bId, this.shapes + 12, 3, 0, 0, act, biasId, 0, 0, oId);
    m._dispose_data(aId);
    if (!pinnedB) m._dispose_data(bId);
    m._dispose_data(oId);
    if (biasId) m._dispose_data(biasId);
    if (nextId > 0x7ff00000) nextId = 0x40000000;
    this.refresh();
  }

  /** out[outOff …+size) = σ(a[aOff …+size)) through the backend's vectorised kernel (in place allowed). */
  sigmoid(a: HeapBuf, aOff: number, out: HeapBuf, outOff: number, size: number): void {
    if (aOff + size > a.size || outOff + size > out.size) throw new Error(`sigmoid of ${size}: an operand is too small`);
    const m = this.mod;
    const xId = nextId++;
    const oId = nextId++;
    m._register_tensor(xId, size, a.ptr + aOff * 4);
    m._register_tensor(oId, size, out.ptr + outOff * 4);
    m._Sigmoid(xId, oId);
    m._dispose_data(xId);
    m._dispose_data(oId);
    this.refresh();
  }

  dispose(): void {
    for (const b of this.bufs) this.mod._dispose_data(b.id);
    for (const b of this.bufs) if (this.owned.has(b)) this.mod._free(b.ptr);
    this.bufs.length = 0;
    this.owned.clear();
    this.mod._free(this.shapes);
  }
}
