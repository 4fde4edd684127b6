// Feature scaling (owner: edge runtime). Filled in by the hub work.
export function scaleVersion(): i32 {
  return 0;
}
