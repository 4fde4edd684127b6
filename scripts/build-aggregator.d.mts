// Types of scripts/build-aggregator.mjs (plain JavaScript: bin/iot-ids.mjs runs it before any TypeScript loader).
export interface BundleSpec {
  /** Project root: `entry` and the recorded inputs are relative to it. */
  root: string;
  entry: string;
  /** Absolute path of the bundle; its record is `<outfile>.json`. */
  outfile: string;
}
export function ensureBundle(spec: BundleSpec): Promise<{ file: string; built: boolean }>;
export function buildBundle(spec: BundleSpec): Promise<void>;
export const AGGREGATOR_BUNDLE: string;
export function ensureAggregatorBundle(): Promise<{ file: string; built: boolean }>;
