// The hub's preprocessing module: one wasm with the flow meter and the feature scaler.
export * from './scale';
export * from './flowmeter';
