// CICFlowMeter-compatible flow meter (owner: flow meter work). Filled in by that work.
export function flowmeterVersion(): i32 {
  return 0;
}
