/**
 * The fixed-memory table every watcher keeps its per-host (or per-pair) state in: keys and values in typed arrays
 * sized at construction, buckets of 8 slots, and when a bucket is full the least recently seen slot is reused
 * (counted in `evicted`). A flood of spoofed sources therefore churns the table instead of growing it, and
 * nothing is allocated per packet.
 *
 * Each slot has `nums` float64 values and `words` uint32 words (bitmaps for distinct counting, see `addDistinct`),
 * both zeroed when the slot is (re)assigned.
 */

const BUCKET = 8;

export class HostTable {
  readonly slots: number;
  private readonly ka: Uint32Array;
  private readonly kb: Uint32Array;
  private readonly kc: Uint32Array;
  private readonly used: Uint8Array;
  /** Last time (µs) each slot was touched. */
  readonly lastUs: Float64Array;
  readonly num: Float64Array;
  readonly word: Uint32Array;
  evicted = 0;
  live = 0;
  private readonly mask: number;

  constructor(capacity: number, readonly nums: number, readonly words: number) {
    // Power-of-two number of buckets, at least one.
    let buckets = 1;
    while (buckets * BUCKET < capacity) buckets <<= 1;
    this.slots = buckets * BUCKET;
    this.mask = buckets - 1;
    this.ka = new Uint32Array(this.slots);
    this.kb = new Uint32Array(this.slots);
    this.kc = new Uint32Array(this.slots);
    this.used = new Uint8Array(this.slots);
    this.lastUs = new Float64Array(this.slots);
    this.num = new Float64Array(this.slots * nums);
    this.word = new Uint32Array(this.slots * words);
  }

  /** The slot of key (a, b, c), or -1. */
  find(a: number, b = 0, c = 0): number {
    const base = (mix3(a, b, c) & this.mask) * BUCKET;
    for (let s = base; s < base + BUCKET; s++) {
      if (this.used[s] === 1 && this.ka[s] === a && this.kb[s] === b && this.kc[s] === c) return s;
    }
    return -1;
  }

  /** The slot of key (a, b, c), created (zeroed) when absent; `tUs` marks it recently used. */
  get(a: number, b: number, c: number, tUs: number): number {
    const base = (mix3(a, b, c) & this.mask) * BUCKET;
    let free = -1;
    let oldest = base;
    for (let s = base; s < base + BUCKET; s++) {
      if (this.used[s] === 1) {
        if (this.ka[s] === a && this.kb[s] === b && this.kc[s] === c) {
          this.lastUs[s] = tUs;
          return s;
        }
        if (this.lastUs[s] < this.lastUs[oldest]) oldest = s;
      } else if (free < 0) {
        free = s;
      }
    }
    let s = free;
    if (s < 0) {
      s = oldest;
      this.evicted++;
    } else {
      this.live++;
      this.used[s] = 1;
    }
    this.ka[s] = a;
    this.kb[s] = b;
    this.kc[s] = c;
    this.lastUs[s] = tUs;
    this.num.fill(0, s * this.nums, (s + 1) * this.nums);
    this.word.fill(0, s * this.words, (s + 1) * this.words);
    return s;
  }

  keyA(s: number): number {
    return this.ka[s];
  }
  keyB(s: number): number {
    return this.kb[s];
  }
  keyC(s: number): number {
    return this.kc[s];
  }
}

/** A 32-bit mix of up to three 32-bit values (murmur3's finaliser over a simple combination). */
export function mix3(a: number, b: number, c: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b ^ 0x7f4a7c15, 0xc2b2ae35) ^ Math.imul(c + 0x165667b1, 0x27d4eb2f);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Distinct counting in a bitmap of `bits` (a power of two) inside `words` at `base`: sets the bit of hash `h`;
 * true when it was clear (a new distinct value, up to hash collisions). The count of set bits is the caller's;
 * `distinctEstimate` turns it into a count (linear counting), exact enough far below the bitmap size.
 */
export function addDistinct(words: Uint32Array, base: number, bits: number, h: number): boolean {
  const bit = h & (bits - 1);
  const w = base + (bit >>> 5);
  const m = 1 << (bit & 31);
  if ((words[w] & m) !== 0) return false;
  words[w] |= m;
  return true;
}

export function hasDistinct(words: Uint32Array, base: number, bits: number, h: number): boolean {
  const bit = h & (bits - 1);
  return (words[base + (bit >>> 5)] & (1 << (bit & 31))) !== 0;
}

/** Clears the bit of hash `h` (a value found to be wrong after the fact; may clear a colliding value too). */
export function clearDistinct(words: Uint32Array, base: number, bits: number, h: number): void {
  const bit = h & (bits - 1);
  words[base + (bit >>> 5)] &= ~(1 << (bit & 31));
}

/** Linear counting: distinct values behind `ones` set bits of `bits`. */
export function distinctEstimate(ones: number, bits: number): number {
  if (ones >= bits) return Math.round(bits * Math.log(bits)); // saturated: "at least this many"
  return Math.round(-bits * Math.log(1 - ones / bits));
}
