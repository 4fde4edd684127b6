/**
 * Raw flow features as they travel with alerts and samples (#15: the fleet teaches the model): little-endian
 * float32, base64. Compact (a 79-feature vector is 424 characters) and exact enough for training: the scaler and
 * the model both work in float32. The order is the bundle manifest's `preprocessing.features`; hubs announce it
 * in their status (`features`), so the aggregator can name the columns of what it stores.
 */

/** More features than any flow meter computes; bounds what a hostile payload can make the aggregator decode. */
export const MAX_FEATURES = 512;
/** Base64 length of MAX_FEATURES float32 values. */
export const MAX_FEATURES_B64 = Math.ceil((MAX_FEATURES * 4) / 3) * 4;

export function encodeFeatures(values: ArrayLike<number>): string {
  const f = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) f[i] = values[i];
  return Buffer.from(f.buffer, f.byteOffset, f.byteLength).toString('base64');
}

/** Decodes a vector; throws a plain Error naming the problem on anything that is not whole float32 values. */
export function decodeFeatures(b64: string): Float32Array {
  if (b64.length > MAX_FEATURES_B64) throw new Error(`features: ${b64.length} base64 characters, more than ${MAX_FEATURES} values`);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) throw new Error('features: not base64');
  const bytes = Buffer.from(b64, 'base64');
  if (bytes.length % 4 !== 0) throw new Error(`features: ${bytes.length} bytes is not a whole number of float32 values`);
  const out = new Float32Array(bytes.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = bytes.readFloatLE(i * 4);
  return out;
}
