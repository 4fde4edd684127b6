// Feature scaling for the hub (owner: edge runtime): raw f64 flow rows in, the model's Float32 input tensor out.
// Mirrors shared/scaler.ts scaleRow exactly (the reference it is tested against): NaN becomes 0 before the
// transform, log1p is sign-preserving, a lookup maps exact keys to codes (else the fallback), then min-max,
// clipped to [0,1] (so +inf → 1, -inf → 0).
//
// Every export is prefixed `sc_` because this module shares one wasm with the flow meter. Buffers come from the
// AS heap (no fixed addresses); the host writes the spec and the rows through the pointers returned here, and
// must refresh its memory views after any call that may grow memory (sc_init, sc_reserve).

const T_LOG1P: i32 = 1;
const T_LOOKUP: i32 = 2;

let nFeatures: i32 = 0;
let nIn: i32 = 0;
let transformsPtr: usize = 0; // i32 × F
let minPtr: usize = 0; // f64 × F
let maxPtr: usize = 0; // f64 × F
let colMapPtr: usize = 0; // i32 × F: model feature j ← input column colMap[j]
// Lookup tables, all features' entries in one pair of arrays: feature j owns entries [off[j], off[j] + len[j]).
let lkOffPtr: usize = 0; // i32 × F
let lkLenPtr: usize = 0; // i32 × F
let lkFallbackPtr: usize = 0; // f64 × F
let lkKeysPtr: usize = 0; // f64 × entries, ascending within a feature
let lkValuesPtr: usize = 0; // f64 × entries
let capRows: i32 = 0;
let inputPtr: usize = 0; // f64 × capRows × nIn
let outputPtr: usize = 0; // f32 × capRows × F

export function scaleVersion(): i32 {
  return 2;
}

/** 1: none/log1p; 2: adds lookup tables (sc_lookup*). */
export function sc_version(): i32 {
  return 2;
}

function grow(ptr: usize, bytes: usize): usize {
  // heap.realloc keeps the content; a zero pointer means a first allocation.
  return ptr == 0 ? heap.alloc(bytes) : heap.realloc(ptr, bytes);
}

/** Sets the shape: F model features read from rows of nInputs raw columns. Call once per bundle. */
export function sc_init(features: i32, nInputs: i32): void {
  nFeatures = features;
  nIn = nInputs;
  const f = <usize>features;
  transformsPtr = grow(transformsPtr, f << 2);
  minPtr = grow(minPtr, f << 3);
  maxPtr = grow(maxPtr, f << 3);
  colMapPtr = grow(colMapPtr, f << 2);
  lkOffPtr = grow(lkOffPtr, f << 2);
  lkLenPtr = grow(lkLenPtr, f << 2);
  lkFallbackPtr = grow(lkFallbackPtr, f << 3);
  memory.fill(lkLenPtr, 0, f << 2);
  // Input rows are sized by nIn, which may have changed: force sc_reserve to re-allocate.
  capRows = 0;
}

export function sc_transformsPtr(): usize {
  return transformsPtr;
}
export function sc_minPtr(): usize {
  return minPtr;
}
export function sc_maxPtr(): usize {
  return maxPtr;
}
export function sc_colMapPtr(): usize {
  return colMapPtr;
}

/** Makes room for `entries` lookup entries (all features together). */
export function sc_lookupReserve(entries: i32): void {
  const n = <usize>max(entries, 1);
  lkKeysPtr = grow(lkKeysPtr, n << 3);
  lkValuesPtr = grow(lkValuesPtr, n << 3);
}
export function sc_lookupOffPtr(): usize {
  return lkOffPtr;
}
export function sc_lookupLenPtr(): usize {
  return lkLenPtr;
}
export function sc_lookupFallbackPtr(): usize {
  return lkFallbackPtr;
}
export function sc_lookupKeysPtr(): usize {
  return lkKeysPtr;
}
export function sc_lookupValuesPtr(): usize {
  return lkValuesPtr;
}

function lookup(jo: usize, v: f64): f64 {
  const off = <usize>load<i32>(lkOffPtr + (jo << 2));
  let lo: i32 = 0;
  let hi: i32 = load<i32>(lkLenPtr + (jo << 2)) - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const k = load<f64>(lkKeysPtr + ((off + <usize>mid) << 3));
    if (k < v) lo = mid + 1;
    else if (k > v) hi = mid - 1;
    else return load<f64>(lkValuesPtr + ((off + <usize>mid) << 3));
  }
  return load<f64>(lkFallbackPtr + (jo << 3));
}

/** Makes room for `rows` input and output rows; returns the capacity in rows. */
export function sc_reserve(rows: i32): i32 {
  if (rows <= capRows) return capRows;
  const r = <usize>rows;
  inputPtr = grow(inputPtr, r * <usize>nIn * 8);
  outputPtr = grow(outputPtr, r * <usize>nFeatures * 4);
  capRows = rows;
  return capRows;
}

export function sc_inputPtr(): usize {
  return inputPtr;
}
export function sc_outputPtr(): usize {
  return outputPtr;
}

/** Scales `rows` rows from the input block into the output tensor. */
export function sc_scale(rows: i32): void {
  const f = nFeatures;
  const stride = <usize>nIn << 3;
  let inRow = inputPtr;
  let out = outputPtr;
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < f; j++) {
      const jo = <usize>j;
      const col = <usize>load<i32>(colMapPtr + (jo << 2));
      let v = load<f64>(inRow + (col << 3));
      if (isNaN(v)) v = 0;
      const t = load<i32>(transformsPtr + (jo << 2));
      if (t == T_LOG1P) {
        v = v < 0 ? -Math.log1p(-v) : Math.log1p(v);
      } else if (t == T_LOOKUP) {
        v = lookup(jo, v);
      }
      const lo = load<f64>(minPtr + (jo << 3));
      const range = load<f64>(maxPtr + (jo << 3)) - lo;
      let s: f64 = range > 0 ? (v - lo) / range : v > lo ? 1.0 : 0.0;
      if (!(s >= 0)) s = 0;
      else if (s > 1) s = 1;
      store<f32>(out, <f32>s);
      out += 4;
    }
    inRow += stride;
  }
}
