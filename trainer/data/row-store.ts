/**
 * Rows accumulated as fixed-size Float32Array chunks (no per-row objects), then packed once into one row-major
 * matrix with chosen columns. Also the duplicate detector used by `dedupe`.
 */

const CHUNK_ROWS = 32768;

export class RowStore {
  readonly width: number;
  private chunks: (Float32Array | null)[] = [];
  private labels = new Int32Array(CHUNK_ROWS);
  rows = 0;

  constructor(width: number) {
    this.width = width;
  }

  push(values: Float64Array, label: number): void {
    const r = this.rows % CHUNK_ROWS;
    if (r === 0) this.chunks.push(new Float32Array(CHUNK_ROWS * this.width));
    this.chunks[this.chunks.length - 1]!.set(values, r * this.width);
    if (this.rows === this.labels.length) {
      const grown = new Int32Array(this.labels.length * 2);
      grown.set(this.labels);
      this.labels = grown;
    }
    this.labels[this.rows++] = label;
  }

  /** Columns whose value is the same on every row (NaN counts as equal to NaN). Needs at least 2 rows. */
  constantColumns(): boolean[] {
    const w = this.width;
    const constant = new Array<boolean>(w).fill(this.rows >= 2);
    if (this.rows < 2) return constant;
    const first = this.chunks[0]!;
    let open = w;
    for (let c = 0; c < this.chunks.length && open > 0; c++) {
      const chunk = this.chunks[c]!;
      const n = Math.min(CHUNK_ROWS, this.rows - c * CHUNK_ROWS);
      for (let j = 0; j < w; j++) {
        if (!constant[j]) continue;
        const v0 = first[j];
        const nan0 = v0 !== v0;
        for (let r = 0; r < n; r++) {
          const v = chunk[r * w + j];
          if (v !== v0 && !(nan0 && v !== v)) {
            constant[j] = false;
            open--;
            break;
          }
        }
      }
    }
    return constant;
  }

  /**
   * One contiguous rows × keep.length matrix; chunks are released as they are copied, so peak memory is about
   * one matrix plus one chunk. The store is empty afterwards.
   */
  pack(keep: readonly number[], labelOf: (label: number) => number): { X: Float32Array; y: Int32Array } {
    const w = this.width;
    const k = keep.length;
    const X = new Float32Array(this.rows * k);
    const y = new Int32Array(this.rows);
    const identity = k === w && keep.every((j, i) => j === i);
    for (let c = 0; c < this.chunks.length; c++) {
      const chunk = this.chunks[c]!;
      const base = c * CHUNK_ROWS;
      const n = Math.min(CHUNK_ROWS, this.rows - base);
      if (identity) X.set(chunk.subarray(0, n * w), base * w);
      else
        for (let r = 0; r < n; r++) {
          const src = r * w;
          const dst = (base + r) * k;
          for (let j = 0; j < k; j++) X[dst + j] = chunk[src + keep[j]];
        }
      this.chunks[c] = null;
    }
    for (let r = 0; r < this.rows; r++) y[r] = labelOf(this.labels[r]);
    this.chunks = [];
    this.rows = 0;
    return { X, y };
  }
}

/**
 * Remembers rows by a 53-bit hash of their parsed values' bytes plus the class: two independent 32-bit mixes.
 * A false "duplicate" needs a 53-bit collision: ~2e-5 chance over IoTID20's 625,783 rows.
 */
export class DuplicateFilter {
  private seen = new Set<number>();
  private f64 = new Float64Array(0);
  private u32 = new Uint32Array(0);

  /** True when an equal row (same values, same label) was seen before; remembers it otherwise. */
  isDuplicate(values: Float64Array, label: number): boolean {
    if (this.f64.length !== values.length) {
      this.f64 = new Float64Array(values.length);
      this.u32 = new Uint32Array(this.f64.buffer);
    }
    this.f64.set(values);
    const u = this.u32;
    let h1 = 0x811c9dc5 ^ label;
    let h2 = 0x9747b28c ^ Math.imul(label, 0x85ebca6b);
    for (let i = 0; i < u.length; i++) {
      const x = u[i];
      h1 = Math.imul(h1 ^ x, 0x01000193);
      h1 ^= h1 >>> 15;
      h2 = Math.imul(h2 ^ Math.imul(x, 0xcc9e2d51), 0x1b873593);
      h2 = (h2 << 13) | (h2 >>> 19);
    }
    h1 = Math.imul(h1 ^ (h1 >>> 16), 0x85ebca6b);
    h1 ^= h1 >>> 13;
    h2 = Math.imul(h2 ^ (h2 >>> 16), 0xc2b2ae35);
    h2 ^= h2 >>> 16;
    const key = (h1 >>> 0) * 2097152 + ((h2 >>> 0) & 0x1fffff);
    if (this.seen.has(key)) return true;
    this.seen.add(key);
    return false;
  }
}
